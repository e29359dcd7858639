// Timeouts and retries of every activity, shared by the migration and the rehearsal: the same activity
// runs under the same options whichever workflow calls it. Runs in the workflow sandbox.
import { ActivityCancellationType, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { LogicalActivities, MigrationActivities, RehearsalActivities } from '../activities/contract';
import { NON_RETRYABLE_ERRORS } from '../errors';

export type PgshiftActivities = MigrationActivities & RehearsalActivities & LogicalActivities;
export type ActivityName = keyof PgshiftActivities;

/** The backoff between attempts, also applied by the workflow where it retries a step itself. */
export const BACKOFF = { initialMs: 1000, coefficient: 2, maximumMs: 60_000 };

function retry(maximumAttempts: number): ActivityOptions['retry'] {
  return {
    initialInterval: BACKOFF.initialMs,
    backoffCoefficient: BACKOFF.coefficient,
    maximumInterval: BACKOFF.maximumMs,
    maximumAttempts,
    nonRetryableErrorTypes: [...NON_RETRYABLE_ERRORS],
  };
}

// What brings services back and undoes a failed migration must not give up because a login expired
// mid-run: it keeps retrying for about an hour (the error says to log in), every other refusal still stops it.
function mustFinish(startToCloseTimeout: Duration): ActivityOptions {
  return {
    startToCloseTimeout,
    cancellationType,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '2m',
      maximumAttempts: 36,
      nonRetryableErrorTypes: NON_RETRYABLE_ERRORS.filter((t) => t !== 'NotLoggedInError'),
    },
  };
}

// A rollback must not overtake the step it interrupts: a scale-down finishing after the scale-up, or a
// restore still writing into a target being deprovisioned. So a cancelled step is waited for. (Left
// unset, the SDK sends the proto default, TRY_CANCEL, which does not wait.)
const cancellationType = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED;

// Platform calls (provisioning, scaling, config) are short but may wait on the platform's own operation.
function short(startToCloseTimeout: Duration, attempts: number): ActivityOptions {
  return { startToCloseTimeout, retry: retry(attempts), cancellationType };
}

// Copy-sized steps run for hours on big databases; the heartbeat is what tells us a worker died, and is
// how a cancellation reaches them.
function long(startToCloseTimeout: Duration, attempts: number): ActivityOptions {
  return { startToCloseTimeout, heartbeatTimeout: '1m', retry: retry(attempts), cancellationType };
}

const ACTIVITY_OPTIONS: Record<ActivityName, ActivityOptions> = {
  preflight: short('10m', 5),
  testSchema: long('6h', 3),
  createTarget: short('1h', 5),
  scaleServicesDown: short('15m', 10),
  claimWorkspace: short('1m', 5),
  // One attempt: a ping that no worker takes is the answer (see workspace-queue.ts).
  pingWorkspace: short('10s', 1),
  dumpSource: long('24h', 3),
  restoreTarget: long('24h', 3),
  verifyTarget: long('6h', 3),
  updateServiceConfig: short('15m', 10),
  // Services must come back: after the point of no return and in a rollback alike.
  scaleServicesUp: mustFinish('15m'),
  vacuumAnalyze: long('24h', 3),
  deprovisionSource: short('1h', 10),
  revertServiceConfig: mustFinish('15m'),
  deprovisionTarget: mustFinish('1h'),
  purgeTargetBackups: mustFinish('15m'),
  removeDump: short('5m', 5),
  findLatestBackup: short('5m', 5),
  // Restoring a backup takes as long as its data: the platform's operation may run for hours.
  restoreBackupCopy: long('24h', 3),
  // method logical. The initial sync runs as long as a copy; the samples are quick and the workflow takes
  // one every few seconds while it waits, so a failed one is just skipped.
  copySchema: long('6h', 3),
  // Heartbeats, so a dead worker is noticed and a cancellation reaches the CREATE SUBSCRIPTION under way.
  startReplication: long('30m', 5),
  awaitInitialSync: long('7d', 10),
  sampleReplication: short('30s', 1),
  // Inside the downtime: bounded by plan.cutover.catchUpTimeout; a lost connection retries at once.
  awaitCatchUp: long('1h', 3),
  // Inside the downtime too: a dead worker must be noticed within the heartbeat, not the start-to-close.
  checkSchemaUnchanged: long('10m', 3),
  syncSequences: long('1h', 3),
  verifyReplica: long('6h', 3),
  // A slot left on the source keeps its WAL forever: clean-up retries like the rest of the saga.
  dropReplication: mustFinish('15m'),
};

/** How many attempts the activity gets (the workflow counts them where it retries the activity itself). */
export function maximumAttemptsOf(name: ActivityName): number {
  return ACTIVITY_OPTIONS[name].retry?.maximumAttempts ?? 1;
}

/** One proxy per call site, so the UI shows the step's title as the activity's summary. */
export function activity<K extends ActivityName>(
  name: K,
  summary: string,
  extra: ActivityOptions = {},
): PgshiftActivities[K] {
  return proxyActivities<PgshiftActivities>({ ...ACTIVITY_OPTIONS[name], ...extra, summary })[
    name
  ] as PgshiftActivities[K];
}
