// Method logical's activities against real clusters of the local platform (a 14 source, a 17 target), called
// as a worker would call them but outside one: preflight's refusals, the whole replication and cutover
// sequence with writes in between, each step retried, and clean-up on every side and when a side is gone.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { MigrationInput, ReplicationCleanupResult, ReplicationSample } from '../src/activities/contract';
import type { ActivityDeps } from '../src/activities/deps';
import { preflight } from '../src/activities/preflight';
import {
  awaitInitialSync,
  copySchema,
  sampleReplication,
  startReplication,
  SyncErrorWatch,
  SYNC_ERROR_SAMPLES,
} from '../src/activities/logical-replication';
import {
  awaitCatchUp,
  checkSchemaUnchanged,
  syncSequences,
  verifyReplica,
} from '../src/activities/logical-cutover';
import { dropReplication } from '../src/activities/logical-cleanup';
import { replicatedDatabases } from '../src/activities/logical-common';
import { checkLogicalReadiness, subscriberWorkersProblem } from '../src/pg/logical/readiness';
import { sourceConninfo } from '../src/activities/source-conninfo';
import { PreflightError, SchemaChangedError } from '../src/errors';
import { validatePlan } from '../src/plan/load';
import type { PlanInput } from '../src/plan/schema';
import { type PgTarget, withClient } from '../src/pg/connection';
import type { Platform } from '../src/platform/platform';
import { type ClusterPair, startClusterPair } from './helpers/cluster-pair';
import { TestSdkLogger } from './helpers/sdk-log';

const run = promisify(execFile);
const ENV = 'local';
const MIGRATION = 'logical-activities';
const PSQL = '/usr/lib/postgresql/15/bin/psql';

let home: string;
let pair: ClusterPair;
let deps: ActivityDeps;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-logical-'));
  pair = await startClusterPair(home, { environment: ENV, createdBy: MIGRATION });
  deps = { platformFor: () => pair.platform, workDir: join(home, 'work') };
  await sql(pair.source, 'db', `CREATE ROLE app LOGIN PASSWORD 'app-fixture-pw'`);
  await sql(pair.source, 'db', 'CREATE DATABASE shop OWNER app');
  await sql(
    pair.source,
    'shop',
    `CREATE TABLE orders (id bigserial PRIMARY KEY, note text NOT NULL, amount numeric(12,2));
     INSERT INTO orders (note, amount) SELECT 'order ' || g, g / 7.0 FROM generate_series(1, 20000) g;
     CREATE TABLE events (at timestamptz NOT NULL DEFAULT now(), kind text); -- no key: accepted below
     INSERT INTO events (kind) SELECT 'k' || g FROM generate_series(1, 300) g;
     CREATE SEQUENCE invoice_no START 1000;
     SELECT nextval('invoice_no') FROM generate_series(1, 3);
     ALTER TABLE orders OWNER TO app; ALTER TABLE events OWNER TO app;`,
  );
});

afterAll(async () => {
  await pair?.platform.destroy();
  if (home) await rm(home, { recursive: true, force: true });
});

async function sql(t: PgTarget, database: string, text: string): Promise<unknown[]> {
  return withClient(t, database, async (c) => {
    const result = await c.query(text);
    return (Array.isArray(result) ? result[result.length - 1] : result).rows as unknown[];
  });
}

async function value(t: PgTarget, database: string, text: string): Promise<string> {
  const rows = (await sql(t, database, text)) as Record<string, unknown>[];
  return String(Object.values(rows[0])[0]);
}

/** An activity's context, its SDK log kept for a failing test only (an attempt that fails logs a WARN). */
function activityEnvironment(attempt: number): MockActivityEnvironment {
  return new MockActivityEnvironment({ attempt }, { logger: new TestSdkLogger() });
}

const ACCEPTED = { replicaIdentityFull: ['shop.public.events'] };

function input(target = 'target17', plan: Partial<PlanInput> = {}): MigrationInput {
  return {
    migrationId: MIGRATION,
    plan: validatePlan({
      platform: 'local',
      method: 'logical',
      source: { handle: 'source14', environment: ENV },
      target: { handle: target, version: '17' },
      cutover: { confirm: false },
      accept: ACCEPTED,
      ...plan,
    }),
  };
}

/** Every publication, slot and subscription on both servers (publications in every database). */
async function replicationObjects(): Promise<string[]> {
  const found: string[] = [];
  for (const [side, conn] of [
    ['source', pair.source],
    ['target', pair.target],
  ] as const) {
    if (!(await pair.platform.getDatabase(side === 'source' ? 'source14' : 'target17', ENV))) continue;
    for (const row of (await sql(conn, 'postgres', 'SELECT slot_name FROM pg_replication_slots')) as {
      slot_name: string;
    }[]) {
      found.push(`${side}: slot ${row.slot_name}`);
    }
    for (const row of (await sql(conn, 'postgres', 'SELECT subname FROM pg_subscription')) as {
      subname: string;
    }[]) {
      found.push(`${side}: subscription ${row.subname}`);
    }
    const dbs = (await sql(conn, 'postgres', 'SELECT datname FROM pg_database WHERE datallowconn')) as {
      datname: string;
    }[];
    for (const { datname } of dbs) {
      for (const row of (await sql(conn, datname, 'SELECT pubname FROM pg_publication')) as {
        pubname: string;
      }[]) {
        found.push(`${side}: publication ${datname}/${row.pubname}`);
      }
    }
  }
  return found;
}

test('the conninfo a subscription gets is one libpq reads back exactly, whatever the password holds', async () => {
  const password = `we ird'pa\\ss=@/?#`;
  await sql(pair.source, 'db', `CREATE ROLE odd_login LOGIN PASSWORD ${`'${password.replace(/'/g, "''")}'`}`);
  const url =
    `postgresql://${encodeURIComponent('odd_login')}:${encodeURIComponent(password)}` +
    `@${pair.source.host}:${pair.source.port}/db?sslmode=disable&application_name=ignored`;
  const conninfo = sourceConninfo(url, "sh'op db");
  expect(conninfo).toContain("dbname='sh\\'op db'");
  expect(conninfo).toContain("sslmode='disable'");
  expect(conninfo).not.toContain('application_name');
  // psql parses it as the subscription's walreceiver will: the database is the one asked for.
  const withDb = sourceConninfo(url, 'postgres');
  const { stdout } = await run(PSQL, [withDb, '-XAtc', 'SELECT current_user || current_database()'], {
    env: { ...process.env, PGPASSWORD: '' },
  });
  expect(stdout.trim()).toBe('odd_loginpostgres');
  await sql(pair.source, 'db', 'DROP ROLE odd_login');
});

test('preflight refuses a table without a key and large objects, all at once, creating nothing', async () => {
  const loid = await value(pair.source, 'shop', 'SELECT lo_from_bytea(0, $$blob$$)');
  try {
    const refused = await preflight(deps, input('never17', { accept: { replicaIdentityFull: [] } })).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(PreflightError);
    const message = (refused as Error).message;
    expect(message).toMatch(/events/);
    expect(message).toMatch(/large object/i);
    expect(message).toMatch(/method: dump/);
  } finally {
    await sql(pair.source, 'shop', `SELECT lo_unlink(${loid})`);
  }
  expect(await pair.platform.getDatabase('never17', ENV)).toBeUndefined();
  expect(await replicationObjects()).toEqual([]);
  // The activities' quick list of replicated databases is readiness's, with and without skipped ones.
  for (const skipDatabases of [[], ['postgres']]) {
    const plan = input('target17', { accept: { ...ACCEPTED, skipDatabases } }).plan;
    const readiness = await checkLogicalReadiness(pair.source, {
      skipDatabases,
      replicaIdentityFull: ACCEPTED.replicaIdentityFull,
    });
    expect(await replicatedDatabases(pair.source, plan)).toEqual(readiness.databases);
  }
  // Accepting the table, and without the large object, the same source passes.
  const ok = await preflight(deps, input());
  expect(ok.sourceVersion).toBe(14);
  expect(await replicationObjects()).toEqual([]);
});

test("the target's worker settings are checked, and a copy whose errors keep rising is given up", async () => {
  expect(await subscriberWorkersProblem(pair.target, 3)).toBeUndefined();
  expect(await subscriberWorkersProblem(pair.target, 30)).toMatch(
    /max_logical_replication_workers = 16.*set max_logical_replication_workers to at least 32 and max_worker_processes to at least 35/,
  );
  const watch = new SyncErrorWatch();
  const at = (syncErrors?: number): ReplicationSample => ({
    at: 0,
    lagBytes: 0,
    databases: [{ name: 'db', tablesTotal: 1, tablesDone: 0, syncErrors }],
  });
  // Unknown before 15, and a count that stops rising, never fail.
  for (let n = 0; n < 3 * SYNC_ERROR_SAMPLES; n++) expect(watch.observe(at(undefined))).toBeUndefined();
  expect(watch.observe(at(5))).toBeUndefined();
  for (let n = 1; n < SYNC_ERROR_SAMPLES; n++) expect(watch.observe(at(5 + n))).toBeUndefined();
  expect(watch.observe(at(5 + SYNC_ERROR_SAMPLES - 1))).toBeUndefined();
  for (let n = 1; n < SYNC_ERROR_SAMPLES; n++) expect(watch.observe(at(100 + n))).toBeUndefined();
  expect(watch.observe(at(200))).toEqual({ database: 'db', errors: 200 });
});

test('copy schema, replicate, catch up after writes, cut over, clean up: each step survives a retry', async () => {
  const i = input();
  const [schema, again] = [await copySchema(deps, i), await copySchema(deps, i)];
  expect(schema.databases).toEqual(expect.arrayContaining(['db', 'postgres', 'shop']));
  expect(again.databases).toEqual(schema.databases);
  expect(await value(pair.target, 'shop', 'SELECT count(*) FROM orders')).toBe('0');
  expect(await value(pair.target, 'db', `SELECT count(*) FROM pg_roles WHERE rolname = 'app'`)).toBe('1');

  const started = await startReplication(deps, i);
  expect(await startReplication(deps, i)).toEqual(started);
  expect(started.databases).toEqual(schema.databases);
  expect(started.replicaIdentityFull).toEqual(['shop.public.events']);
  expect(JSON.stringify(started)).not.toContain(pair.source.password);
  expect(await value(pair.source, 'shop', `SELECT relreplident FROM pg_class WHERE relname = 'events'`)).toBe(
    'f',
  );
  // What clean-up must remove, seen by the same check that finds it gone at the end.
  const objects = await replicationObjects();
  expect(objects.filter((o) => o.startsWith('target: subscription'))).toHaveLength(started.databases.length);
  expect(objects.filter((o) => o.startsWith('source: slot'))).toHaveLength(started.databases.length);
  expect(objects.filter((o) => o.startsWith('source: publication'))).toHaveLength(started.databases.length);

  const env = activityEnvironment(1);
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  const synced: ReplicationSample = await env.run(() => awaitInitialSync(deps, i));
  expect(synced.databases.map((d) => d.name).sort()).toEqual([...started.databases].sort());
  for (const db of synced.databases) expect(db.tablesDone).toBe(db.tablesTotal);
  expect(beats.length).toBeGreaterThan(0);
  expect(await value(pair.target, 'shop', 'SELECT count(*) FROM orders')).toBe('20000');
  // A retry finds the copy done.
  expect((await awaitInitialSync(deps, i)).databases.length).toBe(synced.databases.length);

  // The apps keep writing while the gate waits; the table without a key takes updates and deletes.
  await sql(
    pair.source,
    'shop',
    `INSERT INTO orders (note, amount) SELECT 'late ' || g, g FROM generate_series(1, 500) g;
     UPDATE orders SET note = note || ' (changed)' WHERE id % 100 = 0;
     DELETE FROM orders WHERE id % 400 = 1;
     UPDATE events SET kind = 'changed' WHERE kind = 'k7';
     DELETE FROM events WHERE kind = 'k8';
     SELECT nextval('invoice_no') FROM generate_series(1, 5);`,
  );
  expect((await sampleReplication(deps, i)).databases.length).toBe(started.databases.length);

  const caught = await awaitCatchUp(deps, i);
  expect(caught.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
  // Caught up, the subscriptions are disabled: a late write on the source cannot reach the target. A
  // retry enables them, waits again and disables them again.
  const enabled = 'SELECT count(*) FROM pg_subscription WHERE subenabled';
  expect(await value(pair.target, 'postgres', enabled)).toBe('0');
  await awaitCatchUp(deps, i);
  expect(await value(pair.target, 'postgres', enabled)).toBe('0');
  for (const q of [
    'SELECT count(*) FROM orders',
    `SELECT count(*) FROM orders WHERE note LIKE '%(changed)'`,
    `SELECT string_agg(kind, ',' ORDER BY kind) FROM events WHERE kind IN ('k7', 'k8', 'changed')`,
  ]) {
    expect(await value(pair.target, 'shop', q)).toBe(await value(pair.source, 'shop', q));
  }

  await checkSchemaUnchanged(deps, i);
  await sql(pair.source, 'shop', 'CREATE TABLE added_later (id int PRIMARY KEY)');
  const changed = await checkSchemaUnchanged(deps, i).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(changed).toBeInstanceOf(SchemaChangedError);
  expect((changed as Error).message).toMatch(/added_later/);
  expect((changed as Error).message).toMatch(/DDL/);
  // A new table is in no publication: only a new migration carries it.
  expect((changed as Error).message).toMatch(/only a new migration carries it/);
  expect((changed as Error).message).not.toMatch(/on the target too/);
  await sql(pair.source, 'shop', 'DROP TABLE added_later');
  await checkSchemaUnchanged(deps, i);

  const sequences = await syncSequences(deps, i);
  expect(sequences.sequences).toBeGreaterThanOrEqual(2); // orders_id_seq, invoice_no
  expect(await syncSequences(deps, i)).toEqual(sequences);
  const seq = 'SELECT last_value || is_called::text FROM invoice_no';
  expect(await value(pair.target, 'shop', seq)).toBe(await value(pair.source, 'shop', seq));

  const report = await verifyReplica(deps, i);
  expect(report.ok).toBe(true);
  expect(report.tablesCompared).toBeGreaterThanOrEqual(2);
  expect((await verifyReplica(deps, i)).ok).toBe(true);

  const cleaned = await dropReplication(deps, i);
  expect(cleaned.leftBehind).toEqual([]);
  expect(cleaned.dropped.length).toBeGreaterThanOrEqual(3 * started.databases.length);
  expect(await replicationObjects()).toEqual([]);
  expect(await dropReplication(deps, i)).toEqual({ dropped: [], leftBehind: [] });
});

test('clean-up with the source unreachable drops the target side and names what is left; then with the target gone', async () => {
  const i = input();
  await copySchema(deps, i);
  const started = await startReplication(deps, i);

  // A platform on which the source cannot be reached (the local one would start a stopped server).
  const real = pair.platform;
  const cut = Object.create(real, {
    connect: {
      value: async (handle: string, environment: string) => {
        if (handle === 'source14') throw new Error('connection refused (test)');
        return real.connect(handle, environment);
      },
    },
  }) as Platform;
  const cutDeps = { ...deps, platformFor: () => cut };
  // An early attempt cleans the side it reaches, then fails so that it is retried.
  const early = await activityEnvironment(1)
    .run(() => dropReplication(cutDeps, i))
    .then(
      () => undefined,
      (err: unknown) => err as Error,
    );
  expect(early?.message).toMatch(/connection refused \(test\).*retried/s);
  expect(await value(pair.target, 'postgres', 'SELECT count(*) FROM pg_subscription')).toBe('0');
  // A later one reports what is left on the source as the SQL to run there.
  const partial: ReplicationCleanupResult = await activityEnvironment(4).run(() =>
    dropReplication(cutDeps, i),
  );
  const left = partial.leftBehind.join('\n');
  for (const slot of started.slots) expect(left).toContain(`slot_name = '${slot}'`);
  for (const db of started.databases) expect(left).toContain(`database "${db}"`);
  expect(left).not.toContain('template1');
  expect(`${left}${early?.message}`).not.toContain(pair.source.password);
  expect(await value(pair.source, 'postgres', 'SELECT count(*) FROM pg_replication_slots')).toBe(
    String(started.slots.length),
  );

  await pair.platform.deprovisionDatabase('target17', ENV);
  const rest = await dropReplication(deps, i);
  expect(rest.leftBehind).toEqual([]);
  expect(await replicationObjects()).toEqual([]);
});
