// The migration workflow on the real dev server, with stub activities that record every call: step
// order, the saga's order, the point of no return, the cutover gate, abort, cancellation, source cleanup.
import { Context } from '@temporalio/activity';
import {
  ApplicationFailure,
  CancelledFailure,
  defaultPayloadConverter,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { MigrationActivities, MigrationInput, VerificationReport } from '../src/activities/contract';
import {
  DumpMissingError,
  NotOursError,
  PlatformError,
  RestoreInterruptedError,
  TargetExistsError,
  UnexpectedRestoreErrors,
} from '../src/errors';
import { validatePlan } from '../src/plan/load';
import type { Plan } from '../src/plan/schema';
import {
  PHASE_ATTRIBUTE,
  SOURCE_ATTRIBUTE,
  STEP_ATTRIBUTE,
  abortSignal,
  cutoverSignal,
  deprovisionSourceSignal,
  keepSourceSignal,
  statusQuery,
  type MigrationStatus,
  type MigrationSummary,
  type MigrationWorkflowOptions,
} from '../src/workflows/definitions';
import type { migrationWorkflow } from '../src/workflows/migration';
import {
  connectTestClient,
  uniqueTaskQueue,
  uniqueWorkflowId,
  withTestWorker,
  type StartTestWorkerOptions,
  type TestWorker,
} from './helpers/temporal';
import { deferred, failureOf, inGuideOrder, recordingStubs } from './helpers/stubs';
import { startDoomedWorker } from './helpers/doomed-worker';

type Name = keyof MigrationActivities;
type Impl = {
  [K in Name]: (...args: Parameters<MigrationActivities[K]>) => ReturnType<MigrationActivities[K]>;
};

const RECORDED = [{ app: 'shop', service: 'cmd', containerCount: 2 }];

const REPORT: VerificationReport = {
  ok: true,
  databases: [
    {
      name: 'db',
      tables: [{ schema: 'public', name: 'orders', sourceRows: 42, targetRows: 42, match: true }],
      sequences: [
        { schema: 'public', name: 'orders_id_seq', sourceValue: '42', targetValue: '42', match: true },
      ],
    },
  ],
  tablesCompared: 1,
  rowsVerified: 42,
  sequencesCompared: 1,
  mismatches: [],
};

function defaults(): Impl {
  return {
    preflight: async () => ({
      sourceVersion: 14,
      targetVersion: 17,
      clientVersion: 17,
      sourceSizeBytes: 1_000_000,
      freeDiskBytes: 10_000_000_000,
      services: RECORDED,
      warnings: [],
    }),
    testSchema: async () => ({ skipped: false, expectedErrors: ['role "aptible" already exists'] }),
    createTarget: async (input) => ({
      handle: input.plan.target.handle,
      environment: input.plan.target.environment,
      version: 17,
      foundExisting: false,
    }),
    scaleServicesDown: async () => undefined,
    // The worker that runs the claim keeps the dump: here the test's own worker, on its own queue.
    claimWorkspace: async () => ({
      taskQueue: Context.current().info.taskQueue,
      host: 'test-host',
      dumpDir: '/work/dumps/m',
    }),
    pingWorkspace: async () => undefined,
    dumpSource: async () => ({ path: '/work/dump.sql', bytes: 4096, sha256: 'ab12', droppedStatements: 1 }),
    restoreTarget: async () => ({ expectedErrors: ['role "aptible" already exists'] }),
    verifyTarget: async () => REPORT,
    updateServiceConfig: async () => undefined,
    scaleServicesUp: async () => undefined,
    vacuumAnalyze: async () => ({ databases: ['db'] }),
    deprovisionSource: async () => undefined,
    revertServiceConfig: async () => undefined,
    deprovisionTarget: async () => undefined,
    purgeTargetBackups: async () => ({ purged: [] }),
    removeDump: async () => undefined,
  };
}

function plan(overrides: Record<string, unknown> = {}): Plan {
  return validatePlan({
    platform: 'local',
    source: { handle: 'shop-pg14' },
    target: { handle: 'shop-pg17', version: '17' },
    services: [{ app: 'shop', service: 'cmd' }],
    config: [{ app: 'shop', variable: 'DB_URL' }],
    cutover: { confirm: false },
    ...overrides,
  });
}

/**
 * Stub activities that record each call, in order, before running the default or the override. The schema
 * test and the target's creation run side by side, so either may be taken first: names() lists them in the
 * guide's order.
 */
function stubs(overrides: Partial<Impl> = {}) {
  const recorded = recordingStubs<Name>({ ...defaults(), ...overrides });
  return { ...recorded, names: () => inGuideOrder(recorded.names()) };
}

const FORWARD: Name[] = [
  'preflight',
  'testSchema',
  'createTarget',
  'claimWorkspace',
  'scaleServicesDown',
  'dumpSource',
  'restoreTarget',
  'verifyTarget',
];
/** The whole rollback after a failure or abort past the copy (before the point of no return). */
const UNDO_ALL: Name[] = ['scaleServicesUp', 'removeDump', 'deprovisionTarget', 'purgeTargetBackups'];
const HAPPY: Name[] = [...FORWARD, 'updateServiceConfig', 'scaleServicesUp', 'vacuumAnalyze', 'removeDump'];

let client: Client;
beforeAll(async () => {
  client = await connectTestClient();
});
afterAll(async () => {
  await client?.connection.close();
});

type Handle = WorkflowHandle<typeof migrationWorkflow>;

/** Starts the workflow on a fresh task queue with a worker of `activities`, and runs `body` with it. */
async function migrate<T>(
  p: Plan,
  activities: object,
  body: (handle: Handle) => Promise<T>,
  options?: MigrationWorkflowOptions,
): Promise<T> {
  const taskQueue = uniqueTaskQueue('wf');
  return withTestWorker({ activities, taskQueue }, async () => {
    const workflowId = uniqueWorkflowId('migration');
    const input: MigrationInput = { migrationId: workflowId, plan: p };
    const handle = await client.workflow.start<typeof migrationWorkflow>('migrationWorkflow', {
      taskQueue,
      workflowId,
      args: options ? [input, options] : [input],
    });
    return body(handle);
  });
}

async function waitForStatus(
  handle: Handle,
  predicate: (s: MigrationStatus) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<MigrationStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: MigrationStatus | undefined;
  while (Date.now() < deadline) {
    last = await handle.query(statusQuery);
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(last)}`);
}

const stepOf = (s: MigrationStatus, name: string) => s.steps.find((x) => x.name === name)!;
const atGate = (s: MigrationStatus) => s.cutover.waiting;

test('happy path: every step in the guide order, the summary and the UI metadata', async () => {
  const { activities, calls, names } = stubs();
  const p = plan();
  await migrate(p, activities, async (handle) => {
    const summary: MigrationSummary = await handle.result();
    expect(names()).toEqual(HAPPY);

    // Scaled down with, and back up to, the counts preflight recorded.
    expect(calls.find((c) => c.name === 'scaleServicesDown')!.args[1]).toEqual(RECORDED);
    expect(calls.find((c) => c.name === 'scaleServicesUp')!.args[1]).toEqual(RECORDED);
    // The restore gets the dump that dumpSource produced, and the target this run just created: no reset.
    expect(calls.find((c) => c.name === 'restoreTarget')!.args[1]).toMatchObject({ path: '/work/dump.sql' });
    expect(calls.find((c) => c.name === 'restoreTarget')!.args[2]).toEqual({ freshTarget: true });

    expect(summary.phase).toBe('completed');
    expect(summary.pointOfNoReturn).toBe(true);
    expect(summary.errors).toEqual([]);
    expect(summary.rowsVerified).toBe(42);
    expect(summary.verification).toEqual(REPORT);
    expect(summary.dumpBytes).toBe(4096);
    expect(summary.source).toBe('local/shop-pg14');
    expect(summary.target).toBe('local/shop-pg17');
    expect(summary.compensation).toEqual([]);
    expect(summary.downtime.startedAt).toBeDefined();
    expect(summary.downtime.endedAt).toBeGreaterThanOrEqual(summary.downtime.startedAt!);
    expect(summary.downtimeMs).toBe(summary.downtime.endedAt! - summary.downtime.startedAt!);
    expect(summary.cutover).toMatchObject({ waiting: false, confirmed: false, earlySignalsIgnored: 0 });

    const states = Object.fromEntries(summary.steps.map((s) => [s.name, s.state]));
    expect(states).toEqual({
      preflight: 'done',
      testSchema: 'done',
      createTarget: 'done',
      awaitWindow: 'skipped',
      scaleDown: 'done',
      dump: 'done',
      restore: 'done',
      verify: 'done',
      awaitCutover: 'done',
      updateConfig: 'done',
      scaleUp: 'done',
      vacuumAnalyze: 'done',
      deprovisionSource: 'skipped',
    });
    for (const s of summary.steps.filter((x) => x.state === 'done')) {
      expect(s.startedAt).toBeLessThanOrEqual(s.endedAt!);
    }

    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(SOURCE_ATTRIBUTE)).toBe('local/shop-pg14');
    expect(description.typedSearchAttributes.get(STEP_ATTRIBUTE)).toBe('completed');
    expect(description.typedSearchAttributes.get(PHASE_ATTRIBUTE)).toBe('completed');

    // Each scheduled activity carries its step's readable title for the UI.
    const history = await handle.fetchHistory();
    const titles = new Map<string, string>();
    for (const event of history.events ?? []) {
      const attrs = event.activityTaskScheduledEventAttributes;
      const summaryPayload = event.userMetadata?.summary;
      if (attrs && summaryPayload) {
        titles.set(attrs.activityType!.name!, defaultPayloadConverter.fromPayload(summaryPayload));
      }
    }
    expect(titles.get('restoreTarget')).toBe('Restore the data');
    expect(titles.get('scaleServicesDown')).toBe('Scale services down');
    expect(titles.size).toBe(HAPPY.length);
  });
});

test('the schema test may skip itself (equal versions): the step shows skipped, the migration goes on', async () => {
  const { activities, names } = stubs({ testSchema: async () => ({ skipped: true, expectedErrors: [] }) });
  await migrate(plan(), activities, async (handle) => {
    const summary = await handle.result();
    expect(names()).toEqual(HAPPY);
    expect(stepOf(summary, 'testSchema').state).toBe('skipped');
  });
});

test('an unexpected restore error rolls back in reverse order, only what was attempted', async () => {
  const { activities, calls, names } = stubs({
    restoreTarget: async () => {
      throw new UnexpectedRestoreErrors(
        'restore produced errors the plan does not allow:\nERROR:  syntax error at "FOO"',
        ['ERROR:  syntax error at "FOO"'],
      );
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    // revertServiceConfig is absent: the config was never touched.
    expect(names()).toEqual([
      'preflight',
      'testSchema',
      'createTarget',
      'claimWorkspace',
      'scaleServicesDown',
      'dumpSource',
      'restoreTarget',
      'scaleServicesUp',
      'removeDump',
      'deprovisionTarget',
      'purgeTargetBackups',
    ]);
    expect(calls.find((c) => c.name === 'scaleServicesUp')!.args[1]).toEqual(RECORDED);

    expect(failure.cause).toBeInstanceOf(ApplicationFailure);
    const cause = failure.cause as ApplicationFailure;
    expect(cause.type).toBe('MigrationRolledBack');
    expect(cause.nonRetryable).toBe(true);
    expect(cause.details?.[0]).toMatchObject({ failedStep: 'restore' });
    expect(cause.message).toContain('"Restore the data" failed');
    expect(cause.message).toContain('UnexpectedRestoreErrors');
    expect(cause.message).toContain('ERROR:  syntax error at "FOO"');

    const status = await handle.query(statusQuery);
    expect(status.phase).toBe('rolled-back');
    expect(stepOf(status, 'restore')).toMatchObject({ state: 'failed' });
    expect(stepOf(status, 'restore').error).toContain('syntax error');
    expect(stepOf(status, 'verify').state).toBe('pending');
    expect(status.compensation.map((c) => [c.name, c.state])).toEqual([
      ['scaleServicesUp', 'done'],
      ['removeDump', 'done'],
      ['deprovisionTarget', 'done'],
      ['purgeTargetBackups', 'done'],
    ]);
    expect(status.downtime.endedAt).toBeGreaterThanOrEqual(status.downtime.startedAt!);
    expect(status.pointOfNoReturn).toBe(false);
  });
});

test('a failing compensation step is recorded and the others still run', async () => {
  const { activities, names } = stubs({
    verifyTarget: async () => ({
      ...REPORT,
      ok: false,
      mismatches: ['db.public.orders: source 42 rows, target 41'],
    }),
    scaleServicesUp: async () => {
      throw new PlatformError('app shop does not exist any more');
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(names()).toEqual([...FORWARD, ...UNDO_ALL]);
    const cause = failure.cause as ApplicationFailure;
    expect(cause.message).toContain('"Verify source and target agree" failed');
    expect(cause.message).toContain('db.public.orders: source 42 rows, target 41');
    expect(cause.message).toContain('FAILED to undo (do it by hand): scaleServicesUp');

    const status = await handle.query(statusQuery);
    expect(status.compensation.map((c) => [c.name, c.state])).toEqual([
      ['scaleServicesUp', 'failed'],
      ['removeDump', 'done'],
      ['deprovisionTarget', 'done'],
      ['purgeTargetBackups', 'done'],
    ]);
    expect(status.compensation[0].error).toContain('app shop does not exist any more');
    expect(status.errors.some((e) => e.includes('Scale services back up on the source'))).toBe(true);
    expect(status.verification?.ok).toBe(false);
    expect(status.downtime.endedAt).toBeUndefined();
  });
});

test('when reverting the config fails, services stay down and the target is kept', async () => {
  // Starting services whose config may still name the target, then removing that target, would be an outage.
  const { activities, names } = stubs({
    updateServiceConfig: async () => {
      throw new PlatformError('config:set rejected');
    },
    revertServiceConfig: async () => {
      throw new PlatformError('config:set rejected again');
    },
  });
  await migrate(plan(), activities, async (handle) => {
    await failureOf(handle);
    expect(names()).toEqual([...FORWARD, 'updateServiceConfig', 'revertServiceConfig']);
    const status = await handle.query(statusQuery);
    expect(status.compensation.map((c) => [c.name, c.state])).toEqual([['revertServiceConfig', 'failed']]);
    expect(status.errors.some((e) => e.includes('left at zero and the target kept'))).toBe(true);
    expect(status.pointOfNoReturn).toBe(false);
    expect(status.downtime.endedAt).toBeUndefined();
  });
});

test('a failure after the point of no return (vacuum) is reported, not rolled back', async () => {
  const { activities, names } = stubs({
    vacuumAnalyze: async () => {
      throw new PlatformError('the target refused VACUUM');
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const summary = await handle.result();
    expect(names()).toEqual(HAPPY);
    expect(names()).not.toContain('deprovisionTarget');
    expect(names()).not.toContain('revertServiceConfig');
    expect(summary.phase).toBe('completed-with-errors');
    expect(summary.pointOfNoReturn).toBe(true);
    expect(summary.compensation).toEqual([]);
    expect(stepOf(summary, 'vacuumAnalyze').state).toBe('failed');
    expect(summary.errors).toHaveLength(1);
    expect(summary.errors[0]).toContain('the target refused VACUUM');
    expect(summary.downtimeMs).toBeGreaterThanOrEqual(0);
  });
});

test('cutover timeout with onTimeout abort rolls back', async () => {
  const { activities, names } = stubs();
  const p = plan({ cutover: { confirm: true, timeout: '3s', onTimeout: 'abort' } });
  await migrate(p, activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(names()).toEqual([...FORWARD, ...UNDO_ALL]);
    expect((failure.cause as ApplicationFailure).message).toContain('cutover not confirmed within 3s');
    const status = await handle.query(statusQuery);
    expect(status.phase).toBe('rolled-back');
    expect(stepOf(status, 'awaitCutover').state).toBe('failed');
    expect(status.cutover.waiting).toBe(false);
  });
});

test('cutover timeout with onTimeout proceed cuts over', async () => {
  const { activities, names } = stubs();
  const p = plan({ cutover: { confirm: true, timeout: '3s', onTimeout: 'proceed' } });
  await migrate(p, activities, async (handle) => {
    const summary = await handle.result();
    expect(names()).toEqual(HAPPY);
    expect(summary.phase).toBe('completed');
    expect(summary.cutover.confirmed).toBe(false);
    expect(summary.warnings.some((w) => w.includes('not confirmed within 3s'))).toBe(true);
    expect(stepOf(summary, 'awaitCutover').detail).toContain('proceeded');
  });
});

test('the status while waiting at the gate; a cutover signal there proceeds', async () => {
  const { activities, names } = stubs();
  const p = plan({ cutover: { confirm: true, timeout: '1m' } });
  await migrate(p, activities, async (handle) => {
    const status = await waitForStatus(handle, atGate, 'the cutover gate');
    expect(status.currentStep).toBe('awaitCutover');
    expect(status.phase).toBe('awaiting-cutover');
    expect(status.verification).toEqual(REPORT);
    expect(status.cutover.deadline).toBeGreaterThan(Date.now());
    expect(stepOf(status, 'awaitCutover').state).toBe('running');
    expect(names()).toEqual(FORWARD);
    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(STEP_ATTRIBUTE)).toBe('awaitCutover');
    expect(description.typedSearchAttributes.get(PHASE_ATTRIBUTE)).toBe('awaiting-cutover');
    // What the UI shows as the current details of the workflow.
    const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toContain('Wait for cutover confirmation');

    await handle.signal(cutoverSignal, { by: 'alice' });
    const summary = await handle.result();
    expect(names()).toEqual(HAPPY);
    expect(summary.cutover).toMatchObject({ confirmed: true, waiting: false, earlySignalsIgnored: 0 });
    expect(stepOf(summary, 'awaitCutover').detail).toBe('confirmed from alice');
  });
});

test('abort while waiting at the gate rolls back, with the reason', async () => {
  const { activities, names } = stubs();
  const p = plan({ cutover: { confirm: true, timeout: '1m' } });
  await migrate(p, activities, async (handle) => {
    await waitForStatus(handle, atGate, 'the cutover gate');
    await handle.signal(abortSignal, { reason: 'row counts look wrong to the DBA' });
    const failure = await failureOf(handle);
    expect(names()).toEqual([...FORWARD, ...UNDO_ALL]);
    const cause = failure.cause as ApplicationFailure;
    expect(cause.type).toBe('MigrationAborted');
    expect(cause.message).toContain('row counts look wrong to the DBA');
    expect(cause.message).toContain('Wait for cutover confirmation');
    const status = await handle.query(statusQuery);
    expect(status.phase).toBe('rolled-back');
    expect(status.abortReason).toBe('row counts look wrong to the DBA');
    expect(stepOf(status, 'awaitCutover').state).toBe('cancelled');
    expect(status.cutover.waiting).toBe(false);
  });
});

test('abort after the point of no return is ignored and recorded', async () => {
  const vacuumStarted = deferred();
  const releaseVacuum = deferred();
  const { activities, names } = stubs({
    vacuumAnalyze: async () => {
      vacuumStarted.resolve();
      await releaseVacuum.promise;
      return { databases: ['db'] };
    },
  });
  await migrate(plan(), activities, async (handle) => {
    await vacuumStarted.promise;
    await handle.signal(abortSignal, { reason: 'too late' });
    await waitForStatus(
      handle,
      (s) => s.warnings.some((w) => w.startsWith('Abort ignored')),
      'the abort warning',
    );
    releaseVacuum.resolve();
    const summary = await handle.result();
    expect(names()).toEqual(HAPPY);
    expect(summary.phase).toBe('completed');
    expect(summary.abortReason).toBeUndefined();
    expect(summary.warnings.find((w) => w.startsWith('Abort ignored'))).toContain('too late');
  });
});

test('cancelling after the point of no return rolls nothing back: only the optional rest is skipped', async () => {
  const vacuumStarted = deferred();
  const { activities, names } = stubs({
    vacuumAnalyze: async () => {
      vacuumStarted.resolve();
      const ctx = Context.current();
      for (;;) {
        ctx.heartbeat();
        await ctx.sleep(100);
      }
    },
  });
  const p = plan({ cleanup: { deprovisionSource: { mode: 'delay', delay: '1h' } } });
  await migrate(p, activities, async (handle) => {
    await vacuumStarted.promise;
    await handle.cancel();
    const summary = await handle.result();
    expect(names()).toEqual(HAPPY);
    expect(summary.phase).toBe('completed-with-errors');
    expect(summary.compensation).toEqual([]);
    expect(stepOf(summary, 'scaleUp').state).toBe('done');
    expect(stepOf(summary, 'vacuumAnalyze').state).toBe('cancelled');
    expect(stepOf(summary, 'deprovisionSource')).toMatchObject({ state: 'cancelled' });
    expect(summary.errors.some((e) => e.includes('was cancelled'))).toBe(true);
  });
});

test('a cutover signal sent before the gate is not honoured; the gate still waits for one', async () => {
  const verifyStarted = deferred();
  const releaseVerify = deferred();
  const { activities, names } = stubs({
    verifyTarget: async () => {
      verifyStarted.resolve();
      await releaseVerify.promise;
      return REPORT;
    },
  });
  const p = plan({ cutover: { confirm: true, timeout: '1m' } });
  await migrate(p, activities, async (handle) => {
    await verifyStarted.promise;
    await handle.signal(cutoverSignal);
    await waitForStatus(handle, (s) => s.cutover.earlySignalsIgnored === 1, 'the early signal to be counted');
    releaseVerify.resolve();

    const waiting = await waitForStatus(handle, atGate, 'the cutover gate');
    expect(waiting.cutover.confirmed).toBe(false);
    expect(waiting.warnings.some((w) => w.includes('Verify source and target agree'))).toBe(true);
    // It stays at the gate: the early signal did not count.
    await new Promise((r) => setTimeout(r, 1500));
    const still = await handle.query(statusQuery);
    expect(still.cutover.waiting).toBe(true);
    expect(names()).toEqual(FORWARD);

    await handle.signal(cutoverSignal);
    const summary = await handle.result();
    expect(names()).toEqual(HAPPY);
    expect(summary.cutover).toMatchObject({ confirmed: true, earlySignalsIgnored: 1 });
  });
});

test('a target found from an earlier attempt is reset before the restore', async () => {
  const { activities, calls } = stubs({
    createTarget: async (input) => ({
      handle: input.plan.target.handle,
      environment: input.plan.target.environment,
      version: 17,
      foundExisting: true,
    }),
  });
  await migrate(plan(), activities, async (handle) => {
    expect((await handle.result()).phase).toBe('completed');
    expect(calls.find((c) => c.name === 'restoreTarget')!.args[2]).toEqual({ freshTarget: false });
  });
});

test('a dump missing where the restore ran is dumped again, once', async () => {
  let restores = 0;
  const { activities, calls, names } = stubs({
    restoreTarget: async () => {
      restores += 1;
      if (restores === 1) throw new DumpMissingError('no dump at /work/dump.sql on worker-b');
      return { expectedErrors: [] };
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const summary = await handle.result();
    expect(names()).toEqual([
      'preflight',
      'testSchema',
      'createTarget',
      'claimWorkspace',
      'scaleServicesDown',
      'dumpSource',
      'restoreTarget',
      'claimWorkspace',
      'dumpSource',
      'restoreTarget',
      'verifyTarget',
      'updateServiceConfig',
      'scaleServicesUp',
      'vacuumAnalyze',
      'removeDump',
    ]);
    expect(summary.phase).toBe('completed');
    expect(stepOf(summary, 'restore').state).toBe('done');
    expect(summary.warnings.some((w) => w.includes('no dump at /work/dump.sql'))).toBe(true);
    // The first restore may have run part of a file that was not the dump: the second one resets.
    const restoreArgs = calls.filter((c) => c.name === 'restoreTarget').map((c) => c.args[2]);
    expect(restoreArgs).toEqual([{ freshTarget: true }, { freshTarget: false }]);
  });
});

test('a dump missing twice rolls back', async () => {
  const { activities, names } = stubs({
    restoreTarget: async () => {
      throw new DumpMissingError('no dump here');
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(names().filter((n) => n === 'claimWorkspace')).toHaveLength(2);
    expect(names().filter((n) => n === 'dumpSource')).toHaveLength(2);
    expect(names().filter((n) => n === 'restoreTarget')).toHaveLength(2);
    expect(names().slice(-4)).toEqual([
      'scaleServicesUp',
      'removeDump',
      'deprovisionTarget',
      'purgeTargetBackups',
    ]);
    expect((failure.cause as ApplicationFailure).message).toContain('DumpMissingError');
  });
});

test('a target database this migration did not create is never deprovisioned', async () => {
  const { activities, names } = stubs({
    createTarget: async () => {
      throw new TargetExistsError('database shop-pg17 exists and was not created by this migration');
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(names()).toEqual(['preflight', 'testSchema', 'createTarget']);
    expect((failure.cause as ApplicationFailure).message).toContain('TargetExistsError');
    const status = await handle.query(statusQuery);
    expect(status.compensation).toEqual([]);
    expect(status.phase).toBe('rolled-back');
  });
});

test('a schema test failure stops before any downtime; the target made beside it is removed', async () => {
  const { activities, names } = stubs({
    testSchema: async () => {
      throw new UnexpectedRestoreErrors('schema test: ERROR:  type "citext" does not exist', [
        'ERROR:  type "citext" does not exist',
      ]);
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(names()).toEqual([
      'preflight',
      'testSchema',
      'createTarget',
      'deprovisionTarget',
      'purgeTargetBackups',
    ]);
    expect((failure.cause as ApplicationFailure).details?.[0]).toMatchObject({
      failedStep: 'testSchema',
    });
    const status = await handle.query(statusQuery);
    expect(status.downtime.startedAt).toBeUndefined();
    expect(stepOf(status, 'createTarget').state).toBe('done');
    expect(status.compensation.map((c) => [c.name, c.state])).toEqual([
      ['deprovisionTarget', 'done'],
      ['purgeTargetBackups', 'done'],
    ]);
  });
});

test('the schema test and the target creation run side by side, both shown running', async () => {
  const bothStarted = { schema: deferred(), target: deferred() };
  const release = deferred();
  const { activities } = stubs({
    testSchema: async () => {
      bothStarted.schema.resolve();
      await release.promise;
      return { skipped: false, expectedErrors: [] };
    },
    createTarget: async (input) => {
      bothStarted.target.resolve();
      await release.promise;
      return {
        handle: input.plan.target.handle,
        environment: 'env',
        version: 17,
        foundExisting: false,
      };
    },
  });
  await migrate(plan(), activities, async (handle) => {
    await Promise.all([bothStarted.schema.promise, bothStarted.target.promise]);
    const status = await waitForStatus(
      handle,
      (s) => stepOf(s, 'testSchema').state === 'running' && stepOf(s, 'createTarget').state === 'running',
      'both steps running',
    );
    expect(status.currentStep).toBe('testSchema');
    release.resolve();
    expect((await handle.result()).phase).toBe('completed');
  });
});

test('a failed target creation waits for the schema test beside it; nothing of ours to undo', async () => {
  const schemaRelease = deferred();
  const { activities, names } = stubs({
    testSchema: async () => {
      await schemaRelease.promise;
      return { skipped: false, expectedErrors: [] };
    },
    createTarget: async () => {
      throw new TargetExistsError('database shop-pg17 exists and was not created by this migration');
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const meanwhile = await waitForStatus(
      handle,
      (s) => stepOf(s, 'createTarget').state === 'failed',
      'the target creation to fail',
    );
    // The rollback waits for the schema test, which is still running.
    expect(meanwhile.phase).toBe('running');
    expect(stepOf(meanwhile, 'testSchema').state).toBe('running');
    schemaRelease.resolve();
    const failure = await failureOf(handle);
    expect(names()).toEqual(['preflight', 'testSchema', 'createTarget']);
    expect((failure.cause as ApplicationFailure).details?.[0]).toMatchObject({
      failedStep: 'createTarget',
    });
    const status = await handle.query(statusQuery);
    expect(stepOf(status, 'testSchema').state).toBe('done');
    expect(status.compensation).toEqual([]);
  });
});

test('cancelling the workflow during the dump cancels the dump and rolls back', async () => {
  const dumpStarted = deferred();
  let dumpCancelled = false;
  let dumpStoppedBeforeRemoval = false;
  const { activities, names } = stubs({
    dumpSource: async () => {
      dumpStarted.resolve();
      const ctx = Context.current();
      try {
        for (;;) {
          ctx.heartbeat();
          await ctx.sleep(100);
        }
      } catch (err) {
        dumpCancelled = err instanceof CancelledFailure;
        throw err;
      }
    },
    removeDump: async () => {
      dumpStoppedBeforeRemoval = dumpCancelled;
    },
  });
  await migrate(plan(), activities, async (handle) => {
    await dumpStarted.promise;
    await handle.cancel();
    const failure = await failureOf(handle);
    expect(failure.cause).toBeInstanceOf(CancelledFailure);
    expect(dumpCancelled).toBe(true);
    // The saga waited for the dump to stop before removing its file.
    expect(dumpStoppedBeforeRemoval).toBe(true);
    expect(names()).toEqual([
      'preflight',
      'testSchema',
      'createTarget',
      'claimWorkspace',
      'scaleServicesDown',
      'dumpSource',
      'scaleServicesUp',
      'removeDump',
      'deprovisionTarget',
      'purgeTargetBackups',
    ]);
    const status = await handle.query(statusQuery);
    expect(status.phase).toBe('rolled-back');
    expect(stepOf(status, 'dump').state).toBe('cancelled');
    expect(status.compensation.every((c) => c.state === 'done')).toBe(true);
  });
});

test('an abort during a running step cancels it and rolls back', async () => {
  const dumpStarted = deferred();
  const { activities, names } = stubs({
    dumpSource: async () => {
      dumpStarted.resolve();
      const ctx = Context.current();
      for (;;) {
        ctx.heartbeat();
        await ctx.sleep(100);
      }
    },
  });
  await migrate(plan(), activities, async (handle) => {
    await dumpStarted.promise;
    await handle.signal(abortSignal, { reason: 'maintenance window over' });
    const failure = await failureOf(handle);
    expect((failure.cause as ApplicationFailure).message).toContain(
      'during "Dump the data": maintenance window over',
    );
    expect(names().slice(-4)).toEqual([
      'scaleServicesUp',
      'removeDump',
      'deprovisionTarget',
      'purgeTargetBackups',
    ]);
  });
});

test('the source is deprovisioned after the deprovisionSource signal, and only once waiting for it', async () => {
  const { activities, names } = stubs();
  const p = plan({ cleanup: { deprovisionSource: { mode: 'signal' } } });
  await migrate(p, activities, async (handle) => {
    const waiting = await waitForStatus(
      handle,
      (s) => s.phase === 'awaiting-source-deprovision',
      'the source deprovisioning wait',
    );
    expect(waiting.currentStep).toBe('deprovisionSource');
    expect(names()).toEqual(HAPPY);
    await handle.signal(deprovisionSourceSignal);
    const summary = await handle.result();
    expect(names()).toEqual([...HAPPY, 'deprovisionSource']);
    expect(summary.phase).toBe('completed');
    expect(stepOf(summary, 'deprovisionSource').state).toBe('done');
  });
});

test('keepSource cancels a pending deprovisioning', async () => {
  const { activities, names } = stubs();
  const p = plan({ cleanup: { deprovisionSource: { mode: 'signal' } } });
  await migrate(p, activities, async (handle) => {
    await waitForStatus(
      handle,
      (s) => s.phase === 'awaiting-source-deprovision',
      'the source deprovisioning wait',
    );
    await handle.signal(keepSourceSignal);
    const summary = await handle.result();
    expect(names()).toEqual(HAPPY);
    expect(stepOf(summary, 'deprovisionSource')).toMatchObject({
      state: 'skipped',
      detail: 'source kept (keepSource signal)',
    });
  });
});

test('the source is deprovisioned after a durable delay', async () => {
  const { activities, names } = stubs();
  const p = plan({ cleanup: { vacuumAnalyze: false, deprovisionSource: { mode: 'delay', delay: '2s' } } });
  await migrate(p, activities, async (handle) => {
    const waiting = await waitForStatus(
      handle,
      (s) => s.phase === 'awaiting-source-deprovision',
      'the source deprovisioning wait',
    );
    expect(stepOf(waiting, 'deprovisionSource').detail).toContain('after 2s');
    const summary = await handle.result();
    expect(names()).toEqual([
      ...FORWARD,
      'updateServiceConfig',
      'scaleServicesUp',
      'removeDump',
      'deprovisionSource',
    ]);
    const s = stepOf(summary, 'deprovisionSource');
    expect(s.state).toBe('done');
    expect(s.endedAt! - s.startedAt!).toBeGreaterThanOrEqual(2000);
    expect(stepOf(summary, 'vacuumAnalyze').state).toBe('skipped');
  });
});

test('without search attributes the workflow runs and upserts none', async () => {
  const { activities, names } = stubs();
  await migrate(
    plan(),
    activities,
    async (handle) => {
      const summary = await handle.result();
      expect(names()).toEqual(HAPPY);
      expect(summary.phase).toBe('completed');
      const description = await handle.describe();
      expect(description.typedSearchAttributes.get(STEP_ATTRIBUTE)).toBeUndefined();
      expect(description.typedSearchAttributes.get(PHASE_ATTRIBUTE)).toBeUndefined();
    },
    { searchAttributes: false },
  );
});

// Several workers poll the shared queue; the dump is a file on one of them. What touches it goes to the
// queue of the worker that claimed the workspace, and only that worker polls it.

const ON_WORKSPACE: Name[] = ['dumpSource', 'restoreTarget', 'removeDump'];
const SHARED_HAPPY: Name[] = HAPPY.filter((n) => !ON_WORKSPACE.includes(n));

/** A claim naming `taskQueue` on `host`, whose dumps lie under /work/<host>. */
function claimOf(taskQueue: string, host: string) {
  return { taskQueue, host, dumpDir: `/work/${host}/dumps/m` };
}

/** An activities-only worker on `taskQueue`, like the host worker of a pgshift process. */
function hostWorker(activities: object, taskQueue: string): StartTestWorkerOptions {
  return { activities, taskQueue, workerOptions: { workflowBundle: undefined } };
}

async function scheduledQueues(handle: Handle): Promise<Array<[string, string, number | undefined]>> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((event) => {
    const attrs = event.activityTaskScheduledEventAttributes;
    if (!attrs) return [];
    const startTimeout = attrs.scheduleToStartTimeout?.seconds;
    return [
      [attrs.activityType!.name!, attrs.taskQueue!.name!, startTimeout ? Number(startTimeout) : undefined],
    ] as Array<[string, string, number | undefined]>;
  });
}

test("the dump, the restore and the dump's removal run on the claimed worker's own queue", async () => {
  const hostQueue = uniqueTaskQueue('host');
  const host = stubs();
  const shared = stubs({ claimWorkspace: async () => claimOf(hostQueue, 'worker-a') });
  await withTestWorker(hostWorker(host.activities, hostQueue), () =>
    migrate(plan(), shared.activities, async (handle) => {
      const summary = await handle.result();
      expect(shared.names()).toEqual(SHARED_HAPPY);
      expect(host.names()).toEqual(ON_WORKSPACE);
      // The restore reads the dump that this worker made.
      expect(host.calls[1].args[1]).toMatchObject({ path: '/work/dump.sql', sha256: 'ab12' });
      expect(summary.phase).toBe('completed');
      expect(summary.errors).toEqual([]);
      expect(summary.warnings).toEqual([]);
      expect(stepOf(summary, 'dump').detail).toContain('on worker-a');

      // Only those three went to the host queue, each with the default 5-minute schedule-to-start timeout.
      const scheduled = await scheduledQueues(handle);
      const onHost = scheduled.filter(([, queue]) => queue === hostQueue);
      expect(onHost).toEqual([
        ['dumpSource', hostQueue, 300],
        ['restoreTarget', hostQueue, 300],
        ['removeDump', hostQueue, 300],
      ]);
      expect(scheduled.filter(([name]) => name === 'claimWorkspace')).toHaveLength(1);
      // Steps on the shared queue wait for a free worker as long as it takes: any worker will do.
      expect(scheduled.filter(([, queue]) => queue !== hostQueue).map(([, , t]) => t)).not.toContain(300);
    }),
  );
});

test('a claimed worker that is gone before the dump: another is claimed and the migration completes', async () => {
  const goneQueue = uniqueTaskQueue('gone');
  const hostQueue = uniqueTaskQueue('host');
  const host = stubs();
  let claims = 0;
  const shared = stubs({
    claimWorkspace: async () => {
      claims += 1;
      return claims === 1 ? claimOf(goneQueue, 'worker-gone') : claimOf(hostQueue, 'worker-b');
    },
  });
  await withTestWorker(hostWorker(host.activities, hostQueue), () =>
    migrate(
      plan(),
      shared.activities,
      async (handle) => {
        const summary = await handle.result();
        expect(summary.phase).toBe('completed');
        expect(summary.errors).toEqual([]);
        expect(stepOf(summary, 'dump')).toMatchObject({ state: 'done' });
        expect(stepOf(summary, 'dump').detail).toContain('on worker-b');
        expect(shared.names()).toEqual([
          'preflight',
          'testSchema',
          'createTarget',
          'claimWorkspace',
          'scaleServicesDown',
          'claimWorkspace',
          'verifyTarget',
          'updateServiceConfig',
          'scaleServicesUp',
          'vacuumAnalyze',
        ]);
        expect(host.names()).toEqual(ON_WORKSPACE);
        expect(summary.warnings[0]).toContain('No worker took the dump on host worker-gone within 2s');
        // The removal is still tried where the first dump was sent; nothing answers, and the operator is told.
        expect(summary.warnings[1]).toContain('could not be removed');
        expect(summary.warnings[1]).toContain('Delete /work/worker-gone/dumps/m on worker-gone');
        expect(summary.warnings).toHaveLength(2);

        const scheduled = await scheduledQueues(handle);
        expect(scheduled.filter(([, queue]) => queue === goneQueue)).toEqual([
          ['dumpSource', goneQueue, 2],
          ['removeDump', goneQueue, 2],
        ]);
      },
      { workspaceStartTimeout: '2s' },
    ),
  );
});

test('a claimed worker that is gone after the dump: the restore is not waited for, the dump is made again', async () => {
  const queueA = uniqueTaskQueue('host-a');
  const queueB = uniqueTaskQueue('host-b');
  let workerA: TestWorker | undefined;
  const a = stubs({
    dumpSource: async () => {
      // The process goes away right after its dump: what is sent to it next finds nobody.
      workerA!.worker.shutdown();
      return { path: '/work/worker-a/dumps/m/dump.sql', bytes: 4096, sha256: 'aa', droppedStatements: 1 };
    },
  });
  const b = stubs();
  let claims = 0;
  const shared = stubs({
    claimWorkspace: async () => {
      claims += 1;
      return claims === 1 ? claimOf(queueA, 'worker-a') : claimOf(queueB, 'worker-b');
    },
  });
  await withTestWorker(hostWorker(a.activities, queueA), async (started) => {
    workerA = started;
    await withTestWorker(hostWorker(b.activities, queueB), () =>
      migrate(
        plan(),
        shared.activities,
        async (handle) => {
          const summary = await handle.result();
          expect(summary.phase).toBe('completed');
          expect(summary.errors).toEqual([]);
          expect(a.names()).toEqual(['dumpSource']);
          expect(b.names()).toEqual(ON_WORKSPACE);
          expect(shared.names().filter((n) => n === 'claimWorkspace')).toHaveLength(2);
          expect(stepOf(summary, 'restore').state).toBe('done');
          expect(summary.warnings[0]).toContain('No worker took the restore on host worker-a');
          expect(summary.warnings[1]).toContain('Delete /work/worker-a/dumps/m on worker-a');
          expect(summary.warnings).toHaveLength(2);
        },
        { workspaceStartTimeout: '2s' },
      ),
    );
  });
});

test('a dump removal that no worker takes after success: completed, with a warning naming host and path', async () => {
  const hostQueue = uniqueTaskQueue('host');
  const host = stubs();
  let workerA: TestWorker | undefined;
  const shared = stubs({
    claimWorkspace: async () => claimOf(hostQueue, 'worker-a'),
    verifyTarget: async () => {
      // The worker that holds the dump goes away after the restore, before the removal.
      await workerA!.stop();
      return REPORT;
    },
  });
  await withTestWorker(hostWorker(host.activities, hostQueue), async (started) => {
    workerA = started;
    await migrate(
      plan(),
      shared.activities,
      async (handle) => {
        const summary = await handle.result();
        expect(host.names()).toEqual(['dumpSource', 'restoreTarget']);
        expect(shared.names()).toEqual(SHARED_HAPPY);
        expect(summary.phase).toBe('completed');
        expect(summary.errors).toEqual([]);
        expect(summary.compensation).toEqual([]);
        expect(summary.warnings).toHaveLength(1);
        expect(summary.warnings[0]).toContain('no worker took the removal on host worker-a within 2s');
        expect(summary.warnings[0]).toContain('Delete /work/worker-a/dumps/m on worker-a by hand');
      },
      { workspaceStartTimeout: '2s' },
    );
  });
});

test('claimed workers gone twice: the migration rolls back, and the dumps left behind are reported', async () => {
  const gone = [uniqueTaskQueue('gone-1'), uniqueTaskQueue('gone-2')];
  let claims = 0;
  const shared = stubs({
    claimWorkspace: async () => {
      claims += 1;
      return claimOf(gone[claims - 1], `worker-gone-${claims}`);
    },
  });
  await migrate(
    plan(),
    shared.activities,
    async (handle) => {
      const failure = await failureOf(handle);
      expect(shared.names()).toEqual([
        'preflight',
        'testSchema',
        'createTarget',
        'claimWorkspace',
        'scaleServicesDown',
        'claimWorkspace',
        'scaleServicesUp',
        'deprovisionTarget',
        'purgeTargetBackups',
      ]);
      const cause = failure.cause as ApplicationFailure;
      expect(cause.type).toBe('MigrationRolledBack');
      expect(cause.message).toContain('"Dump the data" failed');
      expect(cause.message).toContain('the worker that holds the dump seems gone');
      expect(cause.message).toContain('Not done (see the warnings): removeDump, removeDump');

      const status = await handle.query(statusQuery);
      expect(status.phase).toBe('rolled-back');
      expect(stepOf(status, 'dump').state).toBe('failed');
      expect(status.compensation.map((c) => [c.name, c.state])).toEqual([
        ['scaleServicesUp', 'done'],
        ['removeDump', 'skipped'],
        ['removeDump', 'skipped'],
        ['deprovisionTarget', 'done'],
        ['purgeTargetBackups', 'done'],
      ]);
      expect(status.compensation[1].detail).toContain('/work/worker-gone-1/dumps/m');
      expect(status.warnings.filter((w) => w.includes('could not be removed'))).toHaveLength(2);
      expect(
        status.warnings.some((w) => w.includes('Delete /work/worker-gone-2/dumps/m on worker-gone-2')),
      ).toBe(true);
    },
    { workspaceStartTimeout: '1s' },
  );
});

test('a restore interrupted once (psql killed) is retried on the same worker, after a ping, and completes', async () => {
  const hostQueue = uniqueTaskQueue('host');
  let restores = 0;
  const host = stubs({
    restoreTarget: async () => {
      restores += 1;
      if (restores === 1) throw new RestoreInterruptedError('psql was killed by SIGKILL');
      return { expectedErrors: [] };
    },
  });
  const shared = stubs({ claimWorkspace: async () => claimOf(hostQueue, 'worker-a') });
  await withTestWorker(hostWorker(host.activities, hostQueue), () =>
    migrate(plan(), shared.activities, async (handle) => {
      const summary = await handle.result();
      expect(summary.phase).toBe('completed');
      expect(summary.errors).toEqual([]);
      expect(summary.warnings).toEqual([]);
      expect(host.names()).toEqual([
        'dumpSource',
        'restoreTarget',
        'pingWorkspace',
        'restoreTarget',
        'removeDump',
      ]);
      // The retry finds what the killed attempt restored: the target must be reset this time.
      const restoreArgs = host.calls.filter((c) => c.name === 'restoreTarget').map((c) => c.args[2]);
      expect(restoreArgs).toEqual([{ freshTarget: true }, { freshTarget: false }]);
      expect(shared.names()).toEqual(SHARED_HAPPY);
    }),
  );
});

test("a restore interrupted at every attempt rolls back after the activity's attempts, saying why", async () => {
  const hostQueue = uniqueTaskQueue('host');
  const host = stubs({
    restoreTarget: async () => {
      throw new RestoreInterruptedError('psql lost its connection to the target part way through the dump');
    },
  });
  const shared = stubs({ claimWorkspace: async () => claimOf(hostQueue, 'worker-a') });
  await withTestWorker(hostWorker(host.activities, hostQueue), () =>
    migrate(plan(), shared.activities, async (handle) => {
      const failure = await failureOf(handle);
      expect(host.names()).toEqual([
        'dumpSource',
        'restoreTarget',
        'pingWorkspace',
        'restoreTarget',
        'pingWorkspace',
        'restoreTarget',
        'removeDump',
      ]);
      const cause = failure.cause as ApplicationFailure;
      expect(cause.type).toBe('MigrationRolledBack');
      expect(cause.message).toContain('RestoreInterruptedError: psql lost its connection');
    }),
  );
});

test('a host worker killed mid-dump is noticed in about a heartbeat timeout, not the 5-minute start timeout', async () => {
  const queueA = uniqueTaskQueue('host-a');
  const queueB = uniqueTaskQueue('host-b');
  const reclaimed = deferred();
  let reclaimedAt = 0;
  const b = stubs();
  let claims = 0;
  const shared = stubs({
    claimWorkspace: async () => {
      claims += 1;
      if (claims === 1) return claimOf(queueA, 'worker-a');
      reclaimedAt = Date.now();
      reclaimed.resolve();
      return claimOf(queueB, 'worker-b');
    },
  });
  const doomed = await startDoomedWorker(queueA);
  try {
    await withTestWorker(hostWorker(b.activities, queueB), () =>
      // The default workspaceStartTimeout (5m): the dead worker must be noticed without waiting for it.
      migrate(plan(), shared.activities, async (handle) => {
        await doomed.dumping;
        await doomed.kill();
        const killedAt = Date.now();
        await reclaimed.promise;
        // Heartbeat timeout (1m) + the ping's schedule-to-start timeout (30s), with room for a busy machine;
        // waiting out the dead worker's queue, as before, cannot take less than its 5 minutes.
        expect(reclaimedAt - killedAt).toBeLessThan(240_000);
        // A worker restarted on host A later serves its queue again and removes the dump left there.
        const a2 = stubs();
        await withTestWorker(hostWorker(a2.activities, queueA), async () => {
          const summary = await handle.result();
          expect(summary.phase).toBe('completed');
          expect(summary.errors).toEqual([]);
          expect(summary.downtimeMs).toBeLessThan(290_000);
          expect(b.names()).toEqual(ON_WORKSPACE);
          expect(a2.names()).toEqual(['removeDump']);
          expect(summary.warnings).toEqual([
            expect.stringContaining(
              'The worker on host worker-a failed or stopped answering during the dump, and no worker ' +
                'took a check on its queue within 30.0s (its worker seems gone); claiming another worker',
            ),
          ]);
          const scheduled = await scheduledQueues(handle);
          expect(scheduled.filter(([, queue]) => queue === queueA)).toEqual([
            ['dumpSource', queueA, 300],
            ['pingWorkspace', queueA, 30],
            ['removeDump', queueA, 300],
          ]);
        });
      }),
    );
  } finally {
    await doomed.kill();
  }
}, 600_000);

test('a workspace start timeout that is not a duration fails the workflow before any step', async () => {
  const { activities, names } = stubs();
  await migrate(
    plan(),
    activities,
    async (handle) => {
      const failure = await failureOf(handle);
      expect((failure.cause as ApplicationFailure).type).toBe('BadInputError');
      expect(names()).toEqual([]);
    },
    { workspaceStartTimeout: 'soon' },
  );
});

test("a target the rollback finds is not this run's is left in place, said so, and its backups untouched", async () => {
  const { activities, names } = stubs({
    verifyTarget: async () => {
      throw new PlatformError('the comparison could not run');
    },
    deprovisionTarget: async () => {
      throw new NotOursError('database "shop-pg17" in "local" was not created by this run; left in place');
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(names().slice(-3)).toEqual(['scaleServicesUp', 'removeDump', 'deprovisionTarget']);
    const status = await handle.query(statusQuery);
    expect(status.compensation.map((c) => [c.name, c.state])).toEqual([
      ['scaleServicesUp', 'done'],
      ['removeDump', 'done'],
      ['deprovisionTarget', 'skipped'],
    ]);
    expect(status.warnings.join('\n')).toMatch(/was not created by this run; left in place/);
    expect(failure.cause?.message).toMatch(/Not done \(see the warnings\): deprovisionTarget/);
  });
});
