// What touches the dump file runs on the queue of the worker that holds it (the dump, the restore, the dump's
// removal), and this is how the workflows notice that worker gone. Shared by the migration and the
// rehearsal; runs in the workflow sandbox.
import {
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  sleep,
  type ActivityOptions,
} from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { WorkspaceClaim } from '../activities/contract';
import { NON_RETRYABLE_ERRORS } from '../errors';
import { BACKOFF, activity, maximumAttemptsOf, type PgshiftActivities } from './activity-options';
import { workspaceGone } from './failures';

/**
 * How long a ping may wait for a worker on the dump's queue. A live worker takes it at once (its host queue
 * has slots to spare); one restarted on that host has had the heartbeat timeout and this to come back.
 */
export const PING_START_TIMEOUT_MS = 30_000;

/** The ping's schedule-to-start timeout: never longer than the steps' own (tests shorten that one). */
export function pingStartTimeoutOf(startTimeoutMs: number): number {
  return Math.min(PING_START_TIMEOUT_MS, startTimeoutMs);
}

export type WorkspaceActivityName = 'dumpSource' | 'restoreTarget' | 'removeDump';

/**
 * The activities that run on the claimed worker's queue. Only workers on that host and work directory poll
 * it, so when they are gone nothing takes a task there: each attempt's schedule-to-start timeout
 * (`startTimeoutMs`, the workspaceStartTimeout option) is how a worker gone before the step is noticed.
 *
 * A worker that dies during a step is noticed by the heartbeat timeout (one shut down, by its failed
 * attempt); the server would then retry the step on the same queue and wait the whole schedule-to-start
 * timeout for a worker that may never come, with the services down. So the workflow retries these itself,
 * one attempt at a time: before each retry it sends a ping there with a short schedule-to-start timeout, and
 * when no worker takes it, fails with the ping's timeout (workspaceGone) at once. The attempts and the
 * backoff are the activity's own. Returns `on(name, summary)`: the activity, as the workflow calls it.
 */
export function workspaceQueue(ws: WorkspaceClaim, startTimeoutMs: number) {
  const ping = activity('pingWorkspace', 'Check that the worker holding the dump is still there', {
    taskQueue: ws.taskQueue,
    scheduleToStartTimeout: pingStartTimeoutOf(startTimeoutMs),
  });

  /** Throws the ping's failure when no worker takes it: the worker that holds the dump is gone. */
  async function stillThere(): Promise<void> {
    try {
      await ping();
    } catch (err) {
      if (workspaceGone(err) || isCancellation(err)) throw err;
      // A worker took it and said no (one of a version without the ping, say): someone is there.
    }
  }

  /** `retryArgs`: what a retry sends instead of the first attempt's arguments. */
  function on<K extends WorkspaceActivityName>(
    name: K,
    summary: string,
    retryArgs?: (args: Parameters<PgshiftActivities[K]>) => Parameters<PgshiftActivities[K]>,
  ): PgshiftActivities[K] {
    const attempts = maximumAttemptsOf(name);
    const options: ActivityOptions = {
      taskQueue: ws.taskQueue,
      scheduleToStartTimeout: startTimeoutMs,
      retry: { ...retryOnce },
    };
    const once = activity(name, summary, options) as (...args: unknown[]) => Promise<unknown>;
    const withRetries = async (...args: unknown[]): Promise<unknown> => {
      for (let attempt = 1; ; attempt += 1) {
        try {
          const sent = attempt > 1 && retryArgs ? retryArgs(args as Parameters<PgshiftActivities[K]>) : args;
          return await once(...sent);
        } catch (err) {
          if (attempt >= attempts || !worthRetrying(err)) throw err;
          await sleep(backoffMs(attempt));
          await stillThere();
        }
      }
    };
    return withRetries as PgshiftActivities[K];
  }

  return on;
}

/** The server makes one attempt; the workflow decides on the next (the non-retryable types still apply). */
const retryOnce: ActivityOptions['retry'] = {
  maximumAttempts: 1,
  nonRetryableErrorTypes: [...NON_RETRYABLE_ERRORS],
};

function worthRetrying(err: unknown): boolean {
  if (!(err instanceof ActivityFailure) || isCancellation(err) || workspaceGone(err)) return false;
  if (err.retryState === RetryState.NON_RETRYABLE_FAILURE) return false;
  const cause = err.cause;
  if (cause instanceof ApplicationFailure) {
    return !cause.nonRetryable && !(NON_RETRYABLE_ERRORS as readonly string[]).includes(cause.type ?? '');
  }
  return true;
}

function backoffMs(attempt: number): number {
  return Math.min(BACKOFF.initialMs * BACKOFF.coefficient ** (attempt - 1), BACKOFF.maximumMs);
}
