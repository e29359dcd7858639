import { Context } from '@temporalio/activity';

// Code that runs both inside activities and outside them (tests, `pgshift local`) asks for the activity's
// context only when there is one.

export function inActivity(): boolean {
  try {
    Context.current();
    return true;
  } catch {
    return false;
  }
}

/** The running activity's cancellation signal (also aborted when it times out); undefined outside one. */
export function activityCancellation(): AbortSignal | undefined {
  return inActivity() ? Context.current().cancellationSignal : undefined;
}
