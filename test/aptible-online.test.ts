// method: logical on the Aptible platform, end to end: the real dev server, workflow, activities and worker
// drive the `aptible` CLI on PATH, and the fake (test/fake-aptible) answers `db:replicate --logical` with a
// real PostgreSQL 17 replica of a real 14 source kept current by native logical replication under
// Aptible's names. What is checked is read from the clusters behind the fake, not from pgshift's report.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { createAptiblePlatform, type AptiblePlatform } from '../src/platform/aptible';
import { startMigration } from '../src/client/start';
import { validatePlan } from '../src/plan/load';
import type { Plan, PlanInput } from '../src/plan/schema';
import { loadSampleData } from '../src/demo/sample-data';
import { withClient } from '../src/pg/connection';
import type { DatabaseConnection } from '../src/platform/platform';
import { abortSignal, cutoverSignal, statusQuery, type MigrationSummary } from '../src/workflows/definitions';
import { createFakeAptible, type FakeAptible } from './fake-aptible/fixture';
import { connectTestClient, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';
import { type RunningWorker, startProjectWorker } from './helpers/worker';
import { replicationObjects } from './helpers/replication-objects';
import { dropReplication } from '../src/activities/logical-cleanup';
import { preflight } from '../src/activities/preflight';
import { failureOf, stepOf, waitForGate } from './helpers/migration-waits';

const ENV = 'test-environment';
const e = `--environment ${ENV}`;

let fake: FakeAptible;
let platform: AptiblePlatform;
let client: Client;
let worker: RunningWorker;
let workDir: string;
let taskQueue: string;

beforeAll(async () => {
  fake = await createFakeAptible();
  await fake.addEnvironment(ENV);
  platform = createAptiblePlatform({ env: { ...process.env, ...fake.env } });
  workDir = await mkdtemp(join(tmpdir(), 'pgshift-aptible-online-'));
  client = await connectTestClient();
  taskQueue = uniqueTaskQueue('aptible-online');
  worker = await startProjectWorker({ taskQueue, platforms: { aptible: platform }, workDir });
});

afterAll(async () => {
  await worker?.stop();
  await client?.connection.close();
  await fake?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Straight to the cluster behind a fake database (not through a tunnel). */
const direct = (handle: string): Promise<DatabaseConnection> => fake.local.connect(handle, ENV);

async function sql<T extends Record<string, unknown>>(handle: string, database: string, text: string) {
  return withClient(await direct(handle), database, async (c) => (await c.query(text)).rows as T[]);
}

async function createSource(handle: string): Promise<void> {
  const res = await fake.run(
    ['db:create', handle, '--type', 'postgresql', '--version', '14', '--environment', ENV],
    { format: 'json' },
  );
  expect(res.exitCode).toBe(0);
  await loadSampleData(await direct(handle));
}

function plan(source: string, target: string, app: string, extra: Partial<PlanInput> = {}): Plan {
  return validatePlan({
    platform: 'aptible',
    method: 'logical',
    source: { handle: source, environment: ENV },
    target: { handle: target, version: '17', environment: ENV, diskSize: 100 },
    services: [{ app, service: 'cmd' }],
    config: [{ app, variable: 'DB_URL' }],
    cutover: { confirm: true, timeout: '30m', onTimeout: 'abort', catchUpTimeout: '5m' },
    cleanup: { vacuumAnalyze: true, deprovisionSource: { mode: 'never' } },
    ...extra,
  });
}

const notes = async (handle: string) =>
  (await sql<{ note: string }>(handle, 'db', 'SELECT note FROM events ORDER BY id')).map((r) => r.note);

test('14 → 17 by db:replicate --logical: rows written before and during replication arrive, nothing left replicating', async () => {
  await createSource('on-src');
  await sql('on-src', 'db', "INSERT INTO events (note) SELECT 'before ' || g FROM generate_series(1, 500) g");
  const sourceUrl = await platform.databaseUrl('on-src', ENV);
  await fake.addApp(ENV, 'shop', { cmd: { containerCount: 2 } }, { DB_URL: sourceUrl });

  const since = fake.commands().length;
  const id = uniqueWorkflowId('aptible-online');
  await startMigration(client, plan('on-src', 'on-dst', 'shop'), { id, taskQueue });
  const handle = client.workflow.getHandle(id);

  const atGate = await waitForGate(client, id);
  expect(stepOf(atGate, 'initialSync').state).toBe('done');
  expect(stepOf(atGate, 'copySchema').detail).toMatch(/by the platform/);
  // The services still run on the source while the replica follows it.
  expect(fake.app(ENV, 'shop').services.cmd.containerCount).toBe(2);
  expect(atGate.replication?.objects?.subscriptions).toContain('db/aptible_subscription');
  // Written while replicating, then a change to a row the initial copy carried.
  await sql('on-src', 'db', "INSERT INTO events (note) SELECT 'during ' || g FROM generate_series(1, 300) g");
  await sql(
    'on-src',
    'inventory',
    'UPDATE items SET qty = qty + 1000 WHERE sku = (SELECT min(sku) FROM items)',
  );

  await handle.signal(cutoverSignal, {});
  const summary = (await handle.result()) as MigrationSummary;
  expect(summary.phase).toBe('completed');
  expect(summary.errors).toEqual([]);

  const commands = fake.commands().slice(since);
  // The target is Aptible's replica, made by the guide's command; pgshift creates no database of its own.
  expect(commands).toContain(
    `db:replicate on-src on-dst --logical --version 17 ${e} --container-size 4096 --disk-size 100`,
  );
  expect(commands.filter((c) => c.startsWith('db:create on-dst '))).toEqual([]);
  expect(commands.filter((c) => c.startsWith('db:deprovision'))).toEqual(
    [`db:deprovision on-dst-schema-test ${e}`], // the schema test's scratch database only
  );

  const sourceNotes = await notes('on-src');
  expect(sourceNotes.filter((n) => n.startsWith('during '))).toHaveLength(300);
  expect(await notes('on-dst')).toEqual(sourceNotes);
  const item = 'SELECT qty FROM items WHERE sku = (SELECT min(sku) FROM items)';
  expect(await sql('on-dst', 'inventory', item)).toEqual(await sql('on-src', 'inventory', item));
  // Sequences are not replicated: the target's was set from the source.
  const seq = 'SELECT last_value FROM events_id_seq';
  expect(await sql('on-dst', 'db', seq)).toEqual(await sql('on-src', 'db', seq));

  // Cut over: the app points at the replica and runs again.
  expect(fake.app(ENV, 'shop').config.DB_URL).toBe(await platform.databaseUrl('on-dst', ENV));
  expect(fake.app(ENV, 'shop').services.cmd.containerCount).toBe(2);
  // Nothing left replicating on either side: no slot, publication, subscription or origin.
  expect(await replicationObjects(await direct('on-src'))).toEqual([]);
  expect(await replicationObjects(await direct('on-dst'))).toEqual([]);
  expect(stepOf(summary, 'dropReplication').detail).toMatch(/subscription db\/aptible_subscription/);
});

test('an abort while replicating: replication is dropped (replica first, then source), then the replica is deprovisioned', async () => {
  await createSource('ab-src');
  const sourceUrl = await platform.databaseUrl('ab-src', ENV);
  await fake.addApp(ENV, 'ab-app', { cmd: { containerCount: 1 } }, { DB_URL: sourceUrl });
  const since = fake.commands().length;
  const id = uniqueWorkflowId('aptible-online-abort');
  await startMigration(client, plan('ab-src', 'ab-dst', 'ab-app'), { id, taskQueue });
  await waitForGate(client, id);
  // Replicating: the source holds db:replicate's slots and publications.
  expect((await replicationObjects(await direct('ab-src'))).length).toBeGreaterThan(0);

  const handle = client.workflow.getHandle(id);
  await handle.signal(abortSignal, { reason: 'test: abort on aptible' });
  const failure = await failureOf(handle);
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  const status = await handle.query(statusQuery);
  expect(status.phase).toBe('rolled-back');
  expect(status.compensation.map((c) => [c.name, c.state])).toEqual(
    expect.arrayContaining([
      ['dropReplication', 'done'],
      ['deprovisionTarget', 'done'],
    ]),
  );
  const order = status.compensation.map((c) => c.name);
  expect(order.indexOf('dropReplication')).toBeLessThan(order.indexOf('deprovisionTarget'));
  expect(fake.databases().some((d) => d.handle === 'ab-dst')).toBe(false);
  expect(fake.commands().slice(since)).toContain(`db:deprovision ab-dst ${e}`);
  expect(await replicationObjects(await direct('ab-src'))).toEqual([]);
  // Unlinked by its deprovision, the source can go (here it stays: the app is back on it).
  expect(fake.app(ENV, 'ab-app').config.DB_URL).toBe(sourceUrl);
  expect(fake.app(ENV, 'ab-app').services.cmd.containerCount).toBe(1);
});

test('preflight refuses what db:replicate --logical cannot do, all at once, and creates nothing', async () => {
  await createSource('ref-src');
  await fake.addApp(ENV, 'ref-app', { cmd: { containerCount: 1 } }, {});
  const before = fake.databases().map((d) => d.handle);
  const since = fake.commands().length;
  const id = uniqueWorkflowId('aptible-online-refused');
  await startMigration(
    client,
    plan('ref-src', 'ref-dst', 'ref-app', {
      accept: { skipDatabases: [], replicaIdentityFull: ['db.public.customers'] },
      cleanup: { vacuumAnalyze: true, deprovisionSource: { mode: 'delay', delay: '1h' } },
    }),
    { id, taskQueue },
  );
  const failure = await failureOf(client.workflow.getHandle(id));
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  const status = await client.workflow.getHandle(id).query(statusQuery);
  const error = stepOf(status, 'preflight').error ?? '';
  expect(error).toMatch(/accept\.replicaIdentityFull lists db\.public\.customers.*pglogical/);
  expect(error).toMatch(/cleanup\.deprovisionSource\.mode is delay/);
  expect(fake.databases().map((d) => d.handle)).toEqual(before);
  const made = fake
    .commands()
    .slice(since)
    .filter((c) => /^db:(create|replicate)/.test(c));
  expect(made).toEqual([]);
});

test('clean-up after a db:replicate that failed half-way names the provider it left on the source', async () => {
  await createSource('half-src');
  // pglogical refuses a table without a primary key (preflight refuses it first; here db:replicate is run alone).
  await sql('half-src', 'db', 'CREATE TABLE log (at timestamptz, line text)');
  const startedAt = Date.now();
  await expect(
    platform.replicateLogical({
      sourceHandle: 'half-src',
      handle: 'half-dst',
      environment: ENV,
      version: '17',
      diskSizeGb: 10,
      containerSizeMb: 1024,
      createdBy: 'half',
    }),
  ).rejects.toThrow(/db:replicate --logical. failed/);
  const replicaId = fake.databases().find((d) => d.handle === 'half-dst')?.id;
  expect(replicaId).toBeDefined();
  const input = {
    migrationId: 'half',
    startedAt,
    plan: plan('half-src', 'half-dst', 'none', { services: [], config: [] }),
  };
  const deps = { platformFor: () => platform, workDir };
  const cleaned = await dropReplication(deps, input);
  // Nothing of it on the replica to read; on the source, the publication of the database where it failed.
  expect(cleaned.dropped).toEqual([]);
  expect(cleaned.leftBehind).toEqual([
    expect.stringMatching(
      new RegExp(`^on the source, database "db": DROP PUBLICATION "aptible_publisher_${replicaId}";`),
    ),
  ]);
  expect(await replicationObjects(await direct('half-src'))).toEqual([
    `publication db/aptible_publisher_${replicaId}`,
  ]);
  // A new migration of that source is refused until the leftover is gone, with the table without a key.
  await fake.run(['db:deprovision', 'half-dst', '--environment', ENV]);
  const again = { ...input, plan: plan('half-src', 'half-dst2', 'none', { services: [], config: [] }) };
  const refused = preflight(deps, again);
  await expect(refused).rejects.toThrow(/"db" of the source already has publication aptible_publisher_\d+/);
  await expect(refused).rejects.toThrow(/"log" has no primary key: .*, or use method: dump/);
  // On Aptible, REPLICA IDENTITY FULL is no way out (pglogical refuses it): not offered.
  await expect(refused).rejects.not.toThrow(/replicaIdentityFull/);
});
