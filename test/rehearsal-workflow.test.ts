// The rehearsal workflow on the real dev server, with stub activities that record every call: the phase
// order, the two dumps, the derived inputs (production never written to, nothing scaled), the report and
// its estimate, findings that are reported rather than failed on, and the cleanup after success, failure
// and cancellation.
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure, type Client, type WorkflowHandle } from '@temporalio/client';
import type {
  MigrationActivities,
  MigrationInput,
  RehearsalActivities,
  VerificationReport,
} from '../src/activities/contract';
import { unexpectedRestoreErrors } from '../src/activities/expected-errors';
import { NotFoundError, PlatformError, TargetExistsError } from '../src/errors';
import { validatePlan } from '../src/plan/load';
import type { Plan } from '../src/plan/schema';
import { PHASE_ATTRIBUTE, SOURCE_ATTRIBUTE, STEP_ATTRIBUTE } from '../src/workflows/definitions';
import {
  REHEARSAL_WORKFLOW_TYPE,
  rehearsalStatusQuery,
  type RehearsalFailureDetails,
  type RehearsalReport,
  type RehearsalWorkflowOptions,
} from '../src/workflows/rehearsal-definitions';
import type { rehearsalWorkflow } from '../src/workflows/rehearsal';
import { connectTestClient, uniqueTaskQueue, uniqueWorkflowId, withTestWorker } from './helpers/temporal';
import { deferred, failureOf, recordingStubs } from './helpers/stubs';

type All = MigrationActivities & RehearsalActivities;
type Name = keyof All;
type Impl = { [K in Name]: (...args: Parameters<All[K]>) => ReturnType<All[K]> };

const REPORT: VerificationReport = {
  ok: true,
  databases: [{ name: 'db', tables: [], sequences: [] }],
  tablesCompared: 3,
  rowsVerified: 1200,
  sequencesCompared: 2,
  mismatches: [],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function defaults(): Impl {
  let dumps = 0;
  const refuse = async () => {
    throw new Error('a rehearsal must not call this activity');
  };
  return {
    findLatestBackup: async () => ({ id: 'bk-42', createdAt: '2025-01-02T03:04:05.000Z', sizeBytes: 5000 }),
    restoreBackupCopy: async (input) => ({
      handle: `${input.plan.source.handle}-rehearsal`,
      environment: input.plan.source.environment,
      version: 14,
      containerSizeMb: 2048,
      foundExisting: false,
    }),
    claimWorkspace: async () => ({
      taskQueue: Context.current().info.taskQueue,
      host: 'test-host',
      dumpDir: '/work/dumps/r',
    }),
    pingWorkspace: async () => undefined,
    // The first dump is slower (a cold disk), the second is the one timed for the estimate.
    dumpSource: async () => {
      dumps += 1;
      await sleep(dumps === 1 ? 400 : 200);
      return { path: '/work/dumps/r/dump.sql', bytes: 4096, sha256: `sha-${dumps}`, droppedStatements: 1 };
    },
    createTarget: async (input) => ({
      handle: input.plan.target.handle,
      environment: input.plan.target.environment,
      version: 17,
      foundExisting: false,
    }),
    restoreTarget: async () => {
      await sleep(150);
      return { expectedErrors: ['ERROR:  role "aptible" already exists'] };
    },
    verifyTarget: async () => {
      await sleep(100);
      return REPORT;
    },
    removeDump: async () => undefined,
    deprovisionTarget: async () => undefined,
    purgeTargetBackups: async () => ({ purged: [] }),
    // What a rehearsal never does: touch production's services, config or the source itself.
    preflight: refuse,
    testSchema: refuse,
    scaleServicesDown: refuse,
    scaleServicesUp: refuse,
    updateServiceConfig: refuse,
    revertServiceConfig: refuse,
    vacuumAnalyze: refuse,
    deprovisionSource: refuse,
  };
}

function stubs(overrides: Partial<Impl> = {}) {
  const stubbed = recordingStubs<Name>({ ...defaults(), ...overrides });
  const inputsOf = (name: Name) =>
    stubbed.calls.filter((c) => c.name === name).map((c) => c.args[0] as MigrationInput);
  return { ...stubbed, inputsOf };
}

function plan(overrides: Record<string, unknown> = {}): Plan {
  return validatePlan({
    platform: 'local',
    source: { handle: 'shop-pg14' },
    target: { handle: 'shop-pg17', version: '17' },
    services: [
      { app: 'shop', service: 'web' },
      { app: 'shop', service: 'worker' },
    ],
    config: [
      { app: 'shop', variable: 'DB_URL' },
      { app: 'shop', variable: 'REPLICA_URL' },
    ],
    ...overrides,
  });
}

const FORWARD: Name[] = [
  'findLatestBackup',
  'restoreBackupCopy',
  'claimWorkspace',
  'dumpSource',
  'dumpSource',
  'createTarget',
  'restoreTarget',
  'verifyTarget',
];
const CLEAN_TARGET: Name[] = ['deprovisionTarget', 'purgeTargetBackups'];
const CLEAN_COPY: Name[] = ['deprovisionTarget', 'purgeTargetBackups'];
const CLEAN_ALL: Name[] = ['removeDump', ...CLEAN_TARGET, ...CLEAN_COPY];

let client: Client;
beforeAll(async () => {
  client = await connectTestClient();
});
afterAll(async () => {
  await client?.connection.close();
});

type Handle = WorkflowHandle<typeof rehearsalWorkflow>;

async function rehearse<T>(
  p: Plan,
  activities: object,
  body: (handle: Handle) => Promise<T>,
  options?: RehearsalWorkflowOptions,
): Promise<T> {
  const taskQueue = uniqueTaskQueue('rh');
  return withTestWorker({ activities, taskQueue }, async () => {
    const workflowId = uniqueWorkflowId('rehearsal');
    const input: MigrationInput = { migrationId: workflowId, plan: p };
    const handle = await client.workflow.start<typeof rehearsalWorkflow>(REHEARSAL_WORKFLOW_TYPE, {
      taskQueue,
      workflowId,
      args: options ? [input, options] : [input],
    });
    return body(handle);
  });
}

const partOf = (r: RehearsalReport, name: string) => r.estimate.parts.find((p) => p.name === name)!;
const phaseOf = (r: RehearsalReport, name: string) => r.phases.find((p) => p.name === name)!;

test('happy path: the phases in order, two dumps of the copy, a report whose estimate adds up', async () => {
  const { activities, calls, names, inputsOf } = stubs();
  const p = plan();
  await rehearse(p, activities, async (handle) => {
    const report = await handle.result();
    expect(names()).toEqual([...FORWARD, ...CLEAN_ALL]);

    // The backup found is the one restored; the restore gets the second (timed) dump.
    expect(calls.find((c) => c.name === 'restoreBackupCopy')!.args[1]).toBe('bk-42');
    expect(calls.find((c) => c.name === 'restoreTarget')!.args[1]).toMatchObject({ sha256: 'sha-2' });

    // Every migration activity works on the copy and the rehearsal target, with nothing to scale or repoint.
    for (const name of [
      'dumpSource',
      'createTarget',
      'restoreTarget',
      'verifyTarget',
      'removeDump',
    ] as Name[]) {
      for (const input of inputsOf(name)) {
        expect(input.plan.source).toEqual({ handle: 'shop-pg14-rehearsal', environment: 'local' });
        expect(input.plan.target).toMatchObject({
          handle: 'shop-pg17-rehearsal',
          environment: 'local',
          version: '17',
        });
        expect(input.plan.services).toEqual([]);
        expect(input.plan.config).toEqual([]);
      }
    }
    // Every activity can tell what this run made (isOwnedBy): the run's id and start time travel along.
    for (const input of calls.map((c) => c.args[0] as MigrationInput)) {
      expect(input).toMatchObject({ runId: expect.any(String), startedAt: expect.any(Number) });
    }
    const [dropTarget, dropCopy] = inputsOf('deprovisionTarget');
    expect(dropTarget.plan.target.handle).toBe('shop-pg17-rehearsal');
    expect(dropCopy.plan.target).toMatchObject({ handle: 'shop-pg14-rehearsal', environment: 'local' });
    const [purgeTarget, purgeCopy] = inputsOf('purgeTargetBackups');
    expect(purgeTarget.plan.target.handle).toBe('shop-pg17-rehearsal');
    expect(purgeCopy.plan.target.handle).toBe('shop-pg14-rehearsal');
    // One owner label for everything the run creates, and it is the rehearsal's.
    const labels = new Set(
      calls.map((c) => `${(c.args[0] as MigrationInput).migrationId}#${(c.args[0] as MigrationInput).runId}`),
    );
    expect(labels).toEqual(new Set([`${handle.workflowId}#${(await handle.describe()).runId}`]));

    expect(report.ok).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.backup).toEqual({ id: 'bk-42', createdAt: '2025-01-02T03:04:05.000Z', sizeBytes: 5000 });
    expect(report.source).toBe('local/shop-pg14');
    expect(report.copy).toBe('local/shop-pg14-rehearsal');
    expect(report.target).toBe('local/shop-pg17-rehearsal');
    expect(report.phases.map((x) => x.name)).toEqual([
      'findBackup',
      'restoreCopy',
      'warmUpDump',
      'timedDump',
      'createTarget',
      'restore',
      'verify',
    ]);
    expect(report.phases.every((x) => x.state === 'done' && x.ms !== undefined)).toBe(true);
    expect(report.dumps.warmUpMs).toBeGreaterThanOrEqual(400);
    expect(report.dumps.timedMs).toBeGreaterThanOrEqual(200);
    expect(report.dumps.bytes).toBe(4096);
    expect(report.restore).toEqual({
      expectedErrors: ['ERROR:  role "aptible" already exists'],
      unexpectedErrors: [],
    });
    expect(report.verification).toEqual(REPORT);

    // The estimate: measured copy steps, allowances for what would touch production (local: 2 s each).
    expect(report.estimate.parts.map((x) => [x.name, x.basis])).toEqual([
      ['scaleDown', 'allowance'],
      ['dump', 'measured'],
      ['restore', 'measured'],
      ['verify', 'measured'],
      ['updateConfig', 'allowance'],
      ['scaleUp', 'allowance'],
    ]);
    expect(partOf(report, 'scaleDown').ms).toBe(2 * 2000);
    expect(partOf(report, 'scaleUp').ms).toBe(2 * 2000);
    expect(partOf(report, 'updateConfig').ms).toBe(1 * 2000); // one app, however many variables
    expect(partOf(report, 'dump').ms).toBe(report.dumps.timedMs);
    expect(partOf(report, 'restore').ms).toBe(phaseOf(report, 'restore').ms);
    expect(partOf(report, 'verify').ms).toBe(phaseOf(report, 'verify').ms);
    expect(partOf(report, 'restore').ms).toBeGreaterThanOrEqual(150);
    expect(report.estimate.totalMs).toBe(report.estimate.parts.reduce((sum, x) => sum + x.ms, 0));
    expect(report.estimate.excludes).toEqual([expect.stringContaining('confirm the cutover')]);

    expect(report.cleanup.map((c) => [c.name, c.state])).toEqual([
      ['removeDump', 'done'],
      ['deprovisionTarget', 'done'],
      ['purgeTargetBackups', 'done'],
      ['deprovisionCopy', 'done'],
      ['purgeCopyBackups', 'done'],
    ]);

    const status = await handle.query(rehearsalStatusQuery);
    expect(status.phase).toBe('completed');
    expect(status.report).toEqual(report);
    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(SOURCE_ATTRIBUTE)).toBe('local/shop-pg14');
    expect(description.typedSearchAttributes.get(STEP_ATTRIBUTE)).toBe('completed');
    expect(description.typedSearchAttributes.get(PHASE_ATTRIBUTE)).toBe('completed');
  });
});

test("the estimate takes the successful attempt's own time, not the retries and queueing around it", async () => {
  let dumps = 0;
  const { activities } = stubs({
    dumpSource: async () => {
      dumps += 1;
      // The timed dump fails once, then succeeds in 250 ms as measured by the activity itself.
      if (dumps === 2) throw new Error('the tunnel dropped');
      await sleep(100);
      return { path: '/d', bytes: 4096, sha256: 'x', droppedStatements: 0, durationMs: 250 };
    },
    restoreTarget: async () => ({ expectedErrors: [], durationMs: 40 }),
  });
  await rehearse(plan(), activities, async (handle) => {
    const report = (await handle.result()) as RehearsalReport;
    const dump = report.estimate.parts.find((p) => p.name === 'dump')!;
    expect(dump.ms).toBe(250);
    expect(dump.detail).toMatch(/with its retries and queueing/); // the step itself took over a second
    expect(report.estimate.parts.find((p) => p.name === 'restore')!.ms).toBe(40);
    expect(report.dumps.timedMs).toBe(250);
    expect(report.estimate.totalMs).toBe(report.estimate.parts.reduce((sum, p) => sum + p.ms, 0));
  });
});

test('aptible allowances, and none for a plan without services or config', async () => {
  const { activities } = stubs();
  await rehearse(
    plan({
      platform: 'aptible',
      source: { handle: 'shop-pg14', environment: 'prod' },
      services: [],
      config: [],
    }),
    activities,
    async (handle) => {
      const report = await handle.result();
      expect(partOf(report, 'scaleDown').ms).toBe(0);
      expect(partOf(report, 'updateConfig').ms).toBe(0);
      expect(partOf(report, 'updateConfig').detail).toContain('0 app(s) × 2m0s');
      expect(report.estimate.totalMs).toBe(
        partOf(report, 'dump').ms + partOf(report, 'restore').ms + partOf(report, 'verify').ms,
      );
    },
  );
  const again = stubs();
  await rehearse(
    plan({ platform: 'aptible', source: { handle: 'shop-pg14', environment: 'prod' } }),
    again.activities,
    async (handle) => {
      const report = await handle.result();
      expect(partOf(report, 'scaleDown').ms).toBe(2 * 60_000);
      expect(partOf(report, 'updateConfig').ms).toBe(120_000);
    },
  );
});

test('unexpected restore errors are reported: ok false, the lines listed, verification skipped, cleanup done', async () => {
  const lines = [
    'psql:/work/dump.sql:120: ERROR:  new row for relation "stock" violates check constraint "stock_qty_check"\nDETAIL:  Failing row contains (large, 500).',
  ];
  const { activities, names } = stubs({
    restoreTarget: async () => {
      throw unexpectedRestoreErrors('the restore failed', lines, ['ERROR:  role "aptible" already exists']);
    },
  });
  await rehearse(plan(), activities, async (handle) => {
    const report = await handle.result();
    expect(names()).toEqual([...FORWARD.filter((n) => n !== 'verifyTarget'), ...CLEAN_ALL]);
    expect(report.ok).toBe(false);
    expect(report.restore.unexpectedErrors).toEqual(lines);
    expect(report.restore.expectedErrors).toEqual(['ERROR:  role "aptible" already exists']);
    expect(report.problems).toEqual([expect.stringContaining('1 unexpected error(s)')]);
    expect(report.verification).toBeUndefined();
    expect(report.verificationSkipped).toContain('unexpected errors');
    expect(phaseOf(report, 'verify').state).toBe('skipped');
    expect(phaseOf(report, 'restore').state).toBe('failed');
    expect(phaseOf(report, 'restore').ms).toBeGreaterThanOrEqual(0);
    expect(partOf(report, 'verify')).toMatchObject({ ms: 0, detail: expect.stringContaining('skipped') });
    expect(report.estimate.excludes).toEqual(expect.arrayContaining(['the verification (skipped)']));
    expect(report.cleanup.every((c) => c.state === 'done')).toBe(true);
    expect(report.cleanup).toHaveLength(5);
    expect((await handle.query(rehearsalStatusQuery)).phase).toBe('completed');
  });
});

test('a verification mismatch is reported: ok false, with the mismatches', async () => {
  const mismatched = { ...REPORT, ok: false, mismatches: ['db.public.orders: source 42 rows, target 41'] };
  const { activities, names } = stubs({
    verifyTarget: async () => {
      throw ApplicationFailure.create({
        type: 'VerificationFailedError',
        nonRetryable: true,
        message: 'source and target disagree',
        details: [mismatched],
      });
    },
  });
  await rehearse(plan(), activities, async (handle) => {
    const report = await handle.result();
    expect(names()).toEqual([...FORWARD, ...CLEAN_ALL]);
    expect(report.ok).toBe(false);
    expect(report.verification).toEqual(mismatched);
    expect(report.problems).toEqual([expect.stringContaining('db.public.orders: source 42 rows, target 41')]);
  });
});

test('a failed step after the copy and the dumps: everything created is removed, the rehearsal fails', async () => {
  const { activities, names, inputsOf } = stubs({
    createTarget: async () => {
      throw new PlatformError('version 17 is not available here');
    },
  });
  await rehearse(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(names()).toEqual([...FORWARD.slice(0, 6), ...CLEAN_ALL]);
    expect(inputsOf('deprovisionTarget').map((i) => i.plan.target.handle)).toEqual([
      'shop-pg17-rehearsal',
      'shop-pg14-rehearsal',
    ]);
    const cause = failure.cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause.type).toBe('RehearsalFailed');
    expect(cause.message).toContain('step "Create the rehearsal target" failed');
    expect(cause.message).toContain('PlatformError: version 17 is not available here');
    expect(cause.message).toContain(
      'Cleaned up: removeDump, deprovisionTarget, purgeTargetBackups, deprovisionCopy, purgeCopyBackups',
    );
    const details = cause.details?.[0] as RehearsalFailureDetails;
    expect(details.failedStep).toBe('createTarget');
    expect(details.cleanup.map((c) => c.state)).toEqual(['done', 'done', 'done', 'done', 'done']);

    const status = await handle.query(rehearsalStatusQuery);
    expect(status.phase).toBe('failed');
    expect(status.report).toBeUndefined();
    expect(status.errors[0]).toContain('Create the rehearsal target');
  });
});

test('restoring the copy fails: the copy is removed (it may be half-made), nothing else is touched', async () => {
  const { activities, names, inputsOf } = stubs({
    restoreBackupCopy: async () => {
      throw new PlatformError('backup bk-42 cannot be restored: it is being deleted');
    },
  });
  await rehearse(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(names()).toEqual(['findLatestBackup', 'restoreBackupCopy', ...CLEAN_COPY]);
    expect(inputsOf('deprovisionTarget')[0].plan.target).toMatchObject({
      handle: 'shop-pg14-rehearsal',
      environment: 'local',
    });
    expect(failure.cause?.message).toContain('step "Restore it into a copy of production size" failed');
    expect(failure.cause?.message).toContain('it is being deleted');
  });
});

test('a copy handle taken by a database this rehearsal did not create is never deprovisioned', async () => {
  const { activities, names } = stubs({
    restoreBackupCopy: async () => {
      throw new TargetExistsError('a database of that name exists that this rehearsal did not create');
    },
  });
  await rehearse(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(names()).toEqual(['findLatestBackup', 'restoreBackupCopy']);
    expect(failure.cause?.message).toContain('TargetExistsError');
    expect(failure.cause?.message).toContain('Nothing needed cleaning up');
  });
});

test('no backup: the rehearsal fails at once, telling the operator to take one, with nothing to clean', async () => {
  const { activities, names } = stubs({
    findLatestBackup: async () => {
      throw new NotFoundError(
        'database "shop-pg14" in "local" has no backup to rehearse with; take one (`pgshift local backup:create shop-pg14`)',
      );
    },
  });
  await rehearse(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(names()).toEqual(['findLatestBackup']);
    expect(failure.cause?.message).toContain('pgshift local backup:create shop-pg14');
  });
});

test('cancelling during the timed dump cancels it and still cleans up everything created', async () => {
  const started = deferred();
  let dumps = 0;
  let dumpCancelled = false;
  let removedAfterDumpStopped = false;
  const { activities, names } = stubs({
    dumpSource: async () => {
      dumps += 1;
      if (dumps === 1) return { path: '/d', bytes: 1, sha256: 'x', droppedStatements: 0 };
      started.resolve();
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
      removedAfterDumpStopped = dumpCancelled;
    },
  });
  await rehearse(plan(), activities, async (handle) => {
    await started.promise;
    await handle.cancel();
    const failure = await failureOf(handle);
    expect(failure.cause).toBeInstanceOf(CancelledFailure);
    expect(dumpCancelled).toBe(true);
    expect(removedAfterDumpStopped).toBe(true);
    expect(names()).toEqual([...FORWARD.slice(0, 5), 'removeDump', ...CLEAN_COPY]);
    const status = await handle.query(rehearsalStatusQuery);
    expect(status.phase).toBe('cancelled');
    expect(status.steps.find((s) => s.name === 'timedDump')?.state).toBe('cancelled');
    expect(status.cleanup.map((c) => [c.name, c.state])).toEqual([
      ['removeDump', 'done'],
      ['deprovisionCopy', 'done'],
      ['purgeCopyBackups', 'done'],
    ]);
  });
});

test('a claimed worker that is gone: the rehearsal fails (no second claim), the dump left is named', async () => {
  const { activities, names } = stubs({
    claimWorkspace: async () => ({
      taskQueue: uniqueTaskQueue('gone'),
      host: 'worker-gone',
      dumpDir: '/work/worker-gone/dumps/r',
    }),
  });
  await rehearse(
    plan(),
    activities,
    async (handle) => {
      const failure = await failureOf(handle);
      // The dump and its removal went to the gone worker's queue: nothing here ran them.
      expect(names()).toEqual(['findLatestBackup', 'restoreBackupCopy', 'claimWorkspace', ...CLEAN_COPY]);
      expect(failure.cause?.message).toContain('the worker that holds the dump seems gone');
      const status = await handle.query(rehearsalStatusQuery);
      expect(status.cleanup.map((c) => [c.name, c.state])).toEqual([
        ['removeDump', 'skipped'],
        ['deprovisionCopy', 'done'],
        ['purgeCopyBackups', 'done'],
      ]);
      expect(status.warnings[0]).toContain('Delete /work/worker-gone/dumps/r on worker-gone by hand');
    },
    { workspaceStartTimeout: '1s' },
  );
});

test('a failing cleanup step is reported; the others still run', async () => {
  let deprovisions = 0;
  const { activities, names } = stubs({
    deprovisionTarget: async () => {
      deprovisions += 1;
      if (deprovisions === 1) throw new PlatformError('the platform refused');
    },
  });
  await rehearse(plan(), activities, async (handle) => {
    const report = await handle.result();
    expect(names()).toEqual([...FORWARD, ...CLEAN_ALL]);
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([expect.stringContaining('"Deprovision the rehearsal target" failed')]);
    expect(report.cleanup.map((c) => c.state)).toEqual(['done', 'failed', 'done', 'done', 'done']);
  });
});
