// The rehearsal end to end, nothing stubbed: the real dev server, workflow and activities, a real backup of
// a real PostgreSQL 14 cluster restored into a copy, real dumps, a real 17 target, real verification — and
// afterwards nothing left: no database, no dump, no backup of what the rehearsal made; production untouched.
import { readdir } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { createLocalPlatform, type LocalPlatform } from '../src/platform/local';
import type { DatabaseConnection } from '../src/platform/platform';
import { startRehearsal } from '../src/client/rehearse';
import { validatePlan } from '../src/plan/load';
import type { Plan } from '../src/plan/schema';
import { loadSampleData } from '../src/demo/sample-data';
import { withClient } from '../src/pg/connection';
import type { RehearsalReport } from '../src/workflows/rehearsal-definitions';
import { connectTestClient, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';
import { historyText } from './helpers/history';
import { type RunningWorker, startProjectWorker } from './helpers/worker';

const ENV = 'local';

let home: string;
let platform: LocalPlatform;
let client: Client;
let worker: RunningWorker;
let taskQueue: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-e2e-rehearsal-'));
  platform = createLocalPlatform({ home });
  client = await connectTestClient();
  taskQueue = uniqueTaskQueue('e2e-rehearsal');
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
});

function plan(source: string, target: string, app: string): Plan {
  return validatePlan({
    platform: 'local',
    source: { handle: source, environment: ENV },
    target: { handle: target, version: '17' },
    services: [{ app, service: 'web' }],
    config: [{ app, variable: 'DATABASE_URL' }],
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

/** A production app using the source: the rehearsal must neither scale it nor repoint it. */
async function createApp(app: string, source: DatabaseConnection): Promise<void> {
  await platform.createApp(app, { web: 'while true; do sleep 1; done' }, ENV);
  await platform.setConfig(app, { DATABASE_URL: source.url }, ENV);
  await platform.scaleService(app, 'web', 1, ENV);
}

/** Every table of every database as row count and md5 of its rows, and every sequence's value. */
async function fingerprint(conn: DatabaseConnection): Promise<Record<string, string>> {
  const dbs = await withClient(conn, conn.database, async (c) =>
    (await c.query(`SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1`)).rows.map(
      (r) => r.datname as string,
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
        const res = await c.query(
          `SELECT count(*) AS n, md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM ${t} x`,
        );
        out[`${db}.${t}`] = `${res.rows[0].n}:${res.rows[0].h}`;
      }
      const seqs = await c.query(
        `SELECT format('%I.%I', schemaname, sequencename) AS s, last_value FROM pg_sequences`,
      );
      for (const { s, last_value } of seqs.rows) out[`${db}.${s}`] = `seq:${last_value}`;
    });
  }
  return out;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Nothing the rehearsal made remains: databases, their final backups, dumps; production as it was. */
async function expectNothingLeft(p: Plan, app: string, source: DatabaseConnection, before: object) {
  const handles = (await platform.listDatabases()).map((d) => d.handle);
  expect(handles).toContain(p.source.handle);
  expect(handles).not.toContain(`${p.source.handle}-rehearsal`);
  expect(handles).not.toContain(`${p.target.handle}-rehearsal`);
  expect(handles).not.toContain(p.target.handle);
  const orphaned = (await platform.listOrphanedBackups(ENV)).map((b) => b.databaseHandle);
  expect(orphaned.filter((h) => h.endsWith('-rehearsal'))).toEqual([]);
  expect(await filesUnder(join(home, 'work'))).toEqual([]);

  expect(await fingerprint(source)).toEqual(before);
  // The source's own backup is still there: a rehearsal only reads it.
  expect(await platform.listBackups(p.source.handle, ENV)).toHaveLength(1);
  const service = (await platform.listServices(ENV)).find((s) => s.app === app && s.service === 'web');
  expect(service?.containerCount).toBe(1);
  expect((await platform.getConfig(app, ENV)).DATABASE_URL).toBe(source.url);
}

test('rehearses 14 → 17 on a copy of the latest backup: timings, an estimate, and nothing left behind', async () => {
  const source = await createSource('rh-src14');
  await loadSampleData(source);
  await createApp('rh-app', source);
  const backup = await platform.createBackup('rh-src14', ENV);
  const before = await fingerprint(source);

  const p = plan('rh-src14', 'rh-dst17', 'rh-app');
  const id = uniqueWorkflowId('e2e-rehearsal');
  await startRehearsal(client, p, { id, taskQueue });
  const report = (await client.workflow.getHandle(id).result()) as RehearsalReport;

  expect(report.problems).toEqual([]);
  expect(report.ok).toBe(true);
  expect(report.backup.id).toBe(backup.id);
  expect(report.copy).toBe('local/rh-src14-rehearsal');
  expect(report.target).toBe('local/rh-dst17-rehearsal');
  for (const phase of report.phases) {
    expect(phase.state).toBe('done');
    if (phase.name !== 'findBackup') expect(phase.ms).toBeGreaterThan(0);
  }
  expect(report.dumps.warmUpMs).toBeGreaterThan(0);
  expect(report.dumps.timedMs).toBeGreaterThan(0);
  expect(report.dumps.bytes).toBeGreaterThan(100_000);
  expect(report.restore.unexpectedErrors).toEqual([]);
  expect(report.verification?.ok).toBe(true);
  expect(report.verification?.rowsVerified).toBeGreaterThan(12_000);
  expect(report.estimate.totalMs).toBeGreaterThan(6_000); // three local allowances of 2 s, plus the copy
  expect(report.estimate.totalMs).toBe(report.estimate.parts.reduce((sum, x) => sum + x.ms, 0));
  expect(report.estimate.parts.filter((x) => x.basis === 'measured').every((x) => x.ms > 0)).toBe(true);
  expect(report.cleanup.map((c) => [c.name, c.state])).toEqual([
    ['removeDump', 'done'],
    ['deprovisionTarget', 'done'],
    ['purgeTargetBackups', 'done'],
    ['deprovisionCopy', 'done'],
    ['purgeCopyBackups', 'done'],
  ]);

  await expectNothingLeft(p, 'rh-app', source, before);

  const history = historyText(await client.workflow.getHandle(id).fetchHistory());
  expect(history).toContain('"handle":"rh-src14-rehearsal"'); // payloads were decoded
  for (const secret of [source.password, 'reporting-demo-password', 'app-rw-demo-password']) {
    expect(history).not.toContain(secret);
  }
  expect(history).not.toMatch(/postgres(ql)?:\/\/[^\s"@]*:[^\s"@]+@/);
});

test('a target that rejects rows the source accepted: the errors are reported, ok false, still cleaned up', async () => {
  const source = await createSource('rh-bad14');
  await withClient(source, source.database, (c) =>
    c.query(`
      -- Stands in for behaviour that changed between versions: the target rejects rows the source accepted.
      CREATE FUNCTION accepts_qty(q int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
      BEGIN
        RETURN current_setting('server_version_num')::int < 170000 OR q <= 100;
      END $$;
      CREATE TABLE stock (sku text PRIMARY KEY, qty int CHECK (accepts_qty(qty)));
      INSERT INTO stock VALUES ('small', 5), ('large', 500);
    `),
  );
  await createApp('rh-idler', source);
  await platform.createBackup('rh-bad14', ENV);
  const before = await fingerprint(source);

  const p = plan('rh-bad14', 'rh-bad17', 'rh-idler');
  const id = uniqueWorkflowId('e2e-rehearsal-bad');
  await startRehearsal(client, p, { id, taskQueue });
  const report = (await client.workflow.getHandle(id).result()) as RehearsalReport;

  expect(report.ok).toBe(false);
  expect(report.restore.unexpectedErrors.length).toBeGreaterThan(0);
  expect(report.restore.unexpectedErrors.join('\n')).toMatch(/violates check constraint/);
  expect(report.problems[0]).toMatch(/unexpected error/);
  expect(report.verification).toBeUndefined();
  expect(report.phases.find((x) => x.name === 'verify')?.state).toBe('skipped');
  expect(report.cleanup.every((c) => c.state === 'done')).toBe(true);

  await expectNothingLeft(p, 'rh-idler', source, before);
});
