// method: logical — the migration where logical replication keeps the target current while the services
// run on the source, so the downtime is the cutover only: stop the services, let the target apply the last
// writes, check, set the sequences, verify, repoint, start. Same signals, query and status as the dump
// method (migration.ts, which dispatches here), so the CLI and the UI work unchanged. A saga registers
// each undo when its step starts; replication is dropped on every path (a slot left on the source keeps
// its WAL forever). Runs in the workflow sandbox: deterministic, no Node built-ins, no secrets.
import {
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  isCancellation,
  log,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { MigrationInput, ReplicationSample, VerificationReport } from '../activities/contract';
import { formatDuration } from '../lib/duration';
import { activity } from './activity-options';
import {
  ONLINE_STEPS,
  SOURCE_ATTRIBUTE,
  type MigrationPhase,
  type MigrationStatus,
  type MigrationSummary,
  type MigrationWorkflowOptions,
  type OnlineStepName,
  type ReplicationStatus,
  type StepState,
} from './definitions';
import { describeFailure, failureType } from './failures';
import { ONLINE_TITLES, installHandlers, newFlags, warner, type OnlineContext } from './online-context';
import { onlineSaga } from './online-saga';
import { cutoverGate, deprovisionSourceStep, windowStep } from './online-waits';
import { replicationCleanup } from './replication-cleanup';
import { recordSample, replicationSampler } from './replication-sampling';
import { describeDatabaseSync, describeSync } from './replication-text';
import { runInput } from './run-setup';
import { stepTracker } from './step-tracker';

export async function onlineMigrationWorkflow(
  started: MigrationInput,
  options: MigrationWorkflowOptions = {},
): Promise<MigrationSummary> {
  const input = runInput(started);
  const { plan } = input;
  const useSearchAttributes = options.searchAttributes ?? true;
  const replication: ReplicationStatus = { lagHistory: [] };
  const status: MigrationStatus = {
    migrationId: input.migrationId,
    platform: plan.platform,
    source: `${plan.source.environment}/${plan.source.handle}`,
    target: `${plan.target.environment}/${plan.target.handle}`,
    phase: 'running',
    steps: ONLINE_STEPS.map((s) => ({ name: s.name, title: s.title, state: 'pending' as StepState })),
    compensation: [],
    pointOfNoReturn: false,
    downtime: {},
    cutover: { waiting: false, confirmed: false, earlySignalsIgnored: 0 },
    method: 'logical',
    replication,
    errors: [],
    warnings: [],
  };
  const flags = newFlags();
  const tracker = stepTracker<OnlineStepName>({
    status,
    useSearchAttributes,
    noun: 'step',
    logStarts: true,
    onFailed: (name, message) => {
      flags.failure = { step: name, message };
    },
  });
  const { step, publish, publishPhase, finish, runStep } = tracker;
  const ctx: OnlineContext = {
    input,
    plan,
    status,
    tracker,
    flags,
    warn: warner(status),
    after: (text) => {
      status.errors.push(text);
      log.error(text);
    },
    setPhase: (phase: MigrationPhase) => {
      status.phase = phase;
      publishPhase(phase);
    },
  };
  const { warn, after, setPhase } = ctx;

  // Created before any step so an abort that arrives with the start request still cancels the first one.
  const forwardScope = new CancellationScope({ cancellable: true });
  installHandlers(ctx, forwardScope);
  if (useSearchAttributes) upsertSearchAttributes([{ key: SOURCE_ATTRIBUTE, value: status.source }]);
  publishPhase(status.phase);

  const sampler = replicationSampler(input, replication);
  const cleanup = replicationCleanup(input, replication);
  const { resources, register, rollBack } = onlineSaga(ctx, cleanup);

  const title = (name: OnlineStepName) => ONLINE_TITLES[name];
  const preflight = activity('preflight', title('preflight'));
  const testSchema = activity('testSchema', title('testSchema'));
  const createTarget = activity('createTarget', title('createTarget'));
  const copySchema = activity('copySchema', title('copySchema'));
  const startReplication = activity('startReplication', title('startReplication'));
  const awaitInitialSync = activity('awaitInitialSync', title('initialSync'));
  const scaleServicesDown = activity('scaleServicesDown', title('scaleDown'));
  const awaitCatchUp = activity('awaitCatchUp', title('catchUp'));
  const checkSchemaUnchanged = activity('checkSchemaUnchanged', title('checkSchema'));
  const syncSequences = activity('syncSequences', title('syncSequences'));
  const verifyReplica = activity('verifyReplica', title('verify'));
  const updateServiceConfig = activity('updateServiceConfig', title('updateConfig'));
  const scaleServicesUp = activity('scaleServicesUp', title('scaleUp'));
  const vacuumAnalyze = activity('vacuumAnalyze', title('vacuumAnalyze'));

  /** Waits for every table's initial copy, sampling progress into the status (the workflow sees no heartbeat). */
  async function initialSync(): Promise<void> {
    const s = step('initialSync');
    const onSample = (sample: ReplicationSample) => {
      s.detail = describeSync(sample);
      publish('initialSync', `**${s.title}**: ${sample.databases.map(describeDatabaseSync).join('; ')}`);
    };
    const final = await runStep(
      'initialSync',
      async () => {
        // Idempotent: a worker killed during the copy costs a retry of the wait, never a new copy.
        const sync = awaitInitialSync(input);
        let settled = false;
        const over = sync.then(
          () => (settled = true),
          () => (settled = true),
        );
        try {
          await sampler.waitSampling(() => settled, { lag: false, onSample });
        } catch (err) {
          // A rollback must not overtake the wait it interrupts (the activity stops at its next heartbeat).
          await CancellationScope.nonCancellable(() => over);
          throw err;
        }
        return await sync;
      },
      (r) => describeSync(r),
    );
    recordSample(replication, final, false);
  }

  /** Everything before the point of no return: all of it can be undone by the saga. */
  async function forward(): Promise<void> {
    const pre = await runStep(
      'preflight',
      () => preflight(input),
      (r) =>
        `PostgreSQL ${r.sourceVersion} → ${r.targetVersion}, ready for logical replication, ` +
        `${r.services.length} service(s) recorded`,
    );
    resources.services = pre.services;
    for (const w of pre.warnings) warn(w);

    const schema = await runStep(
      'testSchema',
      () => testSchema(input),
      (r) =>
        r.skipped
          ? 'source and target have the same major version'
          : `${r.expectedErrors.length} expected error(s), nothing unexpected`,
    );
    if (schema.skipped) step('testSchema').state = 'skipped';

    register.createTarget();
    try {
      await runStep(
        'createTarget',
        () => createTarget(input),
        (r) =>
          `${r.environment}/${r.handle}, PostgreSQL ${r.version}${r.foundExisting ? ' (found from an earlier attempt)' : ''}`,
      );
    } catch (err) {
      if (failureType(err) === 'TargetExistsError') resources.targetIsOurs = false;
      throw err;
    }

    await runStep(
      'copySchema',
      () => copySchema(input),
      (r) =>
        `${r.databases.length} database(s)` +
        (r.byPlatform
          ? ', by the platform'
          : `, ${r.droppedStatements} password statement(s) removed, ${r.expectedErrors.length} expected error(s)`),
    );

    register.startReplication();
    const made = await runStep(
      'startReplication',
      () => startReplication(input),
      (r) =>
        `${r.databases.length} database(s): ${r.databases.join(', ')}` +
        (r.replicaIdentityFull.length
          ? `; REPLICA IDENTITY FULL on ${r.replicaIdentityFull.join(', ')}`
          : ''),
    );
    replication.objects = {
      databases: made.databases,
      publications: made.publications,
      slots: made.slots,
      subscriptions: made.subscriptions,
    };

    await initialSync();
    await cutoverGate(ctx, sampler);
    await windowStep(ctx, sampler, pre.sourceSizeBytes);

    // The downtime: from here the source takes no writes until the services start again.
    register.scaleDown();
    status.downtime.startedAt = Date.now();
    await runStep(
      'scaleDown',
      () => scaleServicesDown(input, resources.services),
      () =>
        resources.services.map((s) => `${s.app}/${s.service}: ${s.containerCount} → 0`).join(', ') ||
        'no services',
    );
    const caught = await runStep(
      'catchUp',
      () => awaitCatchUp(input),
      (r) => `applied up to ${r.lsn} in ${formatDuration(r.waitedMs)}`,
    );
    replication.catchUp = { waitedMs: caught.waitedMs, lsn: caught.lsn };
    await runStep(
      'checkSchema',
      () => checkSchemaUnchanged(input),
      () => 'no schema change since the copy',
    );
    await runStep(
      'syncSequences',
      () => syncSequences(input),
      (r) => `${r.sequences} sequence(s) set from the source`,
    );
    const report: VerificationReport = await runStep(
      'verify',
      () => verifyReplica(input),
      (r) =>
        `${r.tablesCompared} table(s), ${r.rowsVerified} row(s), ${r.sequencesCompared} sequence(s) compared`,
    );
    status.verification = report;
    if (!report.ok) {
      const message = `VerificationFailedError: source and target disagree: ${report.mismatches.slice(0, 10).join('; ')}`;
      finish('verify', 'failed', undefined, message);
      flags.failure = { step: 'verify', message };
      throw ApplicationFailure.nonRetryable(message, 'VerificationFailedError');
    }

    register.updateConfig();
    await runStep(
      'updateConfig',
      () => updateServiceConfig(input),
      () => plan.config.map((c) => `${c.app}: ${c.variable}`).join(', ') || 'no configuration to change',
    );
  }

  try {
    await forwardScope.run(forward);
    // An abort or a cancellation may land between the last forward step and this line.
    if (flags.abortRequested) throw new CancelledFailure('aborted');
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('cancelled');
  } catch (err) {
    return await rollBack(err);
  }

  // The point of no return: services start on the target, and writes may land there. From here on a
  // failure is reported, never rolled back, and cancellation only skips what is optional.
  status.pointOfNoReturn = true;
  try {
    await CancellationScope.nonCancellable(() =>
      runStep(
        'scaleUp',
        () => scaleServicesUp(input, resources.services),
        () =>
          resources.services.map((s) => `${s.app}/${s.service}: 0 → ${s.containerCount}`).join(', ') ||
          'no services',
      ),
    );
    status.downtime.endedAt = Date.now();
  } catch (err) {
    after(
      `"${title('scaleUp')}" failed: ${describeFailure(err)}. The services are configured for the target; ` +
        'scale them back up by hand to the counts in the preflight step.',
    );
  }

  // Whatever happened to the scale-up: nothing writes to the source any more, and its slots would keep WAL.
  tracker.enter('dropReplication');
  const problem = await cleanup.drop();
  if (problem) {
    finish('dropReplication', 'failed', undefined, problem);
    after(`"${title('dropReplication')}" failed: ${problem}`);
  } else {
    finish('dropReplication', 'done', cleanup.describe());
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
        `"${title('vacuumAnalyze')}" ${isCancellation(err) ? 'was cancelled' : `failed: ${describeFailure(err)}`}. ` +
          'The migration itself is complete; run VACUUM ANALYZE on each database of the target by hand.',
      );
    }
  } else {
    finish('vacuumAnalyze', 'skipped', 'plan.cleanup.vacuumAnalyze: false');
  }

  await deprovisionSourceStep(ctx);

  status.currentStep = undefined;
  setPhase(status.errors.length ? 'completed-with-errors' : 'completed');
  publish(
    status.phase,
    status.phase === 'completed' ? 'Migration completed' : 'Migration completed with errors',
  );
  const { startedAt, endedAt } = status.downtime;
  return {
    ...status,
    downtimeMs: startedAt !== undefined && endedAt !== undefined ? endedAt - startedAt : undefined,
    rowsVerified: status.verification?.rowsVerified ?? 0,
  };
}
