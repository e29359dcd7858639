// What the workflow-logic tests share: stub activities that record their calls, a deferred, and the
// failure a workflow ended with.
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';

export interface Call<N extends string = string> {
  name: N;
  args: unknown[];
}

/** Stub activities that record each call, in order, before running `impl`'s implementation. */
export function recordingStubs<N extends string>(impl: { [K in N]: (...args: never[]) => Promise<unknown> }) {
  const calls: Call<N>[] = [];
  const activities = Object.fromEntries(
    (Object.keys(impl) as N[]).map((name) => [
      name,
      async (...args: unknown[]) => {
        calls.push({ name, args });
        return (impl[name] as (...a: unknown[]) => Promise<unknown>)(...args);
      },
    ]),
  );
  return { activities, calls, names: () => calls.map((c) => c.name) };
}

/**
 * The recorded names with the schema test before the target's creation: the migration runs the two side
 * by side, so a worker may take either first.
 */
export function inGuideOrder<N extends string>(names: N[]): N[] {
  const out = [...names];
  const [schema, target] = [out.indexOf('testSchema' as N), out.indexOf('createTarget' as N)];
  if (schema >= 0 && target >= 0 && target < schema) [out[schema], out[target]] = [out[target], out[schema]];
  return out;
}

export function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The failure the workflow ended with; fails the test if it completed. */
export async function failureOf(handle: WorkflowHandle, what = 'the workflow'): Promise<WorkflowFailedError> {
  try {
    await handle.result();
  } catch (err) {
    expect(err).toBeInstanceOf(WorkflowFailedError);
    return err as WorkflowFailedError;
  }
  throw new Error(`${what} completed; a failure was expected`);
}
