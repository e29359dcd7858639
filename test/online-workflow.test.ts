// The online migration (method: logical) on the real dev server, with stub activities that record every
// call: step order and downtime, the gate with the services running and the lag sampled, the rollback
// before the point of no return, and the replication dropped on every path.
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure, type Client, type WorkflowHandle } from '@temporalio/client';
import type { MigrationInput } from '../src/activities/contract';
import { fetchStatus, formatStatus } from '../src/client/status';
import { PlatformError } from '../src/errors';
import type { Plan } from '../src/plan/schema';
import {
  abortSignal,
  cutoverSignal,
  statusQuery,
  type MigrationStatus,
  type MigrationSummary,
} from '../src/workflows/definitions';
import type { migrationWorkflow } from '../src/workflows/migration';
import { healthWarnings } from '../src/workflows/replication-sampling';
import { manualDropSql } from '../src/workflows/replication-text';
import {
  CUTOVER,
  HAPPY,
  RECORDED,
  REPLICATING,
  REPORT,
  UNDO_CUTOVER,
  named,
  plan,
  sample,
  stubs,
} from './helpers/online-stubs';
import { deferred, failureOf } from './helpers/stubs';
import { connectTestClient, uniqueTaskQueue, uniqueWorkflowId, withTestWorker } from './helpers/temporal';

let client: Client;
beforeAll(async () => {
  client = await connectTestClient();
});
afterAll(async () => {
  await client?.connection.close();
});

type Handle = WorkflowHandle<typeof migrationWorkflow>;

async function migrate<T>(p: Plan, activities: object, body: (handle: Handle) => Promise<T>): Promise<T> {
  const taskQueue = uniqueTaskQueue('online');
  return withTestWorker({ activities, taskQueue }, async () => {
    const workflowId = uniqueWorkflowId('online');
    const input: MigrationInput = { migrationId: workflowId, plan: p };
    const handle = await client.workflow.start<typeof migrationWorkflow>('migrationWorkflow', {
      taskQueue,
      workflowId,
      args: [input],
    });
    return body(handle);
  });
}

async function waitForStatus(
  handle: Handle,
  predicate: (s: MigrationStatus) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<MigrationStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: MigrationStatus | undefined;
  while (Date.now() < deadline) {
    last = await handle.query(statusQuery);
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(last)}`);
}

const stepOf = (s: MigrationStatus, name: string) => s.steps.find((x) => x.name === name)!;
const undone = (s: MigrationStatus) => s.compensation.map((c) => [c.name, c.state]);

test('happy path: replication, then a cutover whose downtime is scale-down to scale-up, then clean-up', async () => {
  const { activities, calls, steps } = stubs();
  await migrate(plan(), activities, async (handle) => {
    const summary: MigrationSummary = await handle.result();
    expect(steps()).toEqual(HAPPY);
    expect(calls.find((c) => c.name === 'scaleServicesDown')!.args[1]).toEqual(RECORDED);
    expect(calls.find((c) => c.name === 'scaleServicesUp')!.args[1]).toEqual(RECORDED);

    expect(summary.method).toBe('logical');
    expect(summary.phase).toBe('completed');
    expect(summary.errors).toEqual([]);
    expect(summary.compensation).toEqual([]);
    expect(summary.pointOfNoReturn).toBe(true);
    expect(summary.rowsVerified).toBe(42);
    expect(Object.fromEntries(summary.steps.map((s) => [s.name, s.state]))).toEqual({
      preflight: 'done',
      testSchema: 'done',
      createTarget: 'done',
      copySchema: 'done',
      startReplication: 'done',
      initialSync: 'done',
      awaitCutover: 'done',
      awaitWindow: 'skipped',
      scaleDown: 'done',
      catchUp: 'done',
      checkSchema: 'done',
      syncSequences: 'done',
      verify: 'done',
      updateConfig: 'done',
      scaleUp: 'done',
      dropReplication: 'done',
      vacuumAnalyze: 'done',
      deprovisionSource: 'skipped',
    });

    // The downtime starts with the scale-down, after the copy and the gate, and ends with the scale-up.
    const { startedAt, endedAt } = summary.downtime;
    expect(startedAt).toBe(stepOf(summary, 'scaleDown').startedAt);
    expect(startedAt).toBeGreaterThanOrEqual(stepOf(summary, 'initialSync').endedAt!);
    expect(startedAt).toBeGreaterThanOrEqual(stepOf(summary, 'awaitCutover').endedAt!);
    expect(endedAt).toBe(stepOf(summary, 'scaleUp').endedAt);
    expect(summary.downtimeMs).toBe(endedAt! - startedAt!);

    expect(summary.replication?.objects).toMatchObject({ slots: ['pgshift_slot_x'] });
    expect(summary.replication?.catchUp).toEqual({ waitedMs: 120, lsn: '0/3000060' });
    expect(summary.replication?.cleanup?.leftBehind).toEqual([]);
    expect(stepOf(summary, 'dropReplication').detail).toContain('slot pgshift_slot_x');
    expect(stepOf(summary, 'initialSync').detail).toBe('2/2 tables, 2.0 MB of 2.0 MB in 1 database(s)');
  });
});

test('the status during the initial sync and at the gate: progress, then the lag, with the services running', async () => {
  const release = deferred();
  let released = false;
  void release.promise.then(() => (released = true));
  let samples = 0;
  const { activities, steps } = stubs({
    awaitInitialSync: async () => {
      const ctx = Context.current();
      while (!released) {
        ctx.heartbeat(sample(1, 0));
        await ctx.sleep(100);
      }
      return sample(2, 0);
    },
    // Half-way through the copy until it is released; a failing sample now and then is skipped quietly.
    sampleReplication: async () => {
      samples += 1;
      if (samples === 2) throw new PlatformError('sample failed');
      return released ? sample(2, 1000 * samples) : sample(1, 0);
    },
  });
  const p = plan({ cutover: { confirm: true, timeout: '10m' } });
  await migrate(p, activities, async (handle) => {
    const syncing = await waitForStatus(handle, (s) => s.replication?.latest !== undefined, 'a sample');
    expect(syncing.currentStep).toBe('initialSync');
    expect(stepOf(syncing, 'initialSync').detail).toBe('1/2 tables, 1.0 MB of 2.0 MB in 1 database(s)');
    const view = await fetchStatus(client, handle.workflowId);
    expect(formatStatus(view)).toContain('Initial sync: 1/2 tables, 1.0 MB of 2.0 MB in 1 database(s)');
    expect(formatStatus(view)).toContain('    db: 1/2 tables, 1.0 MB of 2.0 MB');
    // Not history yet: the lag of a slot waiting for its copy only grows.
    expect(syncing.replication?.lagHistory).toEqual([]);
    release.resolve();

    const gate = await waitForStatus(
      handle,
      (s) => s.cutover.waiting && (s.replication?.lagHistory.length ?? 0) >= 2,
      'two lag samples at the gate',
    );
    expect(steps()).toEqual(REPLICATING);
    expect(gate.phase).toBe('awaiting-cutover');
    expect(gate.downtime.startedAt).toBeUndefined();
    expect(gate.replication?.latest?.lagBytes).toBeGreaterThan(0);
    expect(stepOf(gate, 'awaitCutover').detail).toMatch(
      /^replicating, lag [\d.]+ kB, [\d.]+s; the services run on the source$/,
    );
    const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toContain('pgshift cutover');
    expect(metadata.currentDetails).toMatch(/lag [\d.]+ kB/);
    const atGate = formatStatus(await fetchStatus(client, handle.workflowId));
    expect(atGate).toMatch(/Replication: lag [\d.]+ kB, [\d.]+s \(sampled .* ago, every 5\.0s\)/);
    expect(atGate).toContain('Lag history: max lag');

    await handle.signal(cutoverSignal, { by: 'alice' });
    const summary = await handle.result();
    expect(steps()).toEqual(HAPPY);
    expect(stepOf(summary, 'awaitCutover').detail).toBe('confirmed from alice');
    expect(summary.replication!.lagHistory.length).toBeGreaterThanOrEqual(2);
    expect(summary.warnings).toEqual([]);
  });
});

test('at the gate, rising subscription errors and a slot without its sender are warned about, once each', async () => {
  let n = 0;
  const { activities } = stubs({
    sampleReplication: async () => {
      n += 1;
      const base = sample(2, 1000);
      const db = { ...base.databases[0], applyErrors: n >= 2 ? 3 : 0, syncErrors: 0, slotActive: n < 4 };
      return { ...base, databases: [db] };
    },
  });
  await migrate(plan({ cutover: { confirm: true, timeout: '10m' } }), activities, async (handle) => {
    const gate = await waitForStatus(
      handle,
      (s) => s.cutover.waiting && n >= 6,
      'six samples at the gate',
      120_000,
    );
    expect(gate.warnings).toEqual([
      expect.stringMatching(/^Replication of database "db" reports 3 apply error\(s\) so far/),
      expect.stringMatching(/^Replication of database "db": its slot on the source has no WAL sender/),
    ]);
    await handle.signal(cutoverSignal, { by: 'alice' });
    expect((await handle.result()).warnings).toHaveLength(2);
  });
});

test('health warnings and the hand-run SQL, without a workflow', () => {
  const at = (applyErrors: number, syncErrors: number, slotActive: boolean) => {
    const base = sample(2, 0);
    return { ...base, databases: [{ ...base.databases[0], applyErrors, syncErrors, slotActive }] };
  };
  expect(healthWarnings(undefined, at(0, 0, true))).toEqual([]);
  expect(healthWarnings(at(0, 0, true), at(0, 2, true))).toEqual([
    expect.stringContaining('2 table-sync error(s)'),
  ]);
  expect(healthWarnings(at(0, 2, true), at(0, 2, true))).toEqual([]);
  expect(healthWarnings(at(0, 2, false), at(0, 2, false))).toEqual([]);
  // A database name may hold '/': names never do.
  const sql = manualDropSql({
    databases: ['a/b'],
    publications: ['a/b/pgshift_p'],
    slots: ['pgshift_s'],
    subscriptions: ['a/b/pgshift_s'],
  });
  expect(sql).toEqual([
    'on the target, in database a/b: ALTER SUBSCRIPTION "pgshift_s" DISABLE; ALTER SUBSCRIPTION "pgshift_s" SET (slot_name = NONE); DROP SUBSCRIPTION "pgshift_s";',
    "on the source: SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'pgshift_s' AND active_pid IS NOT NULL; SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'pgshift_s';",
    'on the source, in database a/b: DROP PUBLICATION IF EXISTS "pgshift_p";',
  ]);
});

test('abort while replicating: the services are never stopped, replication is dropped before the target goes', async () => {
  const { activities, steps } = stubs();
  const p = plan({ cutover: { confirm: true, timeout: '10m' } });
  await migrate(p, activities, async (handle) => {
    await waitForStatus(handle, (s) => s.cutover.waiting, 'the gate');
    await handle.signal(abortSignal, { reason: 'not tonight' });
    const failure = await failureOf(handle);
    expect(steps()).toEqual([...REPLICATING, 'dropReplication', 'deprovisionTarget', 'purgeTargetBackups']);
    const cause = failure.cause as ApplicationFailure;
    expect(cause.type).toBe('MigrationAborted');
    expect(cause.message).toContain('Replicating: wait for cutover confirmation');
    expect(cause.message).toContain('not tonight');
    const status = await handle.query(statusQuery);
    expect(status.phase).toBe('rolled-back');
    expect(undone(status)).toEqual([
      ['dropReplication', 'done'],
      ['deprovisionTarget', 'done'],
      ['purgeTargetBackups', 'done'],
    ]);
    expect(status.downtime).toEqual({});
    expect(stepOf(status, 'awaitCutover').state).toBe('cancelled');
  });
});

test('the gate times out with onTimeout abort: rolled back without any downtime', async () => {
  const { activities, steps } = stubs();
  const p = plan({ cutover: { confirm: true, timeout: '3s', onTimeout: 'abort' } });
  await migrate(p, activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(steps()).toEqual([...REPLICATING, 'dropReplication', 'deprovisionTarget', 'purgeTargetBackups']);
    expect((failure.cause as ApplicationFailure).message).toContain('cutover not confirmed within 3s');
  });
});

test('a schema change on the source, found at cutover: services back up on the source, all undone', async () => {
  const { activities, steps } = stubs({
    checkSchemaUnchanged: async () => {
      throw named('SchemaChangedError', 'db: column public.orders.note added on the source since the copy');
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(steps()).toEqual([
      ...REPLICATING,
      'scaleServicesDown',
      'awaitCatchUp',
      'checkSchemaUnchanged',
      ...UNDO_CUTOVER,
    ]);
    const cause = failure.cause as ApplicationFailure;
    expect(cause.type).toBe('MigrationRolledBack');
    expect(cause.details?.[0]).toMatchObject({ failedStep: 'checkSchema' });
    expect(cause.message).toContain('SchemaChangedError: db: column public.orders.note added');
    const status = await handle.query(statusQuery);
    expect(undone(status)).toEqual(UNDO_CUTOVER.map((n) => [n, 'done']));
    expect(status.downtime.endedAt).toBeGreaterThanOrEqual(status.downtime.startedAt!);
    expect(status.pointOfNoReturn).toBe(false);
  });
});

test('a catch-up past its bound rolls back', async () => {
  const { activities, steps } = stubs({
    awaitCatchUp: async () => {
      throw named('CatchUpTimeoutError', 'the target did not catch up within 2m');
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const failure = await failureOf(handle);
    expect(steps()).toEqual([...REPLICATING, 'scaleServicesDown', 'awaitCatchUp', ...UNDO_CUTOVER]);
    expect((failure.cause as ApplicationFailure).details?.[0]).toMatchObject({ failedStep: 'catchUp' });
    expect((failure.cause as ApplicationFailure).message).toContain('did not catch up within 2m');
  });
});

test('a failure after the point of no return is reported, and replication is still dropped', async () => {
  const { activities, steps } = stubs({
    scaleServicesUp: async () => {
      throw new PlatformError('app shop does not exist any more');
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const summary = await handle.result();
    expect(steps()).toEqual(HAPPY);
    expect(summary.phase).toBe('completed-with-errors');
    expect(summary.compensation).toEqual([]);
    expect(stepOf(summary, 'dropReplication').state).toBe('done');
    expect(summary.errors).toHaveLength(1);
    expect(summary.errors[0]).toContain('app shop does not exist any more');
  });
});

test('replication objects left behind are reported with their SQL, after success and in a rollback', async () => {
  const sql = `on the source: SELECT pg_drop_replication_slot('pgshift_slot_x');`;
  const leftBehind = stubs({ dropReplication: async () => ({ dropped: [], leftBehind: [sql] }) });
  await migrate(plan(), leftBehind.activities, async (handle) => {
    const summary = await handle.result();
    expect(summary.phase).toBe('completed-with-errors');
    expect(stepOf(summary, 'dropReplication').state).toBe('failed');
    expect(summary.errors.join('\n')).toContain(sql);
    expect(summary.replication?.cleanup?.leftBehind).toEqual([sql]);
    expect(
      formatStatus({ workflowId: handle.workflowId, execution: 'COMPLETED', status: summary }),
    ).toContain(
      `Replication objects LEFT BEHIND — run by hand (a slot left on the source keeps its WAL and fills its disk):\n    ${sql}`,
    );
  });

  // The clean-up fails outright in a rollback: the SQL comes from what startReplication said it made.
  const failing = stubs({
    verifyReplica: async () => ({
      ...REPORT,
      ok: false,
      mismatches: ['db.public.orders: source 42 rows, target 41'],
    }),
    dropReplication: async () => {
      throw new PlatformError('the source refuses connections');
    },
  });
  await migrate(plan(), failing.activities, async (handle) => {
    await failureOf(handle);
    expect(failing.steps()).toEqual([...REPLICATING, ...CUTOVER, ...UNDO_CUTOVER]);
    const status = await handle.query(statusQuery);
    expect(undone(status)).toEqual([
      ['scaleServicesUp', 'done'],
      ['dropReplication', 'failed'],
      ['deprovisionTarget', 'done'],
      ['purgeTargetBackups', 'done'],
    ]);
    const errors = status.errors.join('\n');
    expect(errors).toContain('the source refuses connections');
    expect(errors).toContain(`WHERE slot_name = 'pgshift_slot_x'`);
    expect(errors).toContain('DROP PUBLICATION IF EXISTS "pgshift_pub_x"');
  });
});

test('cancelled during the initial sync: the wait stops, then replication is dropped and the target removed', async () => {
  const syncStarted = deferred();
  let syncStoppedBeforeDrop = false;
  let syncCancelled = false;
  const { activities, steps } = stubs({
    awaitInitialSync: async () => {
      syncStarted.resolve();
      const ctx = Context.current();
      try {
        for (;;) {
          ctx.heartbeat(sample(1, 0));
          await ctx.sleep(100);
        }
      } catch (err) {
        syncCancelled = err instanceof CancelledFailure;
        throw err;
      }
    },
    dropReplication: async () => {
      syncStoppedBeforeDrop = syncCancelled;
      return { dropped: [], leftBehind: [] };
    },
  });
  await migrate(plan(), activities, async (handle) => {
    await syncStarted.promise;
    await handle.cancel();
    const failure = await failureOf(handle);
    expect(failure.cause).toBeInstanceOf(CancelledFailure);
    expect(syncStoppedBeforeDrop).toBe(true);
    expect(steps()).toEqual([...REPLICATING, 'dropReplication', 'deprovisionTarget', 'purgeTargetBackups']);
    const status = await handle.query(statusQuery);
    expect(stepOf(status, 'initialSync').state).toBe('cancelled');
    expect(status.phase).toBe('rolled-back');
  });
});

test('a killed worker during the initial sync costs a retry of the wait, not a new copy', async () => {
  let attempts = 0;
  const { activities, steps } = stubs({
    awaitInitialSync: async () => {
      attempts += 1;
      // What a worker dying mid-wait looks like to the server: a retryable failure of the attempt.
      if (attempts === 1) throw new Error('connection terminated unexpectedly');
      return sample(2, 0);
    },
  });
  await migrate(plan(), activities, async (handle) => {
    const summary = await handle.result();
    expect(attempts).toBe(2);
    expect(steps().filter((n) => n === 'copySchema' || n === 'startReplication')).toEqual([
      'copySchema',
      'startReplication',
    ]);
    expect(summary.phase).toBe('completed');
  });
});

test('when reverting the config fails, services stay down and the target is kept, but replication is dropped', async () => {
  const { activities, steps } = stubs({
    updateServiceConfig: async () => {
      throw new PlatformError('config:set rejected');
    },
    revertServiceConfig: async () => {
      throw new PlatformError('config:set rejected again');
    },
  });
  await migrate(plan(), activities, async (handle) => {
    await failureOf(handle);
    expect(steps()).toEqual([
      ...REPLICATING,
      ...CUTOVER,
      'updateServiceConfig',
      'revertServiceConfig',
      'dropReplication',
    ]);
    const status = await handle.query(statusQuery);
    expect(undone(status)).toEqual([
      ['revertServiceConfig', 'failed'],
      ['dropReplication', 'done'],
    ]);
    expect(status.errors.some((e) => e.includes('left at zero and the target kept'))).toBe(true);
  });
});
