// The rollback of the online migration (method: logical), before the point of no return: each step
// registers its undo as it starts (a step that failed half-way or was cancelled may have left something),
// and the rollback runs them newest first, non-cancellable: config back, services up on the source (they
// were only stopped for the cutover), replication dropped, then the target deprovisioned if it is ours.
// Runs in the workflow sandbox.
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
  log,
} from '@temporalio/workflow';
import type { RecordedService } from '../activities/contract';
import { activity } from './activity-options';
import { COMPENSATIONS, type CompensationName, type OnlineStepName, type StepState } from './definitions';
import { describeFailure, failureType } from './failures';
import { ONLINE_TITLES, type OnlineContext } from './online-context';
import type { ReplicationCleanup } from './replication-cleanup';
import { Saga } from './saga';

const COMPENSATION_TITLES = Object.fromEntries(COMPENSATIONS.map((c) => [c.name, c.title])) as Record<
  CompensationName,
  string
>;

/** What the forward steps learn that the undos need. */
export interface OnlineResources {
  /** The services and their counts, as preflight recorded them: scaled back up to these. */
  services: RecordedService[];
  /** False when createTarget found a database that this migration did not create: never ours to delete. */
  targetIsOurs: boolean;
}

export function onlineSaga(ctx: OnlineContext, cleanup: ReplicationCleanup) {
  const { input, status, flags, warn, setPhase } = ctx;
  const resources: OnlineResources = { services: [], targetIsOurs: true };
  const saga = new Saga();
  const undo = ctx.tracker.undoSteps(status.compensation, COMPENSATION_TITLES, {
    label: 'compensating',
    doing: 'Rolling back',
    noun: 'Rollback step',
  });
  /** Set when reverting the config failed: services whose config may name the target must not start on it. */
  let keepTarget = false;

  async function undoConfig(): Promise<void> {
    const reverted = await undo('revertServiceConfig', () =>
      activity('revertServiceConfig', COMPENSATION_TITLES.revertServiceConfig)(input),
    );
    if (reverted) return;
    // Services whose config may still name the target must not start, and the target they would use must
    // not go: the replication is still dropped (it only fills the source's disk), the rest is the operator's.
    keepTarget = true;
    status.errors.push(
      'The services were left at zero and the target kept, because their configuration may still point at ' +
        'the target: set it back to the source by hand, scale the services up, then deprovision the target.',
    );
  }

  async function undoScaleDown(): Promise<void> {
    if (keepTarget) return;
    const up = activity('scaleServicesUp', COMPENSATION_TITLES.scaleServicesUp);
    if (await undo('scaleServicesUp', () => up(input, resources.services)))
      status.downtime.endedAt = Date.now();
  }

  async function undoReplication(): Promise<void> {
    // Before the target goes: its subscriptions hold slots on the source, which dropping them releases.
    await undo('dropReplication', async () => {
      const problem = await cleanup.drop();
      if (problem) throw new Error(problem);
    });
  }

  async function undoTarget(): Promise<void> {
    if (keepTarget || !resources.targetIsOurs) return;
    let notOurs = false;
    await undo(
      'deprovisionTarget',
      () => activity('deprovisionTarget', COMPENSATION_TITLES.deprovisionTarget)(input),
      (err) => {
        if (failureType(err) !== 'NotOursError') return undefined;
        notOurs = true;
        warn(describeFailure(err));
        return 'not ours: left in place';
      },
    );
    if (!notOurs) {
      await undo('purgeTargetBackups', () =>
        activity('purgeTargetBackups', COMPENSATION_TITLES.purgeTargetBackups)(input),
      );
    }
  }

  /** The undo of each step that leaves something behind, to register as the step starts. */
  const register = {
    createTarget: () => saga.add('target', undoTarget),
    startReplication: () => saga.add('replication', undoReplication),
    scaleDown: () => saga.add('services', undoScaleDown),
    updateConfig: () => saga.add('config', undoConfig),
  };

  async function rollBack(err: unknown): Promise<never> {
    const cancelled = !flags.abortRequested && !flags.cutoverTimedOut && isCancellation(err);
    let reason: string;
    if (flags.abortRequested) {
      const during = status.currentStep ? ONLINE_TITLES[status.currentStep as OnlineStepName] : 'start-up';
      reason = `aborted by the operator during "${during}": ${status.abortReason}`;
    } else if (cancelled) {
      reason = 'the workflow was cancelled';
    } else if (flags.failure) {
      reason = `step "${ONLINE_TITLES[flags.failure.step as OnlineStepName] ?? flags.failure.step}" failed: ${flags.failure.message}`;
    } else {
      reason = describeFailure(err);
    }
    status.errors.push(reason);
    log.warn(`rolling back: ${reason}`);
    setPhase('compensating');
    await CancellationScope.nonCancellable(() =>
      saga.compensate((label, message) => status.errors.push(`Undoing ${label} failed: ${message}`)),
    );
    setPhase('rolled-back');
    status.currentStep = undefined;
    ctx.tracker.publish('rolled-back', `Rolled back: ${reason}`);

    const named = (state: StepState) =>
      status.compensation.filter((c) => c.state === state).map((c) => c.name);
    const [undone, notUndone, skipped] = [named('done'), named('failed'), named('skipped')];
    const message =
      `Migration rolled back: ${reason}. ` +
      (undone.length ? `Undone: ${undone.join(', ')}.` : 'Nothing needed undoing.') +
      (notUndone.length ? ` FAILED to undo (do it by hand, see the errors): ${notUndone.join(', ')}.` : '') +
      (skipped.length ? ` Not done (see the warnings): ${skipped.join(', ')}.` : '');
    if (cancelled) throw new CancelledFailure(message);
    throw ApplicationFailure.create({
      type: flags.abortRequested ? 'MigrationAborted' : 'MigrationRolledBack',
      message,
      nonRetryable: true,
      // Enough for a client to report the rollback when no worker is left to answer the status query.
      details: [{ reason, failedStep: flags.failure?.step, compensation: status.compensation }],
    });
  }

  return { resources, register, rollBack };
}
