// What the parts of the online migration (method: logical) share: its input and status, the step tracker,
// what the signals set, and how a warning or an error after the point of no return is recorded.
// Runs in the workflow sandbox.
import { CancellationScope, log, setHandler } from '@temporalio/workflow';
import type { MigrationInput } from '../activities/contract';
import type { Plan } from '../plan/schema';
import {
  ONLINE_STEPS,
  abortSignal,
  cutoverSignal,
  deprovisionSourceSignal,
  keepSourceSignal,
  statusQuery,
  type MigrationPhase,
  type MigrationStatus,
  type OnlineStepName,
} from './definitions';
import { oneLine } from './failures';
import type { stepTracker } from './step-tracker';

export const ONLINE_TITLES = Object.fromEntries(ONLINE_STEPS.map((s) => [s.name, s.title])) as Record<
  OnlineStepName,
  string
>;

/** What the signals and the steps set; read by the rest of the workflow. */
export interface OnlineFlags {
  abortRequested: boolean;
  cutoverTimedOut: boolean;
  awaitingSourceDecision: boolean;
  sourceDeprovisionConfirmed: boolean;
  sourceDeprovisionStarted: boolean;
  keepSource: boolean;
  /** The step whose failure the rollback reports. */
  failure?: { step: string; message: string };
}

export interface OnlineContext {
  input: MigrationInput;
  plan: Plan;
  status: MigrationStatus;
  tracker: ReturnType<typeof stepTracker<OnlineStepName>>;
  flags: OnlineFlags;
  warn(text: string): void;
  /** A failure after the point of no return: reported, never rolled back. */
  after(text: string): void;
  setPhase(phase: MigrationPhase): void;
}

export function newFlags(): OnlineFlags {
  return {
    abortRequested: false,
    cutoverTimedOut: false,
    awaitingSourceDecision: false,
    sourceDeprovisionConfirmed: false,
    sourceDeprovisionStarted: false,
    keepSource: false,
  };
}

/**
 * The same signals and query as the dump method (migration.ts), so `pgshift cutover`, `abort`, `status`,
 * `deprovision-source` and `keep-source` work unchanged. An abort cancels `forwardScope`.
 */
export function installHandlers(ctx: OnlineContext, forwardScope: CancellationScope): void {
  const { status, flags, plan, warn } = ctx;
  const { step } = ctx.tracker;

  ctx.tracker.publishPhase(status.phase);
  setHandler(statusQuery, () => status);

  setHandler(cutoverSignal, (arg) => {
    const by = arg?.by ? ` from ${oneLine(arg.by, 100)}` : '';
    if (status.cutover.waiting) {
      status.cutover.confirmed = true;
      step('awaitCutover').detail = `confirmed${by}`;
      return;
    }
    if (step('awaitCutover').state === 'pending') {
      // A confirmation must follow the state it confirms (a complete initial sync); one sent before is a mistake.
      status.cutover.earlySignalsIgnored += 1;
      const during = status.currentStep ? ONLINE_TITLES[status.currentStep as OnlineStepName] : 'start-up';
      warn(
        `Cutover signal${by} ignored: it arrived during "${during}", before the migration waited for it. ` +
          'Send it again once the status shows the migration waiting for cutover.',
      );
      return;
    }
    warn(`Cutover signal${by} ignored: the cutover gate is already passed.`);
  });

  setHandler(abortSignal, (arg) => {
    const reason = oneLine(arg?.reason || 'no reason given');
    if (status.pointOfNoReturn) {
      warn(
        `Abort ignored (reason: ${reason}): the services already run on the target (point of no return), ` +
          'so nothing is rolled back any more.',
      );
      return;
    }
    if (flags.abortRequested || status.phase === 'compensating' || status.phase === 'rolled-back') {
      warn(`Abort ignored (reason: ${reason}): the migration is already rolling back.`);
      return;
    }
    flags.abortRequested = true;
    status.abortReason = reason;
    forwardScope.cancel();
  });

  setHandler(deprovisionSourceSignal, () => {
    const mode = plan.cleanup.deprovisionSource.mode;
    if (mode !== 'signal') {
      warn(`Deprovision-source signal ignored: plan.cleanup.deprovisionSource.mode is "${mode}".`);
    } else if (!flags.awaitingSourceDecision) {
      // Deleting the source is irreversible: only a confirmation given after the migration completed counts.
      warn(
        'Deprovision-source signal ignored: the migration is not waiting for it. ' +
          'Send it again once the status shows awaiting-source-deprovision.',
      );
    } else {
      flags.sourceDeprovisionConfirmed = true;
    }
  });

  setHandler(keepSourceSignal, () => {
    if (flags.sourceDeprovisionStarted) {
      warn('Keep-source signal ignored: deprovisioning the source had already started.');
      return;
    }
    flags.keepSource = true;
  });
}

/** A warning in the status and the log. */
export function warner(status: MigrationStatus): (text: string) => void {
  return (text) => {
    status.warnings.push(text);
    log.warn(text);
  };
}
