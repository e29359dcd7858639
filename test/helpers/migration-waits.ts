// Condition-based waits on a running migration for end-to-end tests: each polls until what it waits for is
// true or the bound passes, and says which when it gives up. The bounds are generous: real clusters on a
// busy two-core machine.
import type { Client, WorkflowHandle } from '@temporalio/client';
import { statusQuery, type MigrationStatus } from '../../src/workflows/definitions';

const POLL_MS = 250;

/** Thrown by a probe when waiting longer is pointless (e.g. the workflow closed): ends the wait at once. */
export class StopWaiting extends Error {}

/** Polls `probe` until it returns something other than undefined/false; throws after `timeoutMs`. */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 180_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError ? ` (last error: ${String(lastError)})` : '';
      throw new Error(`gave up waiting ${timeoutMs / 1000}s for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** The status, once `ready` holds for it; fails at once if the workflow closes first. */
export async function statusWhen(
  client: Client,
  id: string,
  what: string,
  ready: (s: MigrationStatus) => boolean,
  timeoutMs = 12 * 60_000,
): Promise<MigrationStatus> {
  const handle = client.workflow.getHandle(id);
  let last: MigrationStatus | undefined;
  return waitUntil(
    what,
    async () => {
      const status = await handle.query(statusQuery);
      last = status;
      if (ready(status)) return status;
      const { status: exec } = await handle.describe();
      if (exec.name !== 'RUNNING') {
        const failed = status.steps.filter((s) => s.state === 'failed').map((s) => `${s.name}: ${s.error}`);
        throw new StopWaiting(`migration ${exec.name} before ${what}; failed steps: ${failed.join('; ')}`);
      }
      return undefined;
    },
    timeoutMs,
  ).catch((err: unknown) => {
    if (err instanceof StopWaiting) throw err;
    throw new Error(`${String(err)}; last status: step ${last?.currentStep}, phase ${last?.phase}`);
  });
}

/** Waits at the cutover gate (the replication running, the services up on the source). */
export function waitForGate(client: Client, id: string): Promise<MigrationStatus> {
  return statusWhen(client, id, 'the cutover gate', (s) => s.cutover.waiting);
}

export function stepOf(status: MigrationStatus, name: string) {
  const step = status.steps.find((s) => s.name === name);
  if (!step)
    throw new Error(`no step "${name}" in the status: ${status.steps.map((s) => s.name).join(', ')}`);
  return step;
}

const PENDING_ACTIVITY_STATE_STARTED = 2;

/**
 * Once a worker has taken the activity (the server's pending-activity list says STARTED): killing that
 * worker now interrupts it, rather than leaving it queued for the next worker.
 */
export async function activityStarted(handle: WorkflowHandle, activityType: string): Promise<void> {
  await waitUntil(`activity ${activityType} to be started by a worker`, async () => {
    const { raw } = await handle.describe();
    return (raw.pendingActivities ?? []).some(
      (a) => a.activityType?.name === activityType && a.state === PENDING_ACTIVITY_STATE_STARTED,
    );
  });
}

/** The attempts each closed activity took, by type, in order (from ActivityTaskStarted events). */
export async function activityAttempts(handle: WorkflowHandle): Promise<Record<string, number[]>> {
  const history = await handle.fetchHistory();
  const typeOf = new Map<string, string>();
  const out: Record<string, number[]> = {};
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) typeOf.set(String(e.eventId), scheduled.activityType?.name ?? '?');
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const type = typeOf.get(String(started.scheduledEventId)) ?? '?';
      (out[type] ??= []).push(started.attempt ?? 1);
    }
  }
  return out;
}

/** The workflow's failure (a WorkflowFailedError), or undefined when it completed. */
export function failureOf(handle: WorkflowHandle): Promise<unknown> {
  return handle.result().then(
    () => undefined,
    (err: unknown) => err,
  );
}
