// method: logical end to end, nothing stubbed: the real dev server, the real workflow and activities, real
// PostgreSQL 14 and 17 clusters of the local platform, and the demo's writer app writing to the source the
// whole time. What is checked is read from the servers themselves (catalogs, rows), not from pgshift's report.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure, WorkflowFailedError, type Client } from '@temporalio/client';
import { createLocalPlatform, type LocalPlatform } from '../src/platform/local';
import type { DatabaseConnection } from '../src/platform/platform';
import { startMigration } from '../src/client/start';
import { validatePlan } from '../src/plan/load';
import type { Plan, PlanInput } from '../src/plan/schema';
import { openClient, withClient } from '../src/pg/connection';
import {
  abortSignal,
  cutoverSignal,
  statusQuery,
  type MigrationStatus,
  type MigrationSummary,
} from '../src/workflows/definitions';
import { connectTestClient, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';
import { historyText } from './helpers/history';
import { type RunningWorker, startProjectWorker } from './helpers/worker';
import { startWorkerProcess, type WorkerProcess } from './helpers/worker-process';
import { replicationObjects, sequenceValues, tablesStillCopying } from './helpers/replication-objects';
import { snapshotDiff, snapshotServer } from './helpers/server-snapshot';
import {
  createLiveSource,
  eventIds,
  eventsPresent,
  maxEventId,
  startWriter,
  writerContainers,
} from './helpers/live-source';
import {
  activityAttempts,
  activityStarted,
  failureOf,
  statusWhen,
  stepOf,
  waitForGate,
  waitUntil,
} from './helpers/migration-waits';

const ENV = 'local';

let home: string;
let platform: LocalPlatform;
let client: Client;
let worker: RunningWorker;
let taskQueue: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-e2e-online-'));
  platform = createLocalPlatform({ home });
  client = await connectTestClient();
  taskQueue = uniqueTaskQueue('e2e-online');
  worker = await startProjectWorker({
    taskQueue,
    platforms: { local: platform },
    workDir: join(home, 'work'),
  });
});

afterAll(async () => {
  await worker?.stop();
  // destroy(), not stopAll(): clusters may live outside the home (/var/lib/pgshift/<id>) and must go too.
  await platform?.destroy();
  await rm(home, { recursive: true, force: true });
  await client?.connection.close();
});

function plan(
  source: string,
  target: string,
  app?: string,
  cutover: Partial<NonNullable<PlanInput['cutover']>> = {},
): Plan {
  return validatePlan({
    platform: 'local',
    method: 'logical',
    source: { handle: source, environment: ENV },
    target: { handle: target, version: '17' },
    services: app ? [{ app, service: 'cmd' }] : [],
    config: app ? [{ app, variable: 'DB_URL' }] : [],
    cutover: { confirm: true, timeout: '30m', onTimeout: 'abort', catchUpTimeout: '5m', ...cutover },
  });
}

/** Once the writer has committed a row past `after` on `conn`: it is up and writing there. */
function writerWrites(conn: DatabaseConnection, after: bigint, where: string): Promise<bigint> {
  return waitUntil(`the writer to write to ${where}`, async () => {
    const max = await maxEventId(conn);
    return max > after && max;
  });
}

async function expectNothingReplicating(...servers: DatabaseConnection[]): Promise<void> {
  for (const server of servers) expect(await replicationObjects(server)).toEqual([]);
}

/** Rolled back with the app where it was: running on the source, configured for it, and writing there. */
async function expectBackOnSource(app: string, containers: number, source: DatabaseConnection) {
  expect(await writerContainers(platform, app, ENV)).toBe(containers);
  expect((await platform.getConfig(app, ENV)).DB_URL).toBe(source.url);
  await writerWrites(source, await maxEventId(source), 'the source after the rollback');
}

/**
 * The target holds what the source holds (an independent snapshot of both servers), except the writer's
 * table and sequence, which it kept writing to on the target: of those, every row of the source is there
 * and the sequence is not behind.
 */
async function expectSameContent(source: DatabaseConnection, target: DatabaseConnection) {
  const writerKeys = (s: Record<string, string>) => {
    const copy = { ...s };
    delete copy[`${source.database}: rows public.events`];
    delete copy[`${source.database}: sequence public.events_id_seq`];
    return copy;
  };
  const [before, after] = await Promise.all([
    snapshotServer(source, { adminRole: platform.adminRole }),
    snapshotServer(target, { adminRole: platform.adminRole }),
  ]);
  expect(before['inventory: rows public."Audit Log"']).toBeDefined(); // the snapshot saw what matters
  expect(snapshotDiff(writerKeys(before), writerKeys(after))).toEqual([]);
  const ids = await eventIds(source);
  expect(ids.length).toBeGreaterThan(0);
  expect(await eventsPresent(target, ids)).toBe(ids.length);
  const [sourceSeqs, targetSeqs] = await Promise.all([sequenceValues(source), sequenceValues(target)]);
  expect(Object.keys(targetSeqs).sort()).toEqual(Object.keys(sourceSeqs).sort());
  for (const [name, value] of Object.entries(sourceSeqs)) {
    if (value === null) continue;
    const onTarget = targetSeqs[name];
    if (onTarget === null || onTarget < value)
      throw new Error(`sequence ${name}: target ${onTarget} < source ${value}`);
  }
}

async function rolledBack(id: string, type: string): Promise<MigrationStatus> {
  const failure = await failureOf(client.workflow.getHandle(id));
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  expect(((failure as WorkflowFailedError).cause as ApplicationFailure).type).toBe(type);
  const status = await client.workflow.getHandle(id).query(statusQuery);
  expect(status.phase).toBe('rolled-back');
  expect(status.pointOfNoReturn).toBe(false);
  return status;
}

test('14 → 17 with the writer up until the cutover: every row it wrote is on the target, nothing left replicating', async () => {
  const source = await createLiveSource(platform, {
    handle: 'on-src14',
    environment: ENV,
    bulkTables: 1,
    bulkRows: 200_000,
  });
  await startWriter(platform, 'writer', ENV, source.url, 2);
  const beforeStart = await writerWrites(source, 0n, 'the source');

  const id = uniqueWorkflowId('online-ok');
  await startMigration(client, plan('on-src14', 'on-dst17', 'writer'), { id, taskQueue });
  const handle = client.workflow.getHandle(id);

  const atGate = await waitForGate(client, id);
  expect(atGate.method).toBe('logical');
  expect(atGate.currentStep).toBe('awaitCutover');
  expect(stepOf(atGate, 'initialSync').state).toBe('done');
  expect(stepOf(atGate, 'scaleDown').state).toBe('pending');
  // The app is still up on the source, writing: it wrote during the initial copy and writes on now.
  expect(await writerContainers(platform, 'writer', ENV)).toBe(2);
  expect((await platform.getConfig('writer', ENV)).DB_URL).toBe(source.url);
  const atGateMax = await maxEventId(source);
  expect(atGateMax).toBeGreaterThan(beforeStart);
  await writerWrites(source, atGateMax, 'the source while the gate waits');

  // Per-database progress (all copied) and the lag, sampled while the gate waits.
  const sampled = await statusWhen(
    client,
    id,
    'a lag sample at the gate',
    (s) => (s.replication?.lagHistory.length ?? 0) > 0,
  );
  const latest = sampled.replication?.latest;
  const progress = Object.fromEntries((latest?.databases ?? []).map((d) => [d.name, d]));
  expect(progress.db).toMatchObject({ tablesTotal: 4, tablesDone: 4 });
  expect(progress.inventory).toMatchObject({ tablesTotal: 2, tablesDone: 2 });
  expect(latest?.lagBytes).toEqual(expect.any(Number));
  expect(sampled.replication?.lagHistory[0].bytes).toEqual(expect.any(Number));
  // What the status says replication created is on the servers (so "nothing left" below can see it).
  const objects = sampled.replication?.objects;
  const onSource = await replicationObjects(source);
  expect(objects?.slots.length).toBeGreaterThanOrEqual(2);
  for (const slot of objects?.slots ?? []) expect(onSource.join('\n')).toContain(`slot ${slot} (`);
  expect(onSource.filter((o) => o.startsWith('publication '))).toHaveLength(
    objects?.publications.length ?? -1,
  );

  await handle.signal(cutoverSignal, {});
  const summary = (await handle.result()) as MigrationSummary;
  expect(summary.phase).toBe('completed');
  expect(summary.errors).toEqual([]);
  expect(summary.steps.filter((s) => s.state === 'failed')).toEqual([]);
  expect(summary.verification?.ok).toBe(true);
  // Downtime measured, and it began only with the scale-down, after the gate was passed.
  expect(summary.downtimeMs).toEqual(expect.any(Number));
  expect(summary.downtime.startedAt).toBeGreaterThanOrEqual(stepOf(summary, 'awaitCutover').endedAt!);
  expect(summary.downtime.startedAt).toBeLessThanOrEqual(stepOf(summary, 'scaleDown').endedAt!);
  expect(summary.replication?.cleanup?.leftBehind).toEqual([]);

  const target = await platform.connect('on-dst17', ENV);
  // The app runs on the target now and writes there.
  expect(await writerContainers(platform, 'writer', ENV)).toBe(2);
  expect((await platform.getConfig('writer', ENV)).DB_URL).toBe(target.url);
  await writerWrites(target, await maxEventId(source), 'the target');
  await platform.scaleService('writer', 'cmd', 0, ENV);

  await expectSameContent(source, target);
  await expectNothingReplicating(source, target);

  const history = historyText(await handle.fetchHistory());
  expect(history).toContain('"handle":"on-dst17"'); // payloads were decoded: the search below sees them
  for (const secret of [
    source.password,
    target.password,
    'reporting-demo-password',
    'app-rw-demo-password',
  ]) {
    expect(history).not.toContain(secret);
  }
  expect(history).not.toMatch(/postgres(ql)?:\/\/[^\s"@]*:[^\s"@]+@/);
  expect(history).not.toMatch(/\bpassword\s*=\s*'?[^\s'"]/i);
});

test('preflight refuses a table without a primary key and large objects, in one error, creating nothing', async () => {
  await platform.createDatabase({
    handle: 'on-refuse14',
    environment: ENV,
    version: '14',
    diskSizeGb: 1,
    containerSizeMb: 512,
    createdBy: 'test',
  });
  const source = await platform.connect('on-refuse14', ENV);
  await withClient(source, source.database, (c) =>
    c.query(`
      CREATE TABLE keyed (id int PRIMARY KEY);
      CREATE TABLE audit_trail (at timestamptz NOT NULL DEFAULT now(), note text);
      INSERT INTO audit_trail (note) VALUES ('no key here');
      SELECT lo_from_bytea(0, 'a large object'::bytea);
    `),
  );

  const id = uniqueWorkflowId('online-refused');
  await startMigration(client, plan('on-refuse14', 'on-refuse17'), { id, taskQueue });
  const failure = await failureOf(client.workflow.getHandle(id));
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  const status = await client.workflow.getHandle(id).query(statusQuery);
  const preflight = stepOf(status, 'preflight');
  expect(preflight.state).toBe('failed');
  expect(preflight.error).toContain('audit_trail');
  expect(preflight.error).not.toContain('keyed');
  expect(preflight.error).toMatch(/large object/i);
  expect(preflight.error).toMatch(/method:? ?dump/);
  expect(stepOf(status, 'createTarget').state).toBe('pending');

  expect(await platform.getDatabase('on-refuse17', ENV)).toBeUndefined();
  await expectNothingReplicating(source);
  await platform.deprovisionDatabase('on-refuse14', ENV);
});

test('an abort while replicating rolls back: app still on the source, target gone, nothing left replicating', async () => {
  const source = await createLiveSource(platform, { handle: 'on-abort14', environment: ENV });
  await startWriter(platform, 'writer4', ENV, source.url, 1);
  await writerWrites(source, 0n, 'the source');

  const id = uniqueWorkflowId('online-abort');
  await startMigration(client, plan('on-abort14', 'on-abort17', 'writer4'), { id, taskQueue });
  const atGate = await waitForGate(client, id);
  expect(atGate.replication?.objects?.slots.length).toBeGreaterThan(0);
  expect(await replicationObjects(source)).not.toEqual([]);

  await client.workflow.getHandle(id).signal(abortSignal, { reason: 'test: abort while replicating' });
  const status = await rolledBack(id, 'MigrationAborted');
  expect(status.errors.join('\n')).toContain('test: abort while replicating');
  expect(stepOf(status, 'scaleDown').state).toBe('pending');
  expect(status.compensation.map((c) => [c.name, c.state])).toEqual(
    expect.arrayContaining([
      ['dropReplication', 'done'],
      ['deprovisionTarget', 'done'],
    ]),
  );

  await expectBackOnSource('writer4', 1, source);
  expect(await platform.getDatabase('on-abort17', ENV)).toBeUndefined();
  await expectNothingReplicating(source);
  await platform.deprovisionApp('writer4', ENV);
  await platform.deprovisionDatabase('on-abort14', ENV);
});

test('a column added on the source while replicating is refused at the cutover, named, and rolled back', async () => {
  const source = await createLiveSource(platform, { handle: 'on-ddl14', environment: ENV });
  await startWriter(platform, 'writer5', ENV, source.url, 1);
  await writerWrites(source, 0n, 'the source');

  const id = uniqueWorkflowId('online-ddl');
  await startMigration(client, plan('on-ddl14', 'on-ddl17', 'writer5'), { id, taskQueue });
  await waitForGate(client, id);
  // DDL is not replicated: the target would lack the column the app may start writing after the cutover.
  await withClient(source, source.database, (c) =>
    c.query('ALTER TABLE customers ADD COLUMN loyalty_tier text'),
  );

  await client.workflow.getHandle(id).signal(cutoverSignal, {});
  const status = await rolledBack(id, 'MigrationRolledBack');
  const check = stepOf(status, 'checkSchema');
  expect(check.state).toBe('failed');
  expect(check.error).toMatch(/SchemaChangedError/);
  expect(check.error).toContain('customers');
  expect(check.error).toContain('loyalty_tier');
  // Refused inside the downtime, before the point of no return: the app was stopped and is back on the source.
  expect(stepOf(status, 'scaleDown').state).toBe('done');
  expect(stepOf(status, 'updateConfig').state).toBe('pending');
  expect(status.compensation.map((c) => [c.name, c.state])).toEqual(
    expect.arrayContaining([
      ['scaleServicesUp', 'done'],
      ['dropReplication', 'done'],
      ['deprovisionTarget', 'done'],
    ]),
  );

  await expectBackOnSource('writer5', 1, source);
  expect(await platform.getDatabase('on-ddl17', ENV)).toBeUndefined();
  await expectNothingReplicating(source);
  await platform.deprovisionApp('writer5', ENV);
  await platform.deprovisionDatabase('on-ddl14', ENV);
});

test('kill -9 of the worker during the initial sync and during the catch-up: completes, content identical', async () => {
  // Its own task queue, served only by worker processes this test kills and replaces.
  const queue = uniqueTaskQueue('e2e-online-kill');
  const processOptions = { taskQueue: queue, home, workDir: join(home, 'work-kill') };
  const source = await createLiveSource(platform, {
    handle: 'on-kill14',
    environment: ENV,
    bulkTables: 3,
    bulkRows: 250_000,
  });
  await startWriter(platform, 'writer3', ENV, source.url, 1);
  await writerWrites(source, 0n, 'the source');

  let w: WorkerProcess = await startWorkerProcess(processOptions);
  let blocker: Awaited<ReturnType<typeof openClient>> | undefined;
  try {
    const id = uniqueWorkflowId('online-kill');
    await startMigration(client, plan('on-kill14', 'on-kill17', 'writer3', { catchUpTimeout: '15m' }), {
      id,
      taskQueue: queue,
    });
    const handle = client.workflow.getHandle(id);

    await statusWhen(client, id, 'the initial sync', (s) => stepOf(s, 'initialSync').state === 'running');
    await activityStarted(handle, 'awaitInitialSync');
    const target = await platform.connect('on-kill17', ENV);
    // The copy runs in the target server; killed here, the worker must not cost a new copy, only a retry.
    const copying = await tablesStillCopying(target, [target.database, 'inventory']);
    await w.kill();
    expect(copying).toBeGreaterThan(0); // else the kill came too late to test anything: a bigger source
    w = await startWorkerProcess(processOptions);

    await waitForGate(client, id);
    // The catch-up cannot finish while the target's events table is locked against the apply worker: the
    // writer's rows up to the scale-down wait on the source until the kill has happened.
    blocker = await openClient(target, target.database);
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE events IN SHARE MODE');
    await writerWrites(source, await maxEventId(source), 'the source with the apply held back');
    await handle.signal(cutoverSignal, {});
    await statusWhen(client, id, 'the catch-up', (s) => stepOf(s, 'catchUp').state === 'running');
    await activityStarted(handle, 'awaitCatchUp');
    await w.kill();
    w = await startWorkerProcess(processOptions);
    await blocker.query('COMMIT');
    await blocker.end();
    blocker = undefined;

    const summary = (await handle.result()) as MigrationSummary;
    expect(summary.phase).toBe('completed');
    expect(summary.errors).toEqual([]);
    // Each killed activity was retried (not restarted from scratch: one replication, one initial sync).
    const attempts = await activityAttempts(handle);
    expect(Math.max(...(attempts.awaitInitialSync ?? [0]))).toBeGreaterThanOrEqual(2);
    expect(Math.max(...(attempts.awaitCatchUp ?? [0]))).toBeGreaterThanOrEqual(2);
    expect(attempts.startReplication).toHaveLength(1);

    expect((await platform.getConfig('writer3', ENV)).DB_URL).toBe(target.url);
    await platform.scaleService('writer3', 'cmd', 0, ENV);
    await expectSameContent(source, target);
    await expectNothingReplicating(source, target);
  } catch (err) {
    throw new Error(`${String(err)}\nworker process stderr (last):\n${w.stderr().slice(-4000)}`, {
      cause: err,
    });
  } finally {
    await blocker?.end().catch(() => undefined);
    await w.stop();
  }
}, 1_500_000);
