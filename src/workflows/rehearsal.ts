// The guide's "Test the upgrade" as one workflow: restore the source's latest backup into a copy of the
// same size, dump the copy twice (the first warms its disk, the second is timed like production's will
// be), restore into a rehearsal target of the new version, verify, clean up everything, and report the
// timings and an estimate of the migration's downtime. Production is never written to and its services
// are never scaled: the migration's activities run with derived inputs whose source is the copy and whose
// services and config are empty. Runs in the workflow sandbox: deterministic, no Node built-ins, no secrets.
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
  log,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type {
  DumpResult,
  MigrationInput,
  UnexpectedRestoreErrorsDetails,
  VerificationReport,
  WorkspaceClaim,
} from '../activities/contract';
import { activity } from './activity-options';
import { applicationFailureOf, describeFailure, failureType, workspaceGone } from './failures';
import { SOURCE_ATTRIBUTE, type StepState, type StepStatus } from './definitions';
import {
  REHEARSAL_CLEANUP,
  REHEARSAL_STEPS,
  rehearsalStatusQuery,
  type DowntimeEstimate,
  type RehearsalCleanupName,
  type RehearsalFailureDetails,
  type RehearsalPhase,
  type RehearsalReport,
  type RehearsalStatus,
  type RehearsalStepName,
  type RehearsalWorkflowOptions,
} from './rehearsal-definitions';
import { formatDuration } from '../lib/duration';
import { isMalformedDumpError } from '../pg/restore-errors';
import { allowancesFor } from '../lib/downtime-allowances';
import { copyHandleOf, rehearsalHandleConflict, rehearsalTargetHandleOf } from '../lib/rehearsal-handles';
import { runInput, workspaceStartTimeoutOf } from './run-setup';
import { workspaceQueue } from './workspace-queue';
import { stepTracker } from './step-tracker';

const STEP_TITLES = Object.fromEntries(REHEARSAL_STEPS.map((s) => [s.name, s.title])) as Record<
  RehearsalStepName,
  string
>;
const CLEANUP_TITLES = Object.fromEntries(REHEARSAL_CLEANUP.map((c) => [c.name, c.title])) as Record<
  RehearsalCleanupName,
  string
>;

/** The error lines of a restore that ran through but hit errors the plan does not allow: a finding. */
function unexpectedRestoreErrorsOf(err: unknown): UnexpectedRestoreErrorsDetails | undefined {
  const failure = applicationFailureOf(err);
  if (failure?.type !== 'UnexpectedRestoreErrors') return undefined;
  const [unexpected, expected] = (failure.details ?? []) as Partial<UnexpectedRestoreErrorsDetails>;
  // An activity of an older version carried the lines in its message only: report that, not nothing.
  return [unexpected?.length ? unexpected : [failure.message], expected ?? []];
}

/** The report of a verification that ran through and found disagreements: a finding too. */
function verificationReportOf(err: unknown): VerificationReport | undefined {
  const failure = applicationFailureOf(err);
  if (failure?.type !== 'VerificationFailedError') return undefined;
  return failure.details?.[0] as VerificationReport | undefined;
}

function msOf(s: StepStatus): number | undefined {
  return s.startedAt !== undefined && s.endedAt !== undefined ? s.endedAt - s.startedAt : undefined;
}

export async function rehearsalWorkflow(
  started: MigrationInput,
  options: RehearsalWorkflowOptions = {},
): Promise<RehearsalReport> {
  const input = runInput(started);
  const { plan } = input;
  const useSearchAttributes = options.searchAttributes ?? true;
  const { text: workspaceStartTimeout, ms: workspaceStartTimeoutMs } = workspaceStartTimeoutOf(
    options.workspaceStartTimeout,
  );
  const conflict = rehearsalHandleConflict(plan);
  if (conflict) throw ApplicationFailure.nonRetryable(conflict, 'BadInputError');

  const copy = { handle: copyHandleOf(plan), environment: plan.source.environment };
  const rehearsalTarget = { ...plan.target, handle: rehearsalTargetHandleOf(plan) };
  // The migration's activities, pointed at the rehearsal's databases. Same migrationId, runId and startedAt
  // as the rehearsal's input: what it creates is recognised as its own (isOwnedBy) by all three.
  // No services and no config: nothing here may scale or repoint a production app.
  const onCopy: MigrationInput = {
    ...input,
    plan: { ...plan, source: copy, target: rehearsalTarget, services: [], config: [] },
  };
  /** The copy seen as a target: what deprovisionTarget and purgeTargetBackups remove. */
  const copyAsTarget: MigrationInput = {
    ...onCopy,
    plan: { ...onCopy.plan, target: { ...plan.target, ...copy } },
  };

  const status: RehearsalStatus = {
    rehearsalId: input.migrationId,
    platform: plan.platform,
    source: `${plan.source.environment}/${plan.source.handle}`,
    copy: `${copy.environment}/${copy.handle}`,
    target: `${rehearsalTarget.environment}/${rehearsalTarget.handle}`,
    targetVersion: plan.target.version,
    phase: 'running',
    steps: REHEARSAL_STEPS.map((s) => ({ name: s.name, title: s.title, state: 'pending' as StepState })),
    cleanup: [],
    errors: [],
    warnings: [],
  };
  setHandler(rehearsalStatusQuery, () => status);

  /** What the cleanup removes: set before the step that creates it, which may fail half-way. */
  const attempted = { copy: false, target: false };
  /** False when the step found a database this rehearsal did not create: never ours to delete. */
  const ours = { copy: true, target: true };
  let workspace: WorkspaceClaim | undefined;
  const restoreErrors = { expected: [] as string[], unexpected: [] as string[] };
  let verification: VerificationReport | undefined;
  /** What the successful attempt of each timed step took, as its activity measured it. */
  const attemptMs: { dump?: number; restore?: number; verify?: number } = {};
  let verificationSkipped: string | undefined;

  // Steps are timed in workflow time (deterministic) from before the activity to after it.
  const { step, publish, publishPhase, finish, runStep, undoSteps } = stepTracker<RehearsalStepName>({
    status,
    useSearchAttributes,
    noun: 'rehearsal step',
    logStarts: false,
  });
  const warn = (text: string): void => {
    status.warnings.push(text);
    log.warn(text);
  };

  function setPhase(phase: RehearsalPhase, details: string): void {
    status.phase = phase;
    publishPhase(phase);
    publish(phase, details);
  }

  if (useSearchAttributes) upsertSearchAttributes([{ key: SOURCE_ATTRIBUTE, value: status.source }]);
  publishPhase(status.phase);

  const findLatestBackup = activity('findLatestBackup', STEP_TITLES.findBackup);
  const restoreBackupCopy = activity('restoreBackupCopy', STEP_TITLES.restoreCopy);
  const claimWorkspace = activity(
    'claimWorkspace',
    `${STEP_TITLES.warmUpDump}: choose the worker that keeps it`,
  );
  const createTarget = activity('createTarget', STEP_TITLES.createTarget);
  const verifyTarget = activity('verifyTarget', STEP_TITLES.verify);

  /** What touches the dump runs on the queue of the worker that holds it (see the migration's). */
  function onWorkspace(ws: WorkspaceClaim) {
    const on = workspaceQueue(ws, workspaceStartTimeoutMs);
    return {
      warmUpDump: on('dumpSource', STEP_TITLES.warmUpDump),
      timedDump: on('dumpSource', STEP_TITLES.timedDump),
      restoreTarget: on('restoreTarget', STEP_TITLES.restore),
      removeDump: on('removeDump', CLEANUP_TITLES.removeDump),
    };
  }

  const dumpDetail = (d: DumpResult) =>
    d.streamed
      ? `nothing to write (copy.strategy stream: the restore step dumps as it restores), on ${workspace?.host ?? '?'}`
      : `${d.bytes} bytes, on ${workspace?.host ?? '?'}`;

  async function forward(): Promise<void> {
    const backup = await runStep(
      'findBackup',
      () => findLatestBackup(input),
      (b) => `backup ${b.id}, taken ${b.createdAt}`,
    );
    status.backup = backup;

    attempted.copy = true;
    try {
      await runStep(
        'restoreCopy',
        () => restoreBackupCopy(input, backup.id),
        (c) =>
          `${c.environment}/${c.handle}, PostgreSQL ${c.version}` +
          (c.containerSizeMb !== undefined ? `, ${c.containerSizeMb} MB container` : '') +
          (c.foundExisting ? ' (found from an earlier attempt)' : ''),
      );
    } catch (err) {
      if (failureType(err) === 'TargetExistsError') ours.copy = false;
      throw err;
    }

    // The first read of a freshly restored disk is slow on most platforms; the second dump reads it the
    // way production's disk is read, so only the second one is timed for the estimate.
    await runStep(
      'warmUpDump',
      async () => {
        workspace = await claimWorkspace(onCopy);
        step('warmUpDump').detail = `on ${workspace.host}`;
        return onWorkspace(workspace).warmUpDump(onCopy);
      },
      dumpDetail,
    );
    const dump = await runStep('timedDump', () => onWorkspace(workspace!).timedDump(onCopy), dumpDetail);
    status.dumpBytes = dump.bytes;
    attemptMs.dump = dump.durationMs;

    attempted.target = true;
    try {
      await runStep(
        'createTarget',
        () => createTarget(onCopy),
        (r) =>
          `${r.environment}/${r.handle}, PostgreSQL ${r.version}${r.foundExisting ? ' (found from an earlier attempt)' : ''}`,
      );
    } catch (err) {
      if (failureType(err) === 'TargetExistsError') ours.target = false;
      throw err;
    }

    try {
      const restored = await runStep(
        'restore',
        () => onWorkspace(workspace!).restoreTarget(onCopy, dump),
        (r) => `${r.expectedErrors.length} expected error(s)`,
      );
      restoreErrors.expected = restored.expectedErrors;
      attemptMs.restore = restored.durationMs;
      // copy.strategy stream dumps inside the restore: its dump steps wrote nothing.
      if (restored.streamed) status.dumpBytes = restored.streamed.bytes;
    } catch (err) {
      // Unexpected errors are what a rehearsal is for: reported, not a failure of the rehearsal.
      const found = unexpectedRestoreErrorsOf(err);
      if (!found) throw err;
      [restoreErrors.unexpected, restoreErrors.expected] = found;
      step('restore').detail =
        `${found[0].length} unexpected and ${found[1].length} expected error(s): see the report`;
    }

    if (restoreErrors.unexpected.length > 0) {
      verificationSkipped = 'the restore had unexpected errors, so the target is incomplete';
      finish('verify', 'skipped', `skipped: ${verificationSkipped}`);
      return;
    }
    try {
      verification = await runStep(
        'verify',
        () => verifyTarget(onCopy),
        (r) =>
          `${r.tablesCompared} table(s), ${r.rowsVerified} row(s), ${r.sequencesCompared} sequence(s) compared`,
      );
    } catch (err) {
      const report = verificationReportOf(err);
      if (!report) throw err;
      verification = report;
    }
    attemptMs.verify = verification.durationMs;
  }

  /** Removes what this run created, each step on its own: one failing must not stop the others. */
  async function cleanup(): Promise<void> {
    const undo = undoSteps(status.cleanup, CLEANUP_TITLES, {
      label: 'cleaning-up',
      doing: 'Cleaning up',
      noun: 'Cleanup step',
    });

    status.phase = 'cleaning-up';
    publishPhase(status.phase);
    const ws = workspace;
    if (ws) {
      // First: the dump holds every row of production and the roles' password hashes.
      await undo(
        'removeDump',
        () => onWorkspace(ws).removeDump(onCopy),
        (err) => {
          if (!workspaceGone(err)) return undefined;
          warn(
            `The dump could not be removed: no worker took the removal on host ${ws.host} within ` +
              `${workspaceStartTimeout}. Delete ${ws.dumpDir} on ${ws.host} by hand: it holds every row of ` +
              "the production database and the roles' password hashes.",
          );
          return `not removed: the worker on ${ws.host} seems gone; delete ${ws.dumpDir} there by hand`;
        },
      );
    }
    const lastCleanupState = () => status.cleanup[status.cleanup.length - 1]?.state;
    /** A database this run did not make is left alone, and the report says so. */
    const notOurs = (err: unknown): string | undefined => {
      if (failureType(err) !== 'NotOursError') return undefined;
      warn(describeFailure(err));
      return 'not ours: left in place';
    };
    if (attempted.target && ours.target) {
      const removed = await undo(
        'deprovisionTarget',
        () => activity('deprovisionTarget', CLEANUP_TITLES.deprovisionTarget)(onCopy),
        notOurs,
      );
      if (removed || lastCleanupState() !== 'skipped') {
        await undo('purgeTargetBackups', () =>
          activity('purgeTargetBackups', CLEANUP_TITLES.purgeTargetBackups)(onCopy),
        );
      }
    }
    if (attempted.copy && ours.copy) {
      const removed = await undo(
        'deprovisionCopy',
        () => activity('deprovisionTarget', CLEANUP_TITLES.deprovisionCopy)(copyAsTarget),
        notOurs,
      );
      if (removed || lastCleanupState() !== 'skipped') {
        await undo('purgeCopyBackups', () =>
          activity('purgeTargetBackups', CLEANUP_TITLES.purgeCopyBackups)(copyAsTarget),
        );
      }
    }
    status.currentStep = undefined;
  }

  /**
   * A step's time for the estimate: what its successful attempt took, as the activity measured it — the
   * step's time in the workflow also counts retries and waiting for a worker, which the migration may not
   * repeat. Workflow time when the activity did not say.
   */
  function measured(name: 'timedDump' | 'restore' | 'verify', own: number | undefined) {
    const total = msOf(step(name));
    const ms = own ?? total;
    // Worth a word when retries or waiting for a worker added noticeably to the step.
    const retried = own !== undefined && total !== undefined && total - own > Math.max(500, own / 2);
    return {
      ms,
      note: retried ? ` (the step took ${formatDuration(total)} with its retries and queueing)` : '',
    };
  }

  function estimate(): DowntimeEstimate {
    const allowance = allowancesFor(plan.platform);
    const services = plan.services.length;
    const apps = new Set(plan.config.map((c) => c.app)).size;
    const dump = measured('timedDump', attemptMs.dump);
    const restore = measured('restore', attemptMs.restore);
    const verify = measured('verify', attemptMs.verify);
    const verifyMs = step('verify').state === 'skipped' ? undefined : verify.ms;
    const scale = (title: string, name: 'scaleDown' | 'scaleUp') => ({
      name,
      title,
      ms: services * allowance.scaleServiceMs,
      basis: 'allowance' as const,
      detail: `${services} service(s) × ${formatDuration(allowance.scaleServiceMs)} (${plan.platform} allowance)`,
    });
    const parts: DowntimeEstimate['parts'] = [
      scale('Scale services down', 'scaleDown'),
      {
        name: 'dump',
        title: 'Dump',
        ms: dump.ms ?? 0,
        basis: 'measured',
        detail: `the second dump of the copy${dump.note}`,
      },
      {
        name: 'restore',
        title: 'Restore',
        ms: restore.ms ?? 0,
        basis: 'measured',
        detail: `the restore into the rehearsal target${restore.note}`,
      },
      {
        name: 'verify',
        title: 'Verify',
        ms: verifyMs ?? 0,
        basis: 'measured',
        detail:
          verifyMs === undefined
            ? 'not measured: the verification was skipped'
            : `the verification${verify.note}`,
      },
      {
        name: 'updateConfig',
        title: 'Update services to the target',
        ms: apps * allowance.configSetMs,
        basis: 'allowance',
        detail: `${apps} app(s) × ${formatDuration(allowance.configSetMs)} (${plan.platform} allowance)`,
      },
      scale('Scale services back up', 'scaleUp'),
    ];
    const excludes: string[] = [];
    if (verifyMs === undefined) excludes.push('the verification (skipped)');
    if (plan.cutover.confirm) {
      excludes.push('the time a person takes to confirm the cutover (plan.cutover.confirm: true)');
    }
    return { totalMs: parts.reduce((sum, p) => sum + p.ms, 0), parts, excludes };
  }

  function report(): RehearsalReport {
    const problems: string[] = [];
    const malformed = restoreErrors.unexpected.filter(isMalformedDumpError).length;
    const fromSource = restoreErrors.unexpected.length - malformed;
    if (fromSource > 0) {
      problems.push(
        `the restore into PostgreSQL ${plan.target.version} had ${fromSource} unexpected ` +
          'error(s): fix them on the source (or list harmless ones in restore.expectedErrors) before migrating',
      );
    }
    if (malformed > 0) {
      problems.push(
        `the restore into PostgreSQL ${plan.target.version} had ${malformed} unexpected error(s) showing that ` +
          'the dump file itself is malformed (a defect of pgshift or pg_dumpall, or a corrupted file): do not ' +
          "change the source for them; report them to pgshift's maintainers with the lines listed",
      );
    }
    if (verification && !verification.ok) {
      problems.push(
        `the copy and the rehearsal target disagree: ${verification.mismatches.slice(0, 5).join('; ')}`,
      );
    }
    for (const c of status.cleanup.filter((x) => x.state === 'failed')) {
      problems.push(`cleanup step "${c.title}" failed (${c.error}): do it by hand`);
    }
    for (const c of status.cleanup.filter((x) => x.state === 'skipped' && x.detail?.startsWith('not ours'))) {
      problems.push(
        `cleanup step "${c.title}" found a database this run did not create and left it in place`,
      );
    }
    const timing = (name: RehearsalStepName) => msOf(step(name)) ?? 0;
    return {
      rehearsalId: status.rehearsalId,
      platform: status.platform,
      source: status.source,
      copy: status.copy,
      target: status.target,
      targetVersion: status.targetVersion,
      backup: status.backup!,
      ok: problems.length === 0,
      problems,
      phases: status.steps.map((s) => ({
        name: s.name as RehearsalStepName,
        title: s.title,
        state: s.state,
        ms: msOf(s),
      })),
      dumps: {
        warmUpMs: timing('warmUpDump'),
        timedMs: attemptMs.dump ?? timing('timedDump'),
        bytes: status.dumpBytes ?? 0,
      },
      estimate: estimate(),
      restore: { expectedErrors: restoreErrors.expected, unexpectedErrors: restoreErrors.unexpected },
      ...(verification ? { verification } : {}),
      ...(verificationSkipped ? { verificationSkipped } : {}),
      cleanup: status.cleanup,
      warnings: status.warnings,
    };
  }

  let failed: unknown;
  /** The step that was running when the forward path failed (a step ending in a finding does not fail it). */
  let failedStep: StepStatus | undefined;
  try {
    await forward();
  } catch (err) {
    failed = err;
    failedStep = status.currentStep ? step(status.currentStep as RehearsalStepName) : undefined;
  }
  // Cleanup runs however the rehearsal ended, and a cancellation does not interrupt it.
  await CancellationScope.nonCancellable(cleanup);

  if (failed === undefined) {
    status.report = report();
    setPhase('completed', status.report.ok ? 'Rehearsal completed' : 'Rehearsal completed: problems found');
    return status.report;
  }

  const cancelled = isCancellation(failed);
  const reason = cancelled
    ? 'the rehearsal was cancelled'
    : failedStep
      ? `step "${failedStep.title}" failed: ${failedStep.error}`
      : describeFailure(failed);
  status.errors.unshift(reason);
  const cleaned = status.cleanup.filter((c) => c.state === 'done').map((c) => c.name);
  const notCleaned = status.cleanup.filter((c) => c.state !== 'done').map((c) => c.name);
  const message =
    `Rehearsal ${cancelled ? 'cancelled' : 'failed'}: ${reason}. ` +
    (cleaned.length ? `Cleaned up: ${cleaned.join(', ')}.` : 'Nothing needed cleaning up.') +
    (notCleaned.length ? ` NOT cleaned up (see the warnings and errors): ${notCleaned.join(', ')}.` : '');
  setPhase(cancelled ? 'cancelled' : 'failed', message);
  if (cancelled) throw new CancelledFailure(message);
  const details: RehearsalFailureDetails = {
    reason,
    ...(failedStep ? { failedStep: failedStep.name } : {}),
    cleanup: status.cleanup,
  };
  throw ApplicationFailure.create({
    type: 'RehearsalFailed',
    message,
    nonRetryable: true,
    details: [details],
  });
}
