// The waits of the online migration (method: logical), while replication keeps the target current and the
// services run on the source: the cutover gate and the downtime window, both sampling the lag; and, after
// the migration, the decision on deprovisioning the source (as in migration.ts).
// Runs in the workflow sandbox.
import { ApplicationFailure, CancellationScope, condition, isCancellation } from '@temporalio/workflow';
import type { Plan } from '../plan/schema';
import type { ReplicationSample } from '../activities/contract';
import { formatDuration, parseDuration } from '../lib/duration';
import { activity } from './activity-options';
import { describeFailure } from './failures';
import { ONLINE_TITLES, type OnlineContext } from './online-context';
import { healthWarnings, type ReplicationSampler } from './replication-sampling';
import { describeLag } from './replication-text';
import {
  chooseDowntimeStart,
  describeWindow,
  estimateDowntime,
  formatInstant,
  windowZone,
  type DowntimeEstimateUsed,
} from './window';

/**
 * Row counts compared during the downtime, in bytes of the source per second: deliberately slow, as
 * window.ts's rate, since an estimate too short starts a downtime that overruns its window.
 */
const COUNT_BYTES_PER_SECOND = 100 * 1024 * 1024;

/**
 * The downtime of method logical does not copy: it is scaling and config (window.ts's allowances), the
 * catch-up (at most plan.cutover.catchUpTimeout) and the verification's row counts. A rehearsal's
 * estimate (plan.cutover.downtimeEstimate) wins, as for the dump method.
 */
export function estimateOnlineDowntime(
  plan: Plan,
  sourceSizeBytes: number | undefined,
): DowntimeEstimateUsed {
  const base = estimateDowntime(plan, undefined);
  if (plan.cutover.downtimeEstimate !== undefined) return base;
  const catchUpMs = parseDuration(plan.cutover.catchUpTimeout)!;
  const countMs = sourceSizeBytes ? Math.ceil((sourceSizeBytes / COUNT_BYTES_PER_SECOND) * 1000) : 0;
  const counted = sourceSizeBytes
    ? `row counts of ${sourceSizeBytes} bytes at 100 MiB/s`
    : 'no row-count time (the source size is unknown)';
  return {
    ms: base.ms + catchUpMs + countMs,
    basis: `scaling and config allowances, the catch-up bound (${plan.cutover.catchUpTimeout}), ${counted}`,
  };
}

/** Waits for the cutover signal, the abort or the timeout, with the services running and the lag sampled. */
export async function cutoverGate(ctx: OnlineContext, sampler: ReplicationSampler): Promise<void> {
  const { plan, status, flags } = ctx;
  const { enter, finish, publish } = ctx.tracker;
  const s = enter('awaitCutover');
  if (!plan.cutover.confirm) {
    finish('awaitCutover', 'done', 'no confirmation required (plan.cutover.confirm: false)');
    return;
  }
  const timeout = plan.cutover.timeout;
  // The plan schema accepted it only if parseDuration does.
  const timeoutMs = parseDuration(timeout)!;
  status.cutover.waiting = true;
  status.cutover.deadline = Date.now() + timeoutMs;
  ctx.setPhase('awaiting-cutover');
  s.detail = 'replicating; the services run on the source';
  let previous: ReplicationSample | undefined;
  const onSample = (sample: ReplicationSample) => {
    for (const w of healthWarnings(previous, sample)) ctx.warn(w);
    previous = sample;
    // The signal's handler wrote who confirmed: a sample that lands after it does not overwrite that.
    if (status.cutover.confirmed) return;
    s.detail = `replicating, ${describeLag(sample)}; the services run on the source`;
    publish(
      'awaitCutover',
      `**${s.title}**: ${describeLag(sample)}, the services run on the source. ` +
        `Confirm with \`pgshift cutover ${status.migrationId}\`.`,
    );
  };
  let confirmed: boolean;
  try {
    confirmed = await sampler.waitSampling(() => status.cutover.confirmed, {
      timeoutMs,
      lag: true,
      onSample,
    });
  } catch (err) {
    if (isCancellation(err)) finish('awaitCutover', 'cancelled', undefined, describeFailure(err));
    throw err;
  } finally {
    status.cutover.waiting = false;
    if (status.phase === 'awaiting-cutover') ctx.setPhase('running');
  }
  if (confirmed) {
    finish('awaitCutover', 'done');
    return;
  }
  if (plan.cutover.onTimeout === 'proceed') {
    ctx.warn(`Cutover not confirmed within ${timeout}; proceeding as plan.cutover.onTimeout says.`);
    finish(
      'awaitCutover',
      'done',
      `not confirmed within ${timeout}; proceeded (plan.cutover.onTimeout: proceed)`,
    );
    return;
  }
  flags.cutoverTimedOut = true;
  const message = `cutover not confirmed within ${timeout} (plan.cutover.onTimeout: abort)`;
  finish('awaitCutover', 'failed', undefined, message);
  flags.failure = { step: 'awaitCutover', message };
  throw ApplicationFailure.nonRetryable(message, 'CutoverTimeout');
}

/** Waits, on a durable timer, for the downtime window (plan.cutover.window), still replicating and sampling. */
export async function windowStep(
  ctx: OnlineContext,
  sampler: ReplicationSampler,
  sourceSizeBytes: number | undefined,
): Promise<void> {
  const { plan, status, flags } = ctx;
  const { enter, finish, publish } = ctx.tracker;
  const window = plan.cutover.window;
  if (!window) {
    finish('awaitWindow', 'skipped', 'no window (plan.cutover.window): the downtime starts at once');
    return;
  }
  const s = enter('awaitWindow');
  const estimate = estimateOnlineDowntime(plan, sourceSizeBytes);
  const choice = chooseDowntimeStart(window, Date.now(), estimate.ms);
  if (choice.refusal) {
    finish('awaitWindow', 'failed', undefined, choice.refusal);
    flags.failure = { step: 'awaitWindow', message: choice.refusal };
    throw ApplicationFailure.nonRetryable(choice.refusal, 'DowntimeWindowMissed');
  }
  if (choice.warning) ctx.warn(choice.warning);
  const zone = windowZone(window);
  const at = formatInstant(choice.startAt, zone);
  status.downtime.scheduledAt = choice.startAt;
  status.window = {
    description: describeWindow(window),
    timeZone: zone,
    waiting: false,
    endsAt: choice.endsAt,
    estimateMs: estimate.ms,
    estimateBasis: estimate.basis,
  };
  const waitMs = choice.startAt - Date.now();
  const estimated = `estimated downtime ${formatDuration(estimate.ms)}`;
  if (waitMs <= 0) {
    finish('awaitWindow', 'done', `in the window (${status.window.description}): ${estimated}`);
    return;
  }
  const waiting = `waiting for the window: downtime starts at ${at} (in ${formatDuration(waitMs)}; ${estimated})`;
  s.detail = waiting;
  status.window.waiting = true;
  ctx.setPhase('awaiting-window');
  publish('awaitWindow', `**${ONLINE_TITLES.awaitWindow}**: ${waiting}`);
  const onSample = (sample: ReplicationSample) => {
    s.detail = `${waiting}; replicating, ${describeLag(sample)}`;
    publish('awaitWindow', `**${ONLINE_TITLES.awaitWindow}**: ${s.detail}`);
  };
  try {
    await sampler.waitSampling(() => false, { timeoutMs: waitMs, lag: true, onSample });
  } catch (err) {
    if (isCancellation(err)) finish('awaitWindow', 'cancelled', undefined, describeFailure(err));
    throw err;
  } finally {
    status.window.waiting = false;
    if (status.phase === 'awaiting-window') ctx.setPhase('running');
  }
  finish('awaitWindow', 'done', `waited ${formatDuration(waitMs)}: downtime started at ${at}`);
}

/** After the migration: deprovision the source as plan.cleanup.deprovisionSource says (as migration.ts). */
export async function deprovisionSourceStep(ctx: OnlineContext): Promise<void> {
  const { plan, flags, input } = ctx;
  const { enter, finish } = ctx.tracker;
  const policy = plan.cleanup.deprovisionSource;
  if (policy.mode === 'never') {
    finish('deprovisionSource', 'skipped', 'kept (plan.cleanup.deprovisionSource.mode: never)');
    return;
  }
  const s = enter('deprovisionSource');
  ctx.setPhase('awaiting-source-deprovision');
  flags.awaitingSourceDecision = true;
  let proceed: boolean;
  try {
    if (policy.mode === 'signal') {
      s.detail = 'waiting for the deprovisionSource signal (keepSource cancels)';
      await CancellationScope.cancellable(() =>
        condition(() => flags.sourceDeprovisionConfirmed || flags.keepSource),
      );
    } else {
      const delayMs = parseDuration(policy.delay)!;
      const at = Date.now() + delayMs;
      s.detail = `deprovisioning at ${new Date(at).toISOString()} (after ${policy.delay}; keepSource cancels)`;
      await CancellationScope.cancellable(() => condition(() => flags.keepSource, delayMs));
    }
    proceed = !flags.keepSource;
  } catch (err) {
    if (!isCancellation(err)) throw err;
    flags.awaitingSourceDecision = false;
    ctx.setPhase('running');
    finish('deprovisionSource', 'cancelled', 'source kept: the workflow was cancelled');
    ctx.warn('The workflow was cancelled while waiting to deprovision the source; the source is kept.');
    return;
  }
  flags.awaitingSourceDecision = false;
  ctx.setPhase('running');
  if (!proceed) {
    finish('deprovisionSource', 'skipped', 'source kept (keepSource signal)');
    return;
  }
  flags.sourceDeprovisionStarted = true;
  const waited = formatDuration(Date.now() - (s.startedAt ?? Date.now()));
  try {
    await CancellationScope.nonCancellable(() =>
      activity('deprovisionSource', ONLINE_TITLES.deprovisionSource)(input),
    );
    finish('deprovisionSource', 'done', `deprovisioned after waiting ${waited}`);
  } catch (err) {
    const message = describeFailure(err);
    finish('deprovisionSource', 'failed', undefined, message);
    ctx.after(
      `"${ONLINE_TITLES.deprovisionSource}" failed: ${message}. The source still exists; deprovision it by hand.`,
    );
  }
}
