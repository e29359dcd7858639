// The guide as one durable workflow: each step an activity, a cutover gate, and a saga that undoes what
// was done when a step fails (or the operator aborts) before services start on the target.
// Runs in the workflow sandbox: deterministic, no Node built-ins, no secrets (the input holds handles only).
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  log,
  patched,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type {
  DumpResult,
  MigrationInput,
  RecordedService,
  RestoreResult,
  VerificationReport,
  WorkspaceClaim,
} from '../activities/contract';
import { activity } from './activity-options';
import { describeFailure, failureType, oneLine, workspaceGone, workspaceGoneByPing } from './failures';
import { formatDuration, parseDuration } from '../lib/duration';
import {
  COMPENSATIONS,
  SOURCE_ATTRIBUTE,
  STEPS,
  abortSignal,
  cutoverSignal,
  deprovisionSourceSignal,
  keepSourceSignal,
  statusQuery,
  type CompensationName,
  type MigrationPhase,
  type MigrationStatus,
  type MigrationSummary,
  type MigrationWorkflowOptions,
  type StepName,
  type StepState,
} from './definitions';
import { runInput, workspaceStartTimeoutOf } from './run-setup';
import { pingStartTimeoutOf, workspaceQueue } from './workspace-queue';
import { stepTracker } from './step-tracker';
import { onlineMigrationWorkflow } from './online-migration';
import { chooseDowntimeStart, describeWindow, estimateDowntime, formatInstant, windowZone } from './window';

/** Dumps made, then lost, before the migration gives up: each attempt claims a worker anew. */
const MAX_WORKSPACE_CLAIMS = 2;

/** The claimed worker never took the dump: the saga still removes there, the forward path claims again. */
class LostWorkspace extends Error {
  constructor(
    readonly ws: WorkspaceClaim,
    cause: unknown,
  ) {
    super(describeFailure(cause), { cause });
    this.name = 'LostWorkspace';
  }
}

const STEP_TITLES = Object.fromEntries(STEPS.map((s) => [s.name, s.title])) as Record<StepName, string>;
const COMPENSATION_TITLES = Object.fromEntries(COMPENSATIONS.map((c) => [c.name, c.title])) as Record<
  CompensationName,
  string
>;

export async function migrationWorkflow(
  started: MigrationInput,
  options: MigrationWorkflowOptions = {},
): Promise<MigrationSummary> {
  // method: logical is its own workflow body (online-migration.ts); a plan without a method is a dump.
  if (started.plan.method === 'logical') return onlineMigrationWorkflow(started, options);
  const input = runInput(started);
  const { plan } = input;
  const useSearchAttributes = options.searchAttributes ?? true;
  const { text: workspaceStartTimeout, ms: workspaceStartTimeoutMs } = workspaceStartTimeoutOf(
    options.workspaceStartTimeout,
  );

  const status: MigrationStatus = {
    migrationId: input.migrationId,
    platform: plan.platform,
    source: `${plan.source.environment}/${plan.source.handle}`,
    target: `${plan.target.environment}/${plan.target.handle}`,
    phase: 'running',
    steps: STEPS.map((s) => ({ name: s.name, title: s.title, state: 'pending' as StepState })),
    compensation: [],
    pointOfNoReturn: false,
    downtime: {},
    cutover: { waiting: false, confirmed: false, earlySignalsIgnored: 0 },
    method: 'dump',
    errors: [],
    warnings: [],
  };

  // What the saga must undo: set before each step is attempted, since a step that failed half-way (or
  // was cancelled) may still have left something behind.
  const attempted = { createTarget: false, scaleDown: false, updateConfig: false };
  /** Each worker a dump was sent to, once: where the dump must be removed, even if it never started. */
  const workspaces: WorkspaceClaim[] = [];
  /** False when createTarget found a database that this migration did not create: never ours to delete. */
  let targetIsOurs = true;
  /** Made by this run's createTarget and not yet sent a restore: the first restore may skip the reset. */
  let freshTarget = false;
  let recordedServices: RecordedService[] = [];
  let failure: { step: string; message: string } | undefined;
  let abortRequested = false;
  let cutoverTimedOut = false;
  let awaitingSourceDecision = false;
  let sourceDeprovisionConfirmed = false;
  let sourceDeprovisionStarted = false;
  let keepSource = false;

  const { step, publish, publishPhase, enter, finish, runStep, undoSteps } = stepTracker<StepName>({
    status,
    useSearchAttributes,
    noun: 'step',
    logStarts: true,
    onFailed: (name, message) => {
      failure = { step: name, message };
    },
  });
  const warn = (text: string): void => {
    status.warnings.push(text);
    log.warn(text);
  };

  function setPhase(phase: MigrationPhase): void {
    status.phase = phase;
    publishPhase(phase);
  }

  setHandler(statusQuery, () => status);

  setHandler(cutoverSignal, (arg) => {
    const by = arg?.by ? ` from ${oneLine(arg.by, 100)}` : '';
    if (status.cutover.waiting) {
      status.cutover.confirmed = true;
      step('awaitCutover').detail = `confirmed${by}`;
      return;
    }
    if (step('awaitCutover').state === 'pending') {
      // A confirmation must follow the verification report it confirms; one sent before is a mistake.
      status.cutover.earlySignalsIgnored += 1;
      const during = status.currentStep ? STEP_TITLES[status.currentStep as StepName] : 'start-up';
      warn(
        `Cutover signal${by} ignored: it arrived during "${during}", before the migration waited for it. ` +
          'Send it again once the status shows the migration waiting for cutover.',
      );
      return;
    }
    warn(`Cutover signal${by} ignored: the cutover gate is already passed.`);
  });

  // Created before any step so an abort that arrives with the start request still cancels the first one.
  const forwardScope = new CancellationScope({ cancellable: true });

  setHandler(abortSignal, (arg) => {
    const reason = oneLine(arg?.reason || 'no reason given');
    if (status.pointOfNoReturn) {
      warn(
        `Abort ignored (reason: ${reason}): the services already run on the target (point of no return), ` +
          'so nothing is rolled back any more.',
      );
      return;
    }
    if (abortRequested || status.phase === 'compensating' || status.phase === 'rolled-back') {
      warn(`Abort ignored (reason: ${reason}): the migration is already rolling back.`);
      return;
    }
    abortRequested = true;
    status.abortReason = reason;
    forwardScope.cancel();
  });

  setHandler(deprovisionSourceSignal, () => {
    const mode = plan.cleanup.deprovisionSource.mode;
    if (mode !== 'signal') {
      warn(`Deprovision-source signal ignored: plan.cleanup.deprovisionSource.mode is "${mode}".`);
    } else if (!awaitingSourceDecision) {
      // Deleting the source is irreversible: only a confirmation given after the migration completed counts.
      warn(
        'Deprovision-source signal ignored: the migration is not waiting for it. ' +
          'Send it again once the status shows awaiting-source-deprovision.',
      );
    } else {
      sourceDeprovisionConfirmed = true;
    }
  });

  setHandler(keepSourceSignal, () => {
    if (sourceDeprovisionStarted) {
      warn('Keep-source signal ignored: deprovisioning the source had already started.');
      return;
    }
    keepSource = true;
  });

  if (useSearchAttributes) {
    upsertSearchAttributes([{ key: SOURCE_ATTRIBUTE, value: status.source }]);
  }
  publishPhase(status.phase);

  const preflight = activity('preflight', STEP_TITLES.preflight);
  const testSchema = activity('testSchema', STEP_TITLES.testSchema);
  const createTarget = activity('createTarget', STEP_TITLES.createTarget);
  const scaleServicesDown = activity('scaleServicesDown', STEP_TITLES.scaleDown);
  const claimWorkspace = activity('claimWorkspace', `${STEP_TITLES.dump}: choose the worker that keeps it`);
  const verifyTarget = activity('verifyTarget', STEP_TITLES.verify);
  const updateServiceConfig = activity('updateServiceConfig', STEP_TITLES.updateConfig);
  const scaleServicesUp = activity('scaleServicesUp', STEP_TITLES.scaleUp);
  const vacuumAnalyze = activity('vacuumAnalyze', STEP_TITLES.vacuumAnalyze);
  const deprovisionSource = activity('deprovisionSource', STEP_TITLES.deprovisionSource);

  /** What touches the dump file, on the queue of the worker that holds it. */
  function onWorkspace(ws: WorkspaceClaim) {
    const on = workspaceQueue(ws, workspaceStartTimeoutMs);
    return {
      dumpSource: on('dumpSource', STEP_TITLES.dump),
      // A retry finds whatever the attempt before it restored: the target is reset then, whatever it was.
      restoreTarget: on('restoreTarget', STEP_TITLES.restore, ([i, dump]) => [
        i,
        dump,
        { freshTarget: false },
      ]),
      removeDump: on('removeDump', COMPENSATION_TITLES.removeDump),
    };
  }

  /** How the worker on `ws` was found gone during the `what`, for the warnings. */
  const goneHow = (err: unknown, what: string, ws: WorkspaceClaim): string =>
    workspaceGoneByPing(err)
      ? `The worker on host ${ws.host} failed or stopped answering during the ${what}, and no worker ` +
        `took a check on its queue within ${formatDuration(pingStartTimeoutOf(workspaceStartTimeoutMs))}`
      : `No worker took the ${what} on host ${ws.host} within ${workspaceStartTimeout}`;

  const leftBehind = (ws: WorkspaceClaim): string =>
    `The dump could not be removed: no worker took the removal on host ${ws.host} within ` +
    `${workspaceStartTimeout} (its worker seems gone). Delete ${ws.dumpDir} on ${ws.host} by hand: ` +
    "it holds every row of the source and the roles' password hashes.";

  /**
   * The claim picks the worker whose disk the dump goes to: part of the dump step, unless it was made just
   * before the downtime began (`claimed`).
   */
  async function dumpStep(claimed?: WorkspaceClaim): Promise<{ ws: WorkspaceClaim; dump: DumpResult }> {
    const made = await runStep(
      'dump',
      async () => {
        const ws = claimed ?? (await claimWorkspace(input));
        if (!workspaces.some((w) => w.taskQueue === ws.taskQueue)) workspaces.push(ws);
        step('dump').detail = `on ${ws.host}`;
        try {
          return { ws, dump: await onWorkspace(ws).dumpSource(input) };
        } catch (err) {
          if (workspaceGone(err)) throw new LostWorkspace(ws, err);
          throw err;
        }
      },
      ({ ws, dump }) =>
        dump.streamed
          ? `nothing to write (copy.strategy stream): the restore step streams the source into the target, on ${ws.host}`
          : `${dump.bytes} bytes, ${dump.droppedStatements} password statement(s) removed, on ${ws.host}`,
    );
    status.dumpBytes = made.dump.bytes;
    return made;
  }

  /** Waits, on a durable timer, for the downtime window (plan.cutover.window): the scale-down comes next. */
  async function windowStep(sourceSizeBytes: number | undefined): Promise<void> {
    const window = plan.cutover.window;
    if (!window) {
      finish('awaitWindow', 'skipped', 'no window (plan.cutover.window): the downtime starts at once');
      return;
    }
    const s = enter('awaitWindow');
    const estimate = estimateDowntime(plan, sourceSizeBytes);
    const choice = chooseDowntimeStart(window, Date.now(), estimate.ms);
    if (choice.refusal) {
      finish('awaitWindow', 'failed', undefined, choice.refusal);
      failure = { step: 'awaitWindow', message: choice.refusal };
      throw ApplicationFailure.nonRetryable(choice.refusal, 'DowntimeWindowMissed');
    }
    if (choice.warning) warn(choice.warning);
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
    s.detail = `waiting for the window: downtime starts at ${at} (in ${formatDuration(waitMs)}; ${estimated})`;
    status.window.waiting = true;
    setPhase('awaiting-window');
    publish('awaitWindow', `**${STEP_TITLES.awaitWindow}**: ${s.detail}`);
    try {
      await sleep(waitMs);
    } catch (err) {
      if (isCancellation(err)) finish('awaitWindow', 'cancelled', undefined, describeFailure(err));
      throw err;
    } finally {
      status.window.waiting = false;
      if (status.phase === 'awaiting-window') setPhase('running');
    }
    finish('awaitWindow', 'done', `waited ${formatDuration(waitMs)}: downtime started at ${at}`);
  }

  async function cutoverGate(): Promise<void> {
    enter('awaitCutover');
    if (!plan.cutover.confirm) {
      finish('awaitCutover', 'done', 'no confirmation required (plan.cutover.confirm: false)');
      return;
    }
    const timeout = plan.cutover.timeout;
    // The plan schema accepted it only if parseDuration does.
    const timeoutMs = parseDuration(timeout)!;
    status.cutover.waiting = true;
    status.cutover.deadline = Date.now() + timeoutMs;
    setPhase('awaiting-cutover');
    let confirmed: boolean;
    try {
      confirmed = await condition(() => status.cutover.confirmed, timeoutMs);
    } catch (err) {
      if (isCancellation(err)) finish('awaitCutover', 'cancelled', undefined, describeFailure(err));
      throw err;
    } finally {
      status.cutover.waiting = false;
      if (status.phase === 'awaiting-cutover') setPhase('running');
    }
    if (confirmed) {
      finish('awaitCutover', 'done');
      return;
    }
    if (plan.cutover.onTimeout === 'proceed') {
      warn(`Cutover not confirmed within ${timeout}; proceeding as plan.cutover.onTimeout says.`);
      finish(
        'awaitCutover',
        'done',
        `not confirmed within ${timeout}; proceeded (plan.cutover.onTimeout: proceed)`,
      );
      return;
    }
    cutoverTimedOut = true;
    const message = `cutover not confirmed within ${timeout} (plan.cutover.onTimeout: abort)`;
    finish('awaitCutover', 'failed', undefined, message);
    failure = { step: 'awaitCutover', message };
    throw ApplicationFailure.nonRetryable(message, 'CutoverTimeout');
  }

  async function schemaTestStep(): Promise<void> {
    const schema = await runStep(
      'testSchema',
      () => testSchema(input),
      (r) =>
        r.skipped
          ? 'source and target have the same major version'
          : `${r.expectedErrors.length} expected error(s), nothing unexpected`,
    );
    if (schema.skipped) step('testSchema').state = 'skipped';
  }

  async function createTargetStep(): Promise<void> {
    attempted.createTarget = true;
    try {
      const created = await runStep(
        'createTarget',
        () => createTarget(input),
        (r) =>
          `${r.environment}/${r.handle}, PostgreSQL ${r.version}${r.foundExisting ? ' (found from an earlier attempt)' : ''}`,
      );
      freshTarget = !created.foundExisting;
    } catch (err) {
      if (failureType(err) === 'TargetExistsError') targetIsOurs = false;
      throw err;
    }
  }

  /** The current details and PgshiftStep while steps overlap: the first of them still running leads. */
  function publishOverlap(names: StepName[]): void {
    const running = names.filter((n) => step(n).state === 'running');
    if (running.length === 0) return;
    status.currentStep = running[0];
    const at = (n: StepName) => status.steps.findIndex((s) => s.name === n) + 1;
    const each = running.map((n) => `**${STEP_TITLES[n]}** (step ${at(n)} of ${status.steps.length})`);
    publish(running[0], each.join(', alongside '));
  }

  /**
   * The schema test and the target's creation side by side: both come before any downtime and neither needs
   * the other (the test restores into a scratch database of its own, never into the target). Each is waited
   * for whatever becomes of the other, and neither is cancelled when the other fails: the saga must not
   * deprovision a target that is still being created, nor report a rollback while the scratch database is
   * still being removed. A failed schema test therefore also undoes a target; a rare path, paid for by
   * every migration taking the longer of the two instead of their sum. The failure reported is the first
   * in the guide's order.
   */
  async function schemaTestBesideTarget(): Promise<void> {
    const names: StepName[] = ['testSchema', 'createTarget'];
    const runs = [schemaTestStep(), createTargetStep()];
    publishOverlap(names);
    const shown = () => publishOverlap(names);
    for (const run of runs) void run.then(shown, shown);
    const [schema, target] = await Promise.allSettled(runs);
    if (schema.status === 'rejected') {
      const s = step('testSchema');
      if (s.state === 'failed') failure = { step: 'testSchema', message: s.error ?? '' };
      throw schema.reason;
    }
    if (target.status === 'rejected') throw target.reason;
  }

  /** Everything before the point of no return: all of it can be undone by the saga. */
  async function forward(): Promise<void> {
    // Before this, the schema test ran before the target's creation and the dump's worker was claimed
    // inside the downtime: runs started then replay as they ran.
    const overlapped = patched('parallel-schema-test');
    const pre = await runStep(
      'preflight',
      () => preflight(input),
      (r) =>
        `PostgreSQL ${r.sourceVersion} → ${r.targetVersion}, pg_dumpall ${r.clientVersion}, ` +
        `${r.services.length} service(s) recorded`,
    );
    recordedServices = pre.services;
    for (const w of pre.warnings) warn(w);

    if (overlapped) {
      await schemaTestBesideTarget();
    } else {
      await schemaTestStep();
      await createTargetStep();
    }

    await windowStep(pre.sourceSizeBytes);

    // The worker that keeps the dump is chosen before the services stop (after the window's wait, so it is
    // one that answered moments ago): the downtime waits on nothing that could have happened before it.
    // The workspace is recorded for the saga only once a dump is sent there.
    let claimed = overlapped ? await claimWorkspace(input) : undefined;

    attempted.scaleDown = true;
    status.downtime.startedAt = Date.now();
    await runStep(
      'scaleDown',
      () => scaleServicesDown(input, recordedServices),
      () =>
        recordedServices.map((s) => `${s.app}/${s.service}: ${s.containerCount} → 0`).join(', ') ||
        'no services',
    );

    const restoreDetail = (r: RestoreResult) =>
      (r.streamed
        ? `${r.streamed.bytes} bytes streamed, ${r.streamed.droppedStatements} password ` +
          'statement(s) removed, '
        : '') + `${r.expectedErrors.length} expected error(s)`;
    // The dump exists only on the worker that made it, which may go away (or lose the file) before the
    // restore has read it: then another worker is claimed and dumps again, a bounded number of times.
    for (let claims = 1; ; claims += 1) {
      const again = claims < MAX_WORKSPACE_CLAIMS;
      let made: { ws: WorkspaceClaim; dump: DumpResult };
      const preclaimed = claimed;
      claimed = undefined;
      try {
        made = await dumpStep(preclaimed);
      } catch (err) {
        if (!(err instanceof LostWorkspace) || !again) throw err;
        warn(
          `${goneHow(err.cause, 'dump', err.ws)} (its worker seems gone); claiming another worker and ` +
            'dumping there.',
        );
        failure = undefined;
        continue;
      }
      try {
        const fresh = freshTarget;
        freshTarget = false;
        const restored = await runStep(
          'restore',
          () => onWorkspace(made.ws).restoreTarget(input, made.dump, { freshTarget: fresh }),
          restoreDetail,
        );
        if (restored.streamed) status.dumpBytes = restored.streamed.bytes;
        break;
      } catch (err) {
        if (!again) throw err;
        if (workspaceGone(err)) {
          warn(
            `${goneHow(err, 'restore', made.ws)}, where the dump lies (its worker seems gone); claiming ` +
              'another worker and dumping again.',
          );
        } else if (failureType(err) === 'DumpMissingError') {
          warn(`The dump was not found where the restore ran (${describeFailure(err)}); dumping again.`);
        } else {
          throw err;
        }
        failure = undefined;
      }
    }

    const report: VerificationReport = await runStep(
      'verify',
      () => verifyTarget(input),
      (r) =>
        `${r.tablesCompared} table(s), ${r.rowsVerified} row(s), ${r.sequencesCompared} sequence(s) compared`,
    );
    status.verification = report;
    if (!report.ok) {
      const message = `VerificationFailedError: source and target disagree: ${report.mismatches.slice(0, 10).join('; ')}`;
      finish('verify', 'failed', undefined, message);
      failure = { step: 'verify', message };
      throw ApplicationFailure.nonRetryable(message, 'VerificationFailedError');
    }

    await cutoverGate();

    attempted.updateConfig = true;
    await runStep(
      'updateConfig',
      () => updateServiceConfig(input),
      () => plan.config.map((c) => `${c.app}: ${c.variable}`).join(', ') || 'no configuration to change',
    );
  }

  async function compensate(): Promise<void> {
    // One undo failing does not stop the others: each leaves less for the operator to clean by hand.
    const undo = undoSteps(status.compensation, COMPENSATION_TITLES, {
      label: 'compensating',
      doing: 'Rolling back',
      noun: 'Rollback step',
    });

    if (attempted.updateConfig) {
      const reverted = await undo('revertServiceConfig', () =>
        activity('revertServiceConfig', COMPENSATION_TITLES.revertServiceConfig)(input),
      );
      if (!reverted) {
        // Services whose config may still name the target must not start, and the target they would use
        // must not go: stop here and leave the rest to the operator, who is told exactly that.
        status.errors.push(
          'The services were left at zero and the target kept, because their configuration may still point at ' +
            'the target: set it back to the source by hand, scale the services up, then deprovision the target.',
        );
        return;
      }
    }
    if (attempted.scaleDown) {
      const up = activity('scaleServicesUp', COMPENSATION_TITLES.scaleServicesUp);
      if (await undo('scaleServicesUp', () => up(input, recordedServices)))
        status.downtime.endedAt = Date.now();
    }
    // After the scale-up: removing the dump must not lengthen the downtime (nor a gone worker's timeout).
    for (const ws of workspaces) {
      await undo(
        'removeDump',
        () => onWorkspace(ws).removeDump(input),
        (err) => {
          if (!workspaceGone(err)) return undefined;
          warn(leftBehind(ws));
          return `not removed: the worker on ${ws.host} seems gone; delete ${ws.dumpDir} there by hand`;
        },
      );
    }
    if (attempted.createTarget && targetIsOurs) {
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
  }

  async function rollBack(err: unknown): Promise<never> {
    const cancelled = !abortRequested && !cutoverTimedOut && isCancellation(err);
    let reason: string;
    if (abortRequested) {
      const during = status.currentStep ? STEP_TITLES[status.currentStep as StepName] : 'start-up';
      reason = `aborted by the operator during "${during}": ${status.abortReason}`;
    } else if (cancelled) {
      reason = 'the workflow was cancelled';
    } else if (failure) {
      const title = STEP_TITLES[failure.step as StepName] ?? failure.step;
      reason = `step "${title}" failed: ${failure.message}`;
    } else {
      reason = describeFailure(err);
    }
    status.errors.push(reason);
    log.warn(`rolling back: ${reason}`);
    setPhase('compensating');
    await CancellationScope.nonCancellable(compensate);
    setPhase('rolled-back');
    status.currentStep = undefined;
    publish('rolled-back', `Rolled back: ${reason}`);

    const undone = status.compensation.filter((c) => c.state === 'done').map((c) => c.name);
    const notUndone = status.compensation.filter((c) => c.state === 'failed').map((c) => c.name);
    const skipped = status.compensation.filter((c) => c.state === 'skipped').map((c) => c.name);
    const message =
      `Migration rolled back: ${reason}. ` +
      (undone.length ? `Undone: ${undone.join(', ')}.` : 'Nothing needed undoing.') +
      (notUndone.length ? ` FAILED to undo (do it by hand): ${notUndone.join(', ')}.` : '') +
      (skipped.length ? ` Not done (see the warnings): ${skipped.join(', ')}.` : '');
    if (cancelled) throw new CancelledFailure(message);
    throw ApplicationFailure.create({
      type: abortRequested ? 'MigrationAborted' : 'MigrationRolledBack',
      message,
      nonRetryable: true,
      // Enough for a client to report the rollback when no worker is left to answer the status query.
      details: [{ reason, failedStep: failure?.step, compensation: status.compensation }],
    });
  }

  function summary(): MigrationSummary {
    const { startedAt, endedAt } = status.downtime;
    return {
      ...status,
      downtimeMs: startedAt !== undefined && endedAt !== undefined ? endedAt - startedAt : undefined,
      rowsVerified: status.verification?.rowsVerified ?? 0,
    };
  }

  try {
    await forwardScope.run(forward);
    // An abort or a cancellation may land between the last forward step and this line.
    if (abortRequested) throw new CancelledFailure('aborted');
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cancelled');
  } catch (err) {
    return await rollBack(err);
  }

  // The point of no return: services start on the target, and writes may land there. From here on a
  // failure is reported, never rolled back, and cancellation only skips what is optional.
  status.pointOfNoReturn = true;
  const after = (text: string): void => {
    status.errors.push(text);
    log.error(text);
  };

  try {
    await CancellationScope.nonCancellable(() =>
      runStep(
        'scaleUp',
        () => scaleServicesUp(input, recordedServices),
        () =>
          recordedServices.map((s) => `${s.app}/${s.service}: 0 → ${s.containerCount}`).join(', ') ||
          'no services',
      ),
    );
    status.downtime.endedAt = Date.now();
  } catch (err) {
    after(
      `"${STEP_TITLES.scaleUp}" failed: ${describeFailure(err)}. The services are configured for the target; ` +
        'scale them back up by hand to the counts in the preflight step.',
    );
  }

  if (plan.cleanup.vacuumAnalyze) {
    try {
      await CancellationScope.cancellable(() =>
        runStep(
          'vacuumAnalyze',
          () => vacuumAnalyze(input),
          (r) => `${r.databases.length} database(s): ${r.databases.join(', ')}`,
        ),
      );
    } catch (err) {
      after(
        `"${STEP_TITLES.vacuumAnalyze}" ${isCancellation(err) ? 'was cancelled' : `failed: ${describeFailure(err)}`}. ` +
          'The migration itself is complete; run VACUUM ANALYZE on each database of the target by hand.',
      );
    }
  } else {
    finish('vacuumAnalyze', 'skipped', 'plan.cleanup.vacuumAnalyze: false');
  }

  // The dump holds every row of the source: it does not wait on the source's (possibly days-long) retention.
  for (const ws of workspaces) {
    try {
      await CancellationScope.nonCancellable(() => onWorkspace(ws).removeDump(input));
    } catch (err) {
      if (workspaceGone(err)) warn(leftBehind(ws));
      else {
        after(
          `Removing the dump file failed: ${describeFailure(err)}. Delete ${ws.dumpDir} on ${ws.host} by hand.`,
        );
      }
    }
  }

  await deprovisionSourceStep();

  status.currentStep = undefined;
  setPhase(status.errors.length ? 'completed-with-errors' : 'completed');
  publish(
    status.phase,
    status.phase === 'completed' ? 'Migration completed' : 'Migration completed with errors',
  );
  return summary();

  async function deprovisionSourceStep(): Promise<void> {
    const policy = plan.cleanup.deprovisionSource;
    if (policy.mode === 'never') {
      finish('deprovisionSource', 'skipped', 'kept (plan.cleanup.deprovisionSource.mode: never)');
      return;
    }
    const s = enter('deprovisionSource');
    setPhase('awaiting-source-deprovision');
    awaitingSourceDecision = true;
    let proceed: boolean;
    try {
      if (policy.mode === 'signal') {
        s.detail = 'waiting for the deprovisionSource signal (keepSource cancels)';
        await CancellationScope.cancellable(() => condition(() => sourceDeprovisionConfirmed || keepSource));
      } else {
        const delayMs = parseDuration(policy.delay)!;
        const at = Date.now() + delayMs;
        s.detail = `deprovisioning at ${new Date(at).toISOString()} (after ${policy.delay}; keepSource cancels)`;
        await CancellationScope.cancellable(() => condition(() => keepSource, delayMs));
      }
      proceed = !keepSource;
    } catch (err) {
      if (!isCancellation(err)) throw err;
      awaitingSourceDecision = false;
      setPhase('running');
      finish('deprovisionSource', 'cancelled', 'source kept: the workflow was cancelled');
      warn('The workflow was cancelled while waiting to deprovision the source; the source is kept.');
      return;
    }
    awaitingSourceDecision = false;
    setPhase('running');
    if (!proceed) {
      finish('deprovisionSource', 'skipped', 'source kept (keepSource signal)');
      return;
    }
    sourceDeprovisionStarted = true;
    const waited = formatDuration(Date.now() - (s.startedAt ?? Date.now()));
    try {
      await CancellationScope.nonCancellable(() => deprovisionSource(input));
      finish('deprovisionSource', 'done', `deprovisioned after waiting ${waited}`);
    } catch (err) {
      const message = describeFailure(err);
      finish('deprovisionSource', 'failed', undefined, message);
      after(
        `"${STEP_TITLES.deprovisionSource}" failed: ${message}. The source still exists; deprovision it by hand.`,
      );
    }
  }
}
