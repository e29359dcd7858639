// How workflows read an activity's failure: the operator's message, its named type, a gone worker.
// Shared by the migration and the rehearsal; runs in the workflow sandbox.
import { ActivityFailure, ApplicationFailure, CancelledFailure, TimeoutFailure } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';

/**
 * No worker took the activity from the claimed worker's own queue in time: no worker serves that host's
 * work directory any more, so for this workflow the dump on it is gone too. A ScheduleToStart timeout
 * is never retried by the server, so it surfaces here at once. A ping (see workspace-queue.ts) that timed
 * out in any way counts too: it does nothing, so one taken but never answered went to a worker that died
 * (the server may hand a task to a poll a killed worker left behind).
 */
export function workspaceGone(err: unknown): boolean {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof TimeoutFailure)) return false;
  return err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START || err.activityType === PING;
}

const PING = 'pingWorkspace';

/**
 * A step on the claimed worker's queue failed or stopped answering (no heartbeat), and the ping sent there
 * before retrying it found no worker (see workspace-queue.ts): gone, noticed sooner than by the retry's own
 * schedule-to-start timeout.
 */
export function workspaceGoneByPing(err: unknown): boolean {
  return workspaceGone(err) && (err as ActivityFailure).activityType === PING;
}

/** The message an operator needs from a failure: the activity's own error, not the SDK's wrapper. */
export function describeFailure(err: unknown): string {
  if (workspaceGoneByPing(err)) {
    return (
      'the worker running it failed or stopped answering, and no worker took a check sent to its queue ' +
      'after that: the worker that holds the dump seems gone'
    );
  }
  let cause = err;
  while (cause instanceof ActivityFailure && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure) {
    return cause.type && cause.type !== 'Error' ? `${cause.type}: ${cause.message}` : cause.message;
  }
  if (cause instanceof TimeoutFailure && cause.timeoutType === TimeoutType.SCHEDULE_TO_START) {
    return `${cause.message} (no worker took it: the worker that holds the dump seems gone)`;
  }
  if (cause instanceof TimeoutFailure) return `${cause.message} (the worker may have died; it was retried)`;
  if (cause instanceof CancelledFailure) return 'cancelled';
  return cause instanceof Error ? cause.message : String(cause);
}

/** The named error (src/errors.ts) an activity failed with, if any. */
export function failureType(err: unknown): string | undefined {
  return applicationFailureOf(err)?.type ?? undefined;
}

/** The activity's ApplicationFailure, whose details carry structured findings (restore errors, a report). */
export function applicationFailureOf(err: unknown): ApplicationFailure | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? cause : undefined;
}

export function oneLine(text: string, max = 500): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
