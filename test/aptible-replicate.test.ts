// The Aptible platform's replicateLogical (`aptible db:replicate SOURCE REPLICA --logical --version V`)
// against the fake `aptible`, whose replica is a real cluster of the requested version kept current by
// native logical replication (test/fake-aptible/README.md): the command typed, the replica's version,
// roles and schema, rows written after it was made, a second run, refusals, and the clean-up SQL that
// replication-objects.ts gives for what db:replicate made.
import type { Client } from 'pg';
import { createAptiblePlatform, type AptiblePlatform } from '../src/platform/aptible';
import {
  type AptibleReplication,
  cleanupSql,
  findAptibleReplication,
  lagSql,
  remainingSlotsSql,
  syncProgressSql,
} from '../src/platform/aptible/replication-objects';
import type { DatabaseConnection } from '../src/platform/platform';
import { withClient } from '../src/pg/connection';
import { isOwnedBy } from '../src/activities/deps';
import type { MigrationInput } from '../src/activities/contract';
import { loadSampleData } from '../src/demo/sample-data';
import { BadInputError, NotFoundError, PlatformError, TargetExistsError } from '../src/errors';
import { createFakeAptible, type FakeAptible } from './fake-aptible/fixture';
import { pglogicalSlotName } from './fake-aptible/logical';
import { waitUntil } from './helpers/migration-waits';

const ENV = 'test-environment';
const SOURCE = 'src-db';
const REPLICA = 'src-replica';
const DATABASES = ['db', 'inventory', 'postgres'];

let fake: FakeAptible;
let platform: AptiblePlatform;
let startedAt: number;

const spec = (over: Partial<Parameters<AptiblePlatform['replicateLogical']>[0]> = {}) => ({
  sourceHandle: SOURCE,
  handle: REPLICA,
  environment: ENV,
  version: '17',
  diskSizeGb: 20,
  containerSizeMb: 2048,
  createdBy: 'mig-1',
  ...over,
});

/** Straight to the cluster behind a fake database (its tunnel is the contract tests' subject, not this file's). */
async function sql<T extends Record<string, unknown>>(
  handle: string,
  database: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const conn = await fake.local.connect(handle, ENV);
  return withClient(conn, database, async (c) => (await c.query(text, values)).rows as T[]);
}

async function onReplica<T>(database: string, body: (c: Client) => Promise<T>): Promise<T> {
  return withClient(await fake.local.connect(REPLICA, ENV), database, body);
}

async function createSource(handle: string, setup: (conn: DatabaseConnection) => Promise<void>) {
  const res = await fake.run(
    ['db:create', handle, '--type', 'postgresql', '--version', '14', '--environment', ENV],
    { format: 'json' },
  );
  if (res.exitCode !== 0) throw new Error(`db:create ${handle} failed: ${res.stderr}`);
  const conn = await platform.connect(handle, ENV);
  try {
    await setup(conn);
  } finally {
    await conn.close();
  }
}

beforeAll(async () => {
  fake = await createFakeAptible();
  await fake.addEnvironment(ENV);
  platform = createAptiblePlatform({ env: { ...process.env, ...fake.env } });
  await createSource(SOURCE, async (conn) => {
    await loadSampleData(conn);
    await withClient(conn, conn.database, (c) =>
      c.query("CREATE ROLE auditor LOGIN PASSWORD 'aud1t'; GRANT SELECT ON customers TO auditor"),
    );
  });
  startedAt = Date.now();
});

afterAll(async () => {
  await fake?.destroy();
});

test('the guide’s command makes a replica of the version asked for, with the roles and schema, kept current', async () => {
  const since = fake.commands().length;
  const info = await platform.replicateLogical(spec());
  expect(info).toMatchObject({ handle: REPLICA, environment: ENV, version: 17, containerSizeMb: 2048 });
  expect(fake.commands().slice(since)).toEqual([
    `db:replicate ${SOURCE} ${REPLICA} --logical --version 17 --environment ${ENV} --container-size 2048 --disk-size 20`,
  ]);

  // Reachable the way the activities reach it: through `aptible db:tunnel`.
  const tunnel = await platform.connect(REPLICA, ENV);
  try {
    const version = await withClient(tunnel, 'db', (c) => c.query('SHOW server_version_num'));
    expect(version.rows[0].server_version_num).toMatch(/^17/);
  } finally {
    await tunnel.close();
  }
  expect(
    await sql(REPLICA, 'db', "SELECT 1 FROM pg_roles WHERE rolname = 'auditor' AND rolcanlogin"),
  ).toHaveLength(1);

  // The initial copy completes in every database, then rows written since reach the replica.
  for (const database of DATABASES) {
    const found = await onReplica(database, (c) => findAptibleReplication(c, database));
    expect(found).toMatchObject({ flavour: 'native', subscription: 'aptible_subscription' });
    await waitUntil(`the initial sync of ${database}`, () =>
      onReplica(database, async (c) => {
        const [p] = (await c.query<{ done: number; total: number }>(syncProgressSql('native'))).rows;
        return p.done === p.total;
      }),
    );
  }
  await sql(SOURCE, 'db', "INSERT INTO events (note) VALUES ('after the replica was made')");
  await sql(
    SOURCE,
    'inventory',
    'UPDATE items SET qty = qty + 1000 WHERE sku = (SELECT min(sku) FROM items)',
  );
  await waitUntil(
    'the new event on the replica',
    async () =>
      (await sql(REPLICA, 'db', "SELECT 1 FROM events WHERE note = 'after the replica was made'")).length ===
      1,
  );
  const count = async (handle: string, database: string, table: string) =>
    (await sql<{ n: string }>(handle, database, `SELECT count(*) AS n FROM ${table}`))[0].n;
  for (const [database, table] of [
    ['db', 'orders'],
    ['db', 'customers'],
    ['inventory', '"Audit Log"'],
    ['inventory', 'items'],
  ]) {
    expect(await count(REPLICA, database, table)).toBe(await count(SOURCE, database, table));
  }
  await waitUntil('the updated item on the replica', async () => {
    const q = 'SELECT qty FROM items WHERE sku = (SELECT min(sku) FROM items)';
    return (await sql(SOURCE, 'inventory', q))[0].qty === (await sql(REPLICA, 'inventory', q))[0].qty;
  });
});

test('the objects are named as on Aptible: one slot per database on the source, watched by slot', async () => {
  const id = fake.databases().find((d) => d.handle === REPLICA)?.id;
  const found = await onReplica('db', (c) => findAptibleReplication(c, 'db'));
  // pglogical's gen_slot_name('db', 'aptible_publisher_<id>', 'aptible_subscription'): long parts are cut
  // to 8 characters and 7 hex digits of their hash.
  expect(found).toMatchObject({ provider: `aptible_publisher_${id}` });
  expect(found?.slot).toMatch(/^pgl_db_aptible_[0-9a-f]{7}_aptible_[0-9a-f]{7}$/);
  // The formula against a slot real pglogical named (AWS's "Managing logical replication slots" page).
  const source = await fake.local.connect(SOURCE, ENV);
  expect(await pglogicalSlotName(source, 'labdb', 'docs_lab_provider', 'docs_lab_subscription')).toBe(
    'pgl_labdb_docs_labcb4fa94_docs_lab3de412c',
  );
  const slots = await sql<{ slot_name: string; database: string }>(
    SOURCE,
    'db',
    "SELECT slot_name, database FROM pg_replication_slots WHERE slot_name LIKE 'pgl\\_%' ORDER BY database",
  );
  expect(slots.map((s) => s.database)).toEqual(DATABASES);
  const [lag] = await sql<{ lag_bytes: string }>(SOURCE, 'db', lagSql(found as AptibleReplication));
  expect(Number(lag.lag_bytes)).toBeGreaterThanOrEqual(0);
});

test('a second run is refused without touching the replica; the run’s own check finds it its own', async () => {
  const slotsBefore = await sql(SOURCE, 'db', 'SELECT slot_name FROM pg_replication_slots ORDER BY 1');
  await expect(platform.replicateLogical(spec())).rejects.toThrow(TargetExistsError);
  expect(await sql(SOURCE, 'db', 'SELECT slot_name FROM pg_replication_slots ORDER BY 1')).toEqual(
    slotsBefore,
  );
  expect(fake.databases().filter((d) => d.handle === REPLICA)).toHaveLength(1);
  await sql(SOURCE, 'db', "INSERT INTO events (note) VALUES ('after the second run')");
  await waitUntil(
    'replication still running after the second run',
    async () =>
      (await sql(REPLICA, 'db', "SELECT 1 FROM events WHERE note = 'after the second run'")).length === 1,
  );

  // What createTarget does before creating: the replica made during this run is this run's to keep.
  const existing = await platform.getDatabase(REPLICA, ENV);
  expect(existing).toBeDefined();
  const run = (at: number) => ({ migrationId: 'mig-1', startedAt: at }) as MigrationInput;
  expect(isOwnedBy(existing!, run(startedAt))).toBe(true);
  expect(isOwnedBy(existing!, run(Date.now() + 60_000))).toBe(false);
});

test('bad input is refused as the real CLI refuses it, and nothing is made', async () => {
  const before = fake.databases().map((d) => d.handle);
  const since = fake.commands().length;
  await expect(platform.replicateLogical(spec({ handle: SOURCE }))).rejects.toThrow(BadInputError);
  expect(fake.commands().slice(since)).toEqual([]); // refused before any command
  await expect(platform.replicateLogical(spec({ handle: 'r2', version: '9' }))).rejects.toThrow(
    /No Database Image of type postgresql with version 9, valid versions: .*17/,
  );
  await expect(platform.replicateLogical(spec({ handle: 'r2', sourceHandle: 'nope' }))).rejects.toThrow(
    NotFoundError,
  );

  const cli = (args: string[]) => fake.run(['db:replicate', ...args], { format: 'json' });
  expect(await cli([SOURCE, 'r2', '--logical', '--environment', ENV])).toMatchObject({
    exitCode: 1,
    stderr: '--version is required for logical replication\n',
  });
  expect((await cli([SOURCE, 'r2', '--logical', '--version', '17', '--size', '5'])).stderr).toMatch(
    /removed.Please use the "--disk-size" option/,
  );
  expect((await cli([SOURCE])).stderr).toMatch(
    /"aptible db:replicate" was called with arguments \["src-db"\]/,
  );
  expect((await cli([SOURCE, REPLICA, '--logical', '--version', '17'])).stderr).toBe(
    'Replicating src-db...\nAn error occurred: Handle has already been taken\n',
  );
  expect(fake.databases().map((d) => d.handle)).toEqual(before);
});

test('the source cannot be deprovisioned while its replica is linked to it', async () => {
  const r = await fake.run(['db:deprovision', SOURCE, '--environment', ENV]);
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toMatch(/An error occurred: Database src-db has replicas \(src-replica\)/);
  expect(fake.databases().map((d) => d.handle)).toContain(SOURCE);
});

test('a table without a primary key fails the operation as pglogical does; the half-made replica stays', async () => {
  await createSource('nopk-db', async (conn) => {
    await withClient(conn, conn.database, (c) => c.query('CREATE TABLE log (at timestamptz, line text)'));
  });
  const failed = platform.replicateLogical(spec({ sourceHandle: 'nopk-db', handle: 'nopk-replica' }));
  await expect(failed).rejects.toThrow(PlatformError);
  await expect(failed).rejects.toThrow(/db:replicate --logical. failed \(see .aptible operation:logs \d+/);
  expect(fake.databases().find((d) => d.handle === 'nopk-replica')?.status).toBe('pending');
  // The guide: the broken replica is deprovisioned to free its handle.
  expect((await fake.run(['db:deprovision', 'nopk-replica', '--environment', ENV])).exitCode).toBe(0);
});

test('the clean-up SQL leaves no subscription, slot or publication; the source can then go', async () => {
  const found: AptibleReplication[] = [];
  for (const database of DATABASES) {
    const r = await onReplica(database, (c) => findAptibleReplication(c, database));
    found.push(r as AptibleReplication);
    const { replica } = cleanupSql(r as AptibleReplication, { dropSourceExtension: false });
    for (const statement of [...replica, ...replica]) await sql(REPLICA, database, statement);
  }
  for (const r of found) {
    await waitUntil(`no slot left in ${r.database}`, async () => {
      for (const statement of cleanupSql(r, { dropSourceExtension: false }).source) {
        await sql(SOURCE, r.database, statement);
      }
      return (await sql(SOURCE, r.database, remainingSlotsSql(r))).length === 0;
    });
    expect(await sql(SOURCE, r.database, 'SELECT pubname FROM pg_publication')).toEqual([]);
    expect(await sql(REPLICA, r.database, 'SELECT subname FROM pg_subscription')).toEqual([]);
  }
  expect(await sql(SOURCE, 'db', 'SELECT slot_name FROM pg_replication_slots')).toEqual([]);

  await fake.unlinkReplica(ENV, REPLICA);
  expect((await fake.run(['db:deprovision', SOURCE, '--environment', ENV])).exitCode).toBe(0);
});
