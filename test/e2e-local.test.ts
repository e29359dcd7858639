// End to end, nothing stubbed: the real dev server, the real workflow and activities, real PostgreSQL 14
// and 17 clusters, the real pg_dumpall/psql, and a real app process on the local platform.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { createLocalPlatform, type LocalPlatform } from '../src/platform/local';
import type { DatabaseConnection } from '../src/platform/platform';
import { createActivities } from '../src/activities';
import { startMigration } from '../src/client/start';
import { validatePlan } from '../src/plan/load';
import type { Plan, PlanInput } from '../src/plan/schema';
import { loadSampleData } from '../src/demo/sample-data';
import { withClient } from '../src/pg/connection';
import {
  cutoverSignal,
  statusQuery,
  type MigrationStatus,
  type MigrationSummary,
} from '../src/workflows/definitions';
import { connectTestClient, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';
import { historyText } from './helpers/history';
import { type RunningWorker, startProjectWorker } from './helpers/worker';

const WRITER = join(__dirname, '..', 'src', 'demo', 'writer.js');
const ENV = 'local';

let home: string;
let platform: LocalPlatform;
let client: Client;
let worker: RunningWorker;
let taskQueue: string;

async function startWorker(): Promise<void> {
  worker = await startProjectWorker({
    taskQueue,
    platforms: { local: platform },
    workDir: join(home, 'work'),
  });
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-e2e-'));
  platform = createLocalPlatform({ home });
  client = await connectTestClient();
  taskQueue = uniqueTaskQueue('e2e');
  await startWorker();
});

afterAll(async () => {
  await worker?.stop();
  // destroy(), not stopAll(): clusters may live outside the home (/var/lib/pgshift/<id>) and must go too.
  await platform?.destroy();
  await rm(home, { recursive: true, force: true });
});

function plan(input: Partial<PlanInput> & Pick<PlanInput, 'source' | 'target'>): Plan {
  return validatePlan({
    platform: 'local',
    cutover: { confirm: true, timeout: '10m', onTimeout: 'abort' },
    ...input,
  });
}

async function createSource(handle: string): Promise<DatabaseConnection> {
  await platform.createDatabase({
    handle,
    environment: ENV,
    version: '14',
    diskSizeGb: 1,
    containerSizeMb: 1024,
    createdBy: 'test',
  });
  return platform.connect(handle, ENV);
}

/** Every table of every database, as md5 of its rows in a stable order: a content-level fingerprint. */
async function fingerprint(conn: DatabaseConnection, skip: (table: string) => boolean = () => false) {
  const dbs = await withClient(conn, conn.database, async (c) =>
    (await c.query(`SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1`)).rows.map(
      (r) => r.datname,
    ),
  );
  const out: Record<string, string> = {};
  for (const db of dbs) {
    await withClient(conn, db, async (c) => {
      const tables = await c.query(
        `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
      );
      for (const { t } of tables.rows) {
        if (skip(`${db}.${t}`)) continue;
        const res = await c.query(
          `SELECT count(*) AS n, md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM ${t} x`,
        );
        out[`${db}.${t}`] = `${res.rows[0].n}:${res.rows[0].h}`;
      }
      const seqs = await c.query(
        `SELECT format('%I.%I', schemaname, sequencename) AS s, last_value FROM pg_sequences`,
      );
      for (const { s, last_value } of seqs.rows) {
        if (!skip(`${db}.${s}`)) out[`${db}.${s}`] = `seq:${last_value}`;
      }
    });
  }
  return out;
}

/** The history as text with every payload decoded (they travel base64-encoded), so a secret would show. */
async function waitForGate(id: string): Promise<MigrationStatus> {
  const handle = client.workflow.getHandle(id);
  // Generous: the copy runs real clusters, and a loaded machine takes minutes over it.
  for (const deadline = Date.now() + 12 * 60_000; Date.now() < deadline;) {
    const status = await handle.query(statusQuery);
    if (status.cutover.waiting) return status;
    const { status: exec } = await handle.describe();
    if (exec.name !== 'RUNNING') throw new Error(`migration ended before the cutover gate: ${exec.name}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('the migration did not reach the cutover gate within 12 minutes');
}

test('migrates 14 → 17 with a live writer, across a worker restart: content identical, app back on the target', async () => {
  const source = await createSource('e2e-src14');
  await loadSampleData(source);
  await platform.createApp('writer', { cmd: `exec node ${JSON.stringify(WRITER)}` }, ENV);
  await platform.setConfig('writer', { DB_URL: source.url }, ENV);
  await platform.scaleService('writer', 'cmd', 2, ENV);

  const p = plan({
    source: { handle: 'e2e-src14', environment: ENV },
    target: { handle: 'e2e-dst17', version: '17' },
    services: [{ app: 'writer', service: 'cmd' }],
    config: [{ app: 'writer', variable: 'DB_URL' }],
  });
  const id = uniqueWorkflowId('e2e-ok');
  await startMigration(client, p, { id, taskQueue });

  const atGate = await waitForGate(id);
  expect(atGate.verification?.ok).toBe(true);
  expect(atGate.currentStep).toBe('awaitCutover');
  // The writer is stopped while we wait: the source is frozen, so its fingerprint is the reference.
  const expected = await fingerprint(source);
  expect(Object.keys(expected)).toEqual(
    expect.arrayContaining(['db.public.orders', 'inventory.public."Audit Log"']),
  );

  // The worker goes away while the migration waits for a person; a new one carries on from the history.
  await worker.stop();
  await startWorker();

  await client.workflow.getHandle(id).signal(cutoverSignal, {});
  const summary = (await client.workflow.getHandle(id).result()) as MigrationSummary;

  expect(summary.phase).toBe('completed');
  expect(summary.steps.filter((s) => s.state === 'failed')).toEqual([]);
  expect(summary.rowsVerified).toBeGreaterThan(12_000);
  expect(summary.downtimeMs).toBeGreaterThan(0);

  const target = await platform.connect('e2e-dst17', ENV);
  const version = await withClient(
    target,
    target.database,
    async (c) => (await c.query('SHOW server_version_num')).rows[0],
  );
  expect(Number(version.server_version_num)).toBeGreaterThanOrEqual(170000);
  // Content-level: every table and sequence of every database, except what the writer keeps adding to.
  const writerTables = (t: string) => t === 'db.public.events' || t === 'db.public.events_id_seq';
  expect(await fingerprint(target, writerTables)).toEqual(await fingerprint(source, writerTables));
  // No row the writer committed before the scale-down is missing on the target.
  const sourceEvents = await withClient(
    source,
    source.database,
    async (c) => (await c.query('SELECT id FROM events')).rows,
  );
  const ids = sourceEvents.map((r) => r.id);
  const present = await withClient(target, target.database, async (c) =>
    Number((await c.query('SELECT count(*) AS n FROM events WHERE id = ANY($1::bigint[])', [ids])).rows[0].n),
  );
  expect(ids.length).toBeGreaterThan(0);
  expect(present).toBe(ids.length);
  // A role's password travelled with the dump; the target's admin password did not change.
  await withClient({ ...target, user: 'reporting', password: 'reporting-demo-password' }, 'db', async (c) =>
    expect((await c.query('SELECT count(*) FROM customers')).rows[0].count).toBe('2000'),
  );

  // The app is back at its recorded count, on the target, and writing there.
  const services = await platform.listServices(ENV);
  expect(services.find((s) => s.app === 'writer' && s.service === 'cmd')?.containerCount).toBe(2);
  expect((await platform.getConfig('writer', ENV)).DB_URL).toBe(target.url);
  const maxId = ids.reduce((m, id) => Math.max(m, Number(id)), 0);
  let newRows = 0;
  // Until the restarted writers connect and write; bounded by time, not by a count of polls.
  for (const deadline = Date.now() + 180_000; newRows === 0 && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 500));
    newRows = await withClient(target, target.database, async (c) =>
      Number((await c.query('SELECT count(*) AS n FROM events WHERE id > $1', [maxId])).rows[0].n),
    );
  }
  expect(newRows).toBeGreaterThan(0);
  await platform.scaleService('writer', 'cmd', 0, ENV);

  // No secret in the history: not the databases' passwords, not a URL, not a role's password.
  const history = historyText(await client.workflow.getHandle(id).fetchHistory());
  expect(history).toContain('"handle":"e2e-dst17"'); // payloads were decoded: the search below sees them
  for (const secret of [
    source.password,
    target.password,
    'reporting-demo-password',
    'app-rw-demo-password',
  ]) {
    expect(history).not.toContain(secret);
  }
  expect(history).not.toMatch(/postgres(ql)?:\/\/[^\s"@]*:[^\s"@]+@/);
});

test('an unexpected restore error rolls back: target gone, app back on the source, source untouched', async () => {
  const source = await createSource('e2e-bad14');
  await withClient(source, source.database, (c) =>
    c.query(`
      -- Stands in for behaviour that changed between versions: the target rejects rows the source accepted.
      -- The schema alone restores fine, so the schema test passes and the failure comes in the real restore.
      CREATE FUNCTION accepts_qty(q int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
      BEGIN
        RETURN current_setting('server_version_num')::int < 170000 OR q <= 100;
      END $$;
      CREATE TABLE stock (sku text PRIMARY KEY, qty int CHECK (accepts_qty(qty)));
      INSERT INTO stock VALUES ('small', 5), ('large', 500);
    `),
  );
  await platform.createApp('idler', { web: 'while true; do sleep 1; done' }, ENV);
  await platform.setConfig('idler', { DATABASE_URL: source.url }, ENV);
  await platform.scaleService('idler', 'web', 1, ENV);
  const before = await fingerprint(source);

  const p = plan({
    source: { handle: 'e2e-bad14', environment: ENV },
    target: { handle: 'e2e-bad17', version: '17' },
    services: [{ app: 'idler', service: 'web' }],
    config: [{ app: 'idler', variable: 'DATABASE_URL' }],
  });
  const id = uniqueWorkflowId('e2e-rollback');
  await startMigration(client, p, { id, taskQueue });
  const failure = await client.workflow
    .getHandle(id)
    .result()
    .then(
      () => undefined,
      (err: unknown) => err,
    );
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  const status = await client.workflow.getHandle(id).query(statusQuery);
  expect(status.phase).toBe('rolled-back');
  expect(status.steps.find((s) => s.name === 'restore')?.state).toBe('failed');
  expect(status.steps.find((s) => s.name === 'restore')?.error).toMatch(/violates check constraint/);
  expect(status.steps.find((s) => s.name === 'testSchema')?.state).toBe('done');

  expect(await platform.getDatabase('e2e-bad17', ENV)).toBeUndefined();
  const services = await platform.listServices(ENV);
  expect(services.find((s) => s.app === 'idler' && s.service === 'web')?.containerCount).toBe(1);
  expect((await platform.getConfig('idler', ENV)).DATABASE_URL).toBe(source.url);
  expect(await fingerprint(source)).toEqual(before);
  await platform.scaleService('idler', 'web', 0, ENV);
});

test('preflight warns, before any downtime, when a config variable does not hold the source URL', async () => {
  await createSource('e2e-warn14');
  await platform.createApp('pooled', { web: 'while true; do sleep 1; done' }, ENV);
  await platform.setConfig(
    'pooled',
    { DB_URL: 'postgresql://app:pooler-secret@pooler.internal:6432/db' },
    ENV,
  );
  const activities = createActivities({ platformFor: () => platform, workDir: join(home, 'work') });
  const result = await activities.preflight({
    migrationId: 'e2e-warn',
    plan: plan({
      source: { handle: 'e2e-warn14', environment: ENV },
      target: { handle: 'e2e-warn17', version: '17' },
      services: [{ app: 'pooled', service: 'web' }],
      config: [
        { app: 'pooled', variable: 'DB_URL' },
        { app: 'pooled', variable: 'REPLICA_URL' },
      ],
    }),
  });
  expect(result.sourceVersion).toBe(14);
  expect(result.warnings).toEqual(
    expect.arrayContaining([
      expect.stringContaining("pooled: DB_URL does not hold the source's URL"),
      expect.stringContaining('pooled: REPLICA_URL is not set'),
    ]),
  );
  expect(result.warnings.join('\n')).not.toMatch(/pooler-secret|pooler\.internal/);
  // Nothing was changed: preflight only reads.
  expect(await platform.getDatabase('e2e-warn17', ENV)).toBeUndefined();
});
