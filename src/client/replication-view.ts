// What the CLI shows of a method-logical migration's replication: the initial sync per database, then the
// lag, live (from the samples the workflow keeps in its status), the catch-up at cutover, and what the
// clean-up could not drop, with the SQL to run by hand.
import type { ReplicationSample } from '../activities/contract';
import { formatDuration } from '../lib/duration';
import { etaFrom, type ProgressEstimate } from '../lib/progress-estimate';
import type { MigrationStatus, StepStatus } from '../workflows/definitions';
import {
  describeDatabaseSync,
  describeLag,
  describeLagHistory,
  describeSync,
  syncComplete,
  syncTotals,
} from '../workflows/replication-text';

/** Steps during which the replication's latest sample is the progress to show. */
const REPLICATION_STEPS = new Set(['initialSync', 'awaitCutover', 'awaitWindow', 'catchUp']);

const MAX_UNFINISHED_FRACTION = 0.99;

/** Heartbeat details (or anything) that look like a ReplicationSample. */
export function asReplicationSample(details: unknown): ReplicationSample | undefined {
  if (!details || typeof details !== 'object') return undefined;
  const d = details as Partial<ReplicationSample>;
  return Array.isArray(d.databases) && typeof d.lagBytes === 'number' ? (d as ReplicationSample) : undefined;
}

/** The progress bar's view of a sample: the initial sync's share done, else the lag. */
export function replicationEstimate(
  sample: ReplicationSample,
  step?: StepStatus,
  now = Date.now(),
): ProgressEstimate {
  if (step?.name === 'initialSync' || !syncComplete(sample)) {
    const t = syncTotals(sample);
    const [done, total] =
      t.bytesTotal !== undefined && t.bytesTotal > 0
        ? [t.bytesDone ?? 0, t.bytesTotal]
        : [t.tablesDone, t.tablesTotal];
    const whole = syncComplete(sample);
    const fraction = total > 0 ? Math.min(whole ? 1 : MAX_UNFINISHED_FRACTION, done / total) : undefined;
    const elapsed = step?.startedAt !== undefined ? now - step.startedAt : undefined;
    return {
      label: 'initial sync',
      fraction,
      amount: describeSync(sample),
      etaMs: etaFrom(fraction, elapsed),
    };
  }
  return { label: step?.name === 'catchUp' ? 'catching up' : 'replicating', amount: describeLag(sample) };
}

/** The running step's replication progress from the status, when it is a replication step. */
export function statusReplicationEstimate(status: MigrationStatus | undefined, now = Date.now()) {
  const latest = status?.replication?.latest;
  const running = status?.steps.find((s) => s.state === 'running');
  if (!latest || !running || !REPLICATION_STEPS.has(running.name)) return undefined;
  return replicationEstimate(latest, running, now);
}

/** The status lines of `pgshift status` for the replication, empty for the dump method. */
export function replicationLines(s: MigrationStatus, now = Date.now()): string[] {
  const r = s.replication;
  if (!r) return [];
  const out: string[] = [];
  const latest = r.latest;
  const syncStep = s.steps.find((step) => step.name === 'initialSync');
  // Sampled on the worker's clock: a skew between it and this machine only makes the age a little off.
  const sampled = (at: number, pace = '') =>
    now >= at ? ` (sampled ${formatDuration(now - at)} ago${pace})` : '';
  if (latest && (syncStep?.state === 'running' || !syncComplete(latest))) {
    out.push(`  Initial sync: ${describeSync(latest)}${sampled(latest.at)}`);
    for (const db of latest.databases) out.push(`    ${describeDatabaseSync(db)}`);
  } else if (latest) {
    const live = s.steps.some((step) => step.state === 'running' && REPLICATION_STEPS.has(step.name));
    const pace = live && r.paceMs ? `, every ${formatDuration(r.paceMs)}` : '';
    out.push(`  Replication: ${describeLag(latest)}${sampled(latest.at, pace)}`);
    if (latest.databases.length > 1) {
      for (const db of latest.databases) {
        if (db.lagBytes !== undefined) out.push(`    ${db.name}: ${describeLag({ lagBytes: db.lagBytes })}`);
      }
    }
  }
  const history = describeLagHistory(r.lagHistory);
  if (history) out.push(`  Lag history: ${history}`);
  if (r.catchUp)
    out.push(`  Catch-up: applied up to ${r.catchUp.lsn} in ${formatDuration(r.catchUp.waitedMs)}`);
  if (r.cleanup) {
    const { dropped, leftBehind } = r.cleanup;
    if (leftBehind.length) {
      out.push(
        '  Replication objects LEFT BEHIND — run by hand (a slot left on the source keeps its WAL and fills its disk):',
        ...leftBehind.map((sql) => `    ${sql}`),
      );
    } else {
      out.push(`  Replication dropped: ${dropped.length ? dropped.join(', ') : 'nothing was left'}`);
    }
  }
  return out;
}
