// The workflow's view of a running replication: it cannot read an activity's heartbeats, so while it waits
// (initial sync, cutover gate, downtime window) it takes quick samples (sampleReplication) on a durable
// timer and publishes them in the status. Runs in the workflow sandbox.
import { condition, isCancellation, log } from '@temporalio/workflow';
import type { MigrationInput, ReplicationSample } from '../activities/contract';
import { activity } from './activity-options';
import { LAG_HISTORY_MAX, type ReplicationStatus } from './definitions';

const MINUTE = 60_000;

/**
 * How far apart samples are, `sinceMs` into a wait: every 5 s for the first 10 minutes, every 30 s up to an
 * hour, then every minute, and past 100 minutes a hundredth of the time waited so far. Each sample costs
 * about ten history events (timer, activity, workflow tasks), so the last rule bounds a wait's samples
 * logarithmically: ~530 over a 24 h gate, ~1,100 over the longest (366 d), instead of 17,000 at 5 s.
 */
export function samplePaceMs(sinceMs: number): number {
  if (sinceMs < 10 * MINUTE) return 5_000;
  if (sinceMs < 60 * MINUTE) return 30_000;
  return Math.max(MINUTE, Math.floor(sinceMs / 100));
}

/**
 * Makes `sample` the latest; with `lag`, adds it to the lag history, which keeps the first entry and the
 * newest ones. (The initial sync's lag is not history: the slot waits for the copy, so it only grows.)
 */
export function recordSample(replication: ReplicationStatus, sample: ReplicationSample, lag: boolean): void {
  replication.latest = sample;
  if (!lag) return;
  const history = replication.lagHistory;
  history.push({ at: sample.at, bytes: sample.lagBytes, seconds: sample.lagSeconds });
  if (history.length > LAG_HISTORY_MAX) history.splice(1, history.length - LAG_HISTORY_MAX);
}

/**
 * What went wrong between two samples, in words for status.warnings: a subscription's error count rose (a
 * copy or an apply failing, which the server retries forever without telling anyone) or a slot lost its WAL
 * sender. Each rise and each loss is said once: the next sample compares with this one.
 */
export function healthWarnings(previous: ReplicationSample | undefined, sample: ReplicationSample): string[] {
  const out: string[] = [];
  for (const db of sample.databases) {
    const before = previous?.databases.find((d) => d.name === db.name);
    const rose = (now?: number, then?: number) => now !== undefined && now > (then ?? 0);
    const kinds: string[] = [];
    if (rose(db.applyErrors, before?.applyErrors)) kinds.push(`${db.applyErrors} apply error(s)`);
    if (rose(db.syncErrors, before?.syncErrors)) kinds.push(`${db.syncErrors} table-sync error(s)`);
    if (kinds.length) {
      out.push(
        `Replication of database "${db.name}" reports ${kinds.join(' and ')} so far: the target is not ` +
          "applying what the source writes; read the target's server log (a schema change on the source is " +
          'refused at the cutover).',
      );
    }
    if (db.slotActive === false && before?.slotActive !== false) {
      out.push(
        `Replication of database "${db.name}": its slot on the source has no WAL sender (the subscription is ` +
          "not connected): the lag grows until it reconnects; read the target's server log.",
      );
    }
  }
  return out;
}

export interface WaitOptions {
  /** Give up after this long (resolving to done()); without it, wait until done(). */
  timeoutMs?: number;
  /** Whether samples go to the lag history (false during the initial sync). */
  lag: boolean;
  /** Called after each sample is recorded: the step's detail, the UI's current details. */
  onSample(sample: ReplicationSample): void;
}

export interface ReplicationSampler {
  /** Waits until `done()` or the timeout, sampling at samplePaceMs; resolves to done(). */
  waitSampling(done: () => boolean, options: WaitOptions): Promise<boolean>;
}

export function replicationSampler(
  input: MigrationInput,
  replication: ReplicationStatus,
): ReplicationSampler {
  const sample = activity('sampleReplication', 'Sample the replication (progress and lag)');
  replication.samples ??= 0;

  /** One sample; a failed one is skipped without a warning (the next one comes in seconds). */
  async function takeSample(options: WaitOptions): Promise<void> {
    let taken: ReplicationSample;
    try {
      taken = await sample(input);
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.info(`replication sample skipped: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    replication.samples = (replication.samples ?? 0) + 1;
    recordSample(replication, taken, options.lag);
    options.onSample(taken);
  }

  async function waitSampling(done: () => boolean, options: WaitOptions): Promise<boolean> {
    const start = Date.now();
    const deadline = options.timeoutMs === undefined ? undefined : start + options.timeoutMs;
    // Which command comes next (a sample or a timer) never depends on comparing clock readings after a
    // timer fired: the time a replay sees there may differ from the live run's (a workflow task that timed
    // out with a killed worker), which made the replay start a timer where history holds an activity.
    for (;;) {
      if (done()) return true;
      await takeSample(options);
      if (done()) return true;
      const pace = samplePaceMs(Date.now() - start);
      replication.paceMs = pace;
      const remaining = deadline === undefined ? Infinity : deadline - Date.now();
      if (remaining <= 0) return false;
      const wait = Math.min(pace, remaining);
      if (await condition(done, wait)) return true;
      if (wait === remaining) return false;
    }
  }

  return { waitSampling };
}
