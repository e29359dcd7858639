// The PostgreSQL layer of method logical (src/pg/logical) on real clusters: a 14 source and a 17 target of
// the local platform. Readiness refuses what logical replication cannot carry, all at once; replication
// started per database copies the rows, carries what is written during and after the copy, catches up,
// sets sequences, verifies by counts, names a DDL change, and its clean-up leaves nothing on either side.
import { execFileSync } from 'node:child_process';
import { type AddressInfo, type Socket, createServer } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Client } from 'pg';
import { CatchUpTimeoutError, SchemaChangedError } from '../src/errors';
import type { LocalPlatform } from '../src/platform/local';
import type { DatabaseConnection } from '../src/platform/platform';
import { type PgTarget, libpqArgs, libpqEnv, openClient, withClient } from '../src/pg/connection';
import { replicationNames, type ReplicationNames } from '../src/pg/logical/names';
import { checkLogicalReadiness, replicatedDatabaseNames } from '../src/pg/logical/readiness';
import {
  dropDatabaseReplication,
  sampleReplication,
  startDatabaseReplication,
  waitForCatchUp,
} from '../src/pg/logical/replication';
import { schemaDifferences } from '../src/pg/logical/schema-diff';
import { copySequences } from '../src/pg/logical/sequences';
import { compareServers } from '../src/pg/verify';
import { startClusterPair } from './helpers/cluster-pair';

const ENV = 'logical-pg';
const SOURCE = 'lsource14';
const TARGET = 'ltarget17';
const ROWS = 100_000;
/** The migration's replicated databases: every connectable one but the templates. */
const DATABASES = ['db', 'postgres', 'shop'];
const OPT_IN = 'shop.public.events';

let home: string;
let platform: LocalPlatform;
let source: DatabaseConnection;
let target: DatabaseConnection;
/** Measured times, written where PGSHIFT_TIMINGS says (the report's figures); the test stays quiet. */
const timings: Record<string, number> = {};

async function run(t: PgTarget, db: string, ...statements: string[]): Promise<void> {
  await withClient(t, db, async (c) => {
    for (const s of statements) await c.query(s);
  });
}

async function scalar<T>(t: PgTarget, db: string, text: string): Promise<T> {
  return withClient(t, db, async (c) => Object.values((await c.query(text)).rows[0])[0] as T);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return check();
}

/** Restarts a database's server with these settings (ALTER SYSTEM; null resets one). */
async function restartWith(
  handle: string,
  settings: Record<string, string | null>,
): Promise<DatabaseConnection> {
  const conn = await platform.connect(handle, ENV);
  await run(
    conn,
    'postgres',
    ...Object.entries(settings).map(([k, v]) =>
      v === null ? `ALTER SYSTEM RESET ${k}` : `ALTER SYSTEM SET ${k} = '${v}'`,
    ),
  );
  await platform.stopDatabase(handle, ENV);
  return platform.connect(handle, ENV);
}

/** Every slot, subscription and publication of a server, one line each. */
async function replicationObjects(server: PgTarget): Promise<string[]> {
  const found: string[] = [];
  const dbs = await withClient(server, 'postgres', async (c) => {
    found.push(
      ...(
        await c.query<{ s: string }>(`SELECT 'slot ' || slot_name AS s FROM pg_replication_slots`)
      ).rows.map((r) => r.s),
      ...(
        await c.query<{ s: string }>(`SELECT 'subscription ' || subname AS s FROM pg_subscription`)
      ).rows.map((r) => r.s),
    );
    return (
      await c.query<{ d: string }>(`SELECT datname AS d FROM pg_database WHERE datallowconn ORDER BY 1`)
    ).rows.map((r) => r.d);
  });
  for (const db of dbs) {
    const pubs = await withClient(server, db, (c) =>
      c.query<{ p: string }>('SELECT pubname AS p FROM pg_publication'),
    );
    found.push(...pubs.rows.map((r) => `publication ${db}/${r.p}`));
  }
  return found.sort();
}

/** The schema copy the activities make: every replicated database's schema, source to target. */
function copySchema(db: string): void {
  const dump = execFileSync('pg_dump', [...libpqArgs(source), '--schema-only', '-d', db], {
    env: libpqEnv(source),
    maxBuffer: 64 << 20,
  });
  execFileSync('psql', [...libpqArgs(target), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db], {
    env: libpqEnv(target),
    input: dump,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
}

function conninfo(): string {
  return `host=${source.host} port=${source.port} user=${source.user} password=${source.password}`;
}

/** Inserts, updates and deletes on the source until stopped; the ids it inserted are kept. */
function startWriter(conn: PgTarget) {
  const ids: number[] = [];
  let stop = false;
  let client: Client | undefined;
  const done = (async () => {
    client = await openClient(conn, 'shop');
    for (let i = 0; !stop; i++) {
      const { rows } = await client.query<{ id: number }>(
        `INSERT INTO orders (customer, total) VALUES ($1, $2) RETURNING id`,
        [`writer ${i}`, i],
      );
      ids.push(rows[0].id);
      // An UPDATE of an old row and of a new one: a lost one shows in the content hash, not the counts.
      await client.query(`UPDATE orders SET total = total + 1 WHERE id IN ($1, $2)`, [
        1 + ((i * 7919) % ROWS),
        ids[Math.floor(ids.length / 2)],
      ]);
      await client.query(`INSERT INTO items (day, qty) VALUES (date '2024-01-01' + ($1::int % 700), $1)`, [
        i,
      ]);
      await client.query(`UPDATE events SET hits = hits + 1 WHERE kind = $1`, [`k${i % 50}`]);
      if (i % 10 === 0)
        await client.query(`DELETE FROM events WHERE ctid IN (SELECT ctid FROM events LIMIT 1)`);
      await client.query(`INSERT INTO events (kind, hits) VALUES ($1, 0)`, [`k${i % 50}`]);
      await new Promise((r) => setTimeout(r, 5));
    }
    await client.end();
  })();
  return {
    ids,
    stop: async () => {
      stop = true;
      await done;
    },
  };
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-logical-pg-'));
  ({ platform, source, target } = await startClusterPair(home, {
    environment: ENV,
    createdBy: 'logical-pg-test',
    handles: { source: SOURCE, target: TARGET },
  }));
  // Clusters made before the local platform set wal_level = logical get it here.
  for (const handle of [SOURCE, TARGET]) {
    const conn = handle === SOURCE ? source : target;
    if ((await scalar<string>(conn, 'postgres', 'SHOW wal_level')) === 'logical') continue;
    const restarted = await restartWith(handle, {
      wal_level: 'logical',
      max_replication_slots: '20',
      max_wal_senders: '20',
      max_logical_replication_workers: '16',
      max_worker_processes: '24',
    });
    if (handle === SOURCE) source = restarted;
    else target = restarted;
  }
});

afterAll(async () => {
  if (process.env.PGSHIFT_TIMINGS)
    await writeFile(process.env.PGSHIFT_TIMINGS, JSON.stringify(timings, null, 2));
  await platform?.destroy();
  if (home) await rm(home, { recursive: true, force: true });
});

test('readiness lists every problem at once, names each object, and creates nothing', async () => {
  await run(source, 'postgres', 'CREATE DATABASE refused', 'CREATE DATABASE closed');
  await run(source, 'postgres', 'ALTER DATABASE closed WITH ALLOW_CONNECTIONS false');
  await run(
    source,
    'refused',
    'CREATE TABLE keyed (id int PRIMARY KEY)',
    'CREATE TABLE "No Key" (v text)',
    'CREATE TABLE nothing_identity (id int PRIMARY KEY)',
    'ALTER TABLE nothing_identity REPLICA IDENTITY NOTHING',
    'CREATE TABLE by_index (id int NOT NULL, CONSTRAINT by_index_id UNIQUE (id))',
    'ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_id',
    'CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY)',
    'CREATE TABLE parted (day date NOT NULL, v int) PARTITION BY RANGE (day)',
    `CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
    'SELECT lo_create(0)',
  );
  await run(source, 'template1', 'CREATE TABLE leftover (v int)', 'INSERT INTO leftover VALUES (1)');
  source = await restartWith(SOURCE, { wal_level: 'replica' });
  try {
    const readiness = await checkLogicalReadiness(source, {
      skipDatabases: [],
      replicaIdentityFull: ['refused.public.parted', 'refused.public.missing'],
    });
    const text = readiness.problems.join('\n');
    expect(text).toMatch(/wal_level is replica.*set wal_level = logical.*restart the server/);
    expect(text).toContain('"refused"."public"."No Key" has no primary key');
    expect(text).toContain('"refused"."public"."nothing_identity" has REPLICA IDENTITY NOTHING');
    expect(text).toMatch(/"refused"\."public"\."scratch" is UNLOGGED.*SET LOGGED/);
    expect(text).toMatch(/database "refused" holds 1 large object.*use method: dump/);
    expect(text).toMatch(/database "closed" does not allow connections.*accept\.skipDatabases/);
    expect(text).toMatch(
      /template1 holds tables with rows \("template1"\."public"\."leftover"\).*method: dump/,
    );
    expect(text).toContain('accept.replicaIdentityFull lists "refused.public.missing", which names no table');
    // A key, an index as identity, and a partition covered by its partitioned table's opt-in are fine.
    expect(text).not.toMatch(/keyed|by_index|parted/);
    expect(readiness.problems).toHaveLength(8);
    expect(readiness.warnings.join('\n')).toContain(
      '"refused"."public"."parted_2024" is set to REPLICA IDENTITY FULL',
    );
    expect(readiness.databases).toEqual(['db', 'postgres', 'refused']);
    expect(await replicationObjects(source)).toEqual([]);

    // Skipped databases are not looked at; template1 without rows is copied, not replicated.
    await run(source, 'template1', 'DROP TABLE leftover');
    const skipping = await checkLogicalReadiness(source, {
      skipDatabases: ['refused', 'closed'],
      replicaIdentityFull: [],
    });
    expect(skipping.problems).toEqual([expect.stringContaining('wal_level is replica')]);
    expect(skipping.databases).toEqual(['db', 'postgres']);
    expect(skipping.schemaOnly).toEqual(['template1']);
  } finally {
    source = await restartWith(SOURCE, { wal_level: null });
  }
  await run(source, 'postgres', 'DROP DATABASE refused', 'DROP DATABASE closed');
  const ready = await checkLogicalReadiness(source, { skipDatabases: [], replicaIdentityFull: [] });
  expect(ready.problems).toEqual([]);
});

describe('replication of every database, 14 to 17', () => {
  const MIGRATION = 'logical-pg-test';
  const named = DATABASES.map((name) => ({ name, names: replicationNames(MIGRATION, name) }));
  let writer: ReturnType<typeof startWriter>;

  beforeAll(async () => {
    await run(source, 'postgres', 'CREATE DATABASE shop');
    await run(
      source,
      'shop',
      'CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric)',
      `INSERT INTO orders (customer, total) SELECT 'c' || g, g FROM generate_series(1, ${ROWS}) g`,
      'CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY, day date NOT NULL, qty int, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)',
      `CREATE TABLE items_2024 PARTITION OF items FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
      `CREATE TABLE items_later PARTITION OF items FOR VALUES FROM ('2025-01-01') TO (MAXVALUE)`,
      `INSERT INTO items (day, qty) SELECT date '2024-01-01' + (g % 700), g FROM generate_series(1, 5000) g`,
      // No key: accepted as REPLICA IDENTITY FULL, so UPDATE and DELETE keep working once published.
      'CREATE TABLE events (kind text, hits int)',
      `INSERT INTO events SELECT 'k' || (g % 50), 0 FROM generate_series(1, 500) g`,
      'CREATE SEQUENCE invoice_no START 1000',
      `SELECT nextval('invoice_no') FROM generate_series(1, 45)`,
      'CREATE SEQUENCE never_used',
      'CREATE MATERIALIZED VIEW totals AS SELECT customer, sum(total) AS total FROM orders GROUP BY customer',
      'CREATE MATERIALIZED VIEW later_totals AS SELECT count(*) AS n FROM orders WITH NO DATA',
    );
    await run(
      source,
      'postgres',
      'CREATE TABLE notes (id int PRIMARY KEY, body text)',
      `INSERT INTO notes VALUES (1, 'x')`,
    );
    await run(target, 'postgres', 'CREATE DATABASE shop');
    // template1 is copied, not replicated (readiness: schemaOnly).
    for (const db of [...DATABASES, 'template1']) copySchema(db);
  });

  afterAll(async () => {
    await writer?.stop().catch(() => undefined);
  });

  test('readiness names the databases and warns about the opt-in and the materialized views', async () => {
    const readiness = await checkLogicalReadiness(source, {
      skipDatabases: [],
      replicaIdentityFull: [OPT_IN],
    });
    expect(readiness.problems).toEqual([]);
    expect(readiness.databases).toEqual(DATABASES);
    expect(await replicatedDatabaseNames(source, { skipDatabases: [] })).toEqual(DATABASES);
    expect(readiness.warnings.join('\n')).toMatch(
      /"shop"\."public"\."events" is set to REPLICA IDENTITY FULL/,
    );
    expect(readiness.warnings.join('\n')).toMatch(/database "shop": 1 materialized view/);
  });

  test('start copies every table while the source is written, twice is the same as once', async () => {
    writer = startWriter(source);
    await waitFor(async () => writer.ids.length > 20, 30_000);
    const start = async () => {
      for (const db of named) {
        await startDatabaseReplication(source, target, db.name, {
          names: db.names,
          sourceConninfo: conninfo(),
          replicaIdentityFull: db.name === 'shop' ? ['public.events'] : [],
        });
      }
    };
    await start();
    await start();
    const names = named.map((d) => d.names.slot);
    expect(
      (await replicationObjects(source)).filter((o) => o.startsWith('slot ') && !/_sync_/.test(o)),
    ).toEqual(names.map((n) => `slot ${n}`).sort());
    expect((await replicationObjects(target)).filter((o) => o.startsWith('subscription '))).toEqual(
      names.map((n) => `subscription ${n}`).sort(),
    );
    const began = Date.now();
    let last: Awaited<ReturnType<typeof sampleReplication>> | undefined;
    const synced = await waitFor(async () => {
      last = await sampleReplication(source, target, named);
      return last.databases.every((d) => d.tablesDone === d.tablesTotal);
    }, 300_000);
    timings.initialSyncMs = Date.now() - began;
    expect(synced).toBe(true);
    const shop = last!.databases.find((d) => d.name === 'shop')!;
    // orders, events and the two partitions of items; the partitioned table itself holds no rows.
    expect(shop).toEqual(expect.objectContaining({ tablesTotal: 4, tablesDone: 4 }));
    expect(shop.bytesDone).toBe(shop.bytesTotal);
    expect(shop.bytesTotal).toBeGreaterThan(0);
    expect(last!.databases.find((d) => d.name === 'db')).toEqual(
      expect.objectContaining({ tablesTotal: 0, tablesDone: 0 }),
    );
    expect(typeof last!.lagBytes).toBe('number');
    // Writes after the initial copy arrive too.
    const after = writer.ids.length;
    await waitFor(async () => writer.ids.length > after + 50, 60_000);
  });

  test('a table created before a retry of the start is published and copied', async () => {
    const shop = named.find((d) => d.name === 'shop')!;
    const ddl = 'CREATE TABLE late_table (id int PRIMARY KEY, v text)';
    await run(source, 'shop', ddl, `INSERT INTO late_table VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    await run(target, 'shop', ddl);
    await startDatabaseReplication(source, target, 'shop', {
      names: shop.names,
      sourceConninfo: conninfo(),
      replicaIdentityFull: ['public.events'],
    });
    expect(
      await scalar<number>(
        source,
        'shop',
        `SELECT count(*)::int FROM pg_publication_tables WHERE pubname = '${shop.names.publication}' AND tablename = 'late_table'`,
      ),
    ).toBe(1);
    const copied = await waitFor(
      async () => (await scalar<number>(target, 'shop', 'SELECT count(*)::int FROM late_table')) === 3,
      120_000,
    );
    expect(copied).toBe(true);
  });

  test('catch-up under writes, then idle, and every row written is on the target', async () => {
    await writer.stop();
    const underWrites = await waitForCatchUp(source, target, named, { timeoutMs: 60_000 });
    timings.catchUpAfterWritesMs = underWrites.waitedMs;
    expect(underWrites.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const idle: number[] = [];
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      idle.push((await waitForCatchUp(source, target, named, { timeoutMs: 60_000 })).waitedMs);
    }
    timings.catchUpIdleMs = Math.max(...idle);
    timings.writerRows = writer.ids.length;

    const facts = `SELECT count(*)::int AS n, coalesce(sum(id), 0)::text AS s FROM orders`;
    const [s, t] = await Promise.all([
      withClient(source, 'shop', (c) => c.query(facts)),
      withClient(target, 'shop', (c) => c.query(facts)),
    ]);
    expect(t.rows[0]).toEqual(s.rows[0]);
    expect(s.rows[0].n).toBe(ROWS + writer.ids.length);
    const last = writer.ids.at(-1);
    expect(await scalar<number>(target, 'shop', `SELECT count(*)::int FROM orders WHERE id = ${last}`)).toBe(
      1,
    );
    const events = `SELECT string_agg(kind || ':' || hits, ',' ORDER BY kind, hits) FROM events`;
    expect(await scalar<string>(target, 'shop', events)).toBe(await scalar<string>(source, 'shop', events));
    for (const table of ['orders', 'items']) {
      const hash = `SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM ${table} t`;
      expect(await scalar<string>(target, 'shop', hash)).toBe(await scalar<string>(source, 'shop', hash));
    }
  });

  test('an open transaction holds the catch-up, its late asynchronous commit is applied, then nothing more', async () => {
    const late = await openClient(source, 'shop');
    try {
      await late.query(`SET application_name = 'late-writer'`);
      await late.query('BEGIN');
      await late.query(`UPDATE orders SET customer = 'late commit' WHERE id = 2`);
      const held = await waitForCatchUp(source, target, named, { timeoutMs: 1500 }).catch((e: unknown) => e);
      expect(held).toBeInstanceOf(CatchUpTimeoutError);
      expect((held as Error).message).toMatch(
        /1 transaction\(s\) .*pid \d+ in database "shop" \(application_name "late-writer"/,
      );
      // Committed without waiting for its WAL to be flushed, while the catch-up waits.
      const waiting = waitForCatchUp(source, target, named, { timeoutMs: 60_000, disable: true });
      await new Promise((r) => setTimeout(r, 1500));
      await late.query('SET LOCAL synchronous_commit = off');
      await late.query('COMMIT');
      await waiting;
    } finally {
      await late.end();
    }
    expect(await scalar<string>(target, 'shop', 'SELECT customer FROM orders WHERE id = 2')).toBe(
      'late commit',
    );
    // Disabled: what the source receives from now on does not reach the target.
    const subs = named.map((d) => `'${d.names.subscription}'`).join(', ');
    expect(
      await scalar<number>(
        target,
        'postgres',
        `SELECT count(*)::int FROM pg_subscription WHERE subname IN (${subs}) AND subenabled`,
      ),
    ).toBe(0);
    const slots = named.map((d) => `'${d.names.slot}'`).join(', ');
    const released = await waitFor(
      async () =>
        (await scalar<number>(
          source,
          'postgres',
          `SELECT count(*)::int FROM pg_replication_slots WHERE slot_name IN (${slots}) AND active`,
        )) === 0,
      60_000,
    );
    expect(released).toBe(true);
    await run(source, 'shop', `INSERT INTO orders (id, customer) VALUES (-1, 'after the cutover')`);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await scalar<number>(target, 'shop', 'SELECT count(*)::int FROM orders WHERE id = -1')).toBe(0);
    await run(source, 'shop', 'DELETE FROM orders WHERE id = -1');
    for (const d of named) await run(target, d.name, `ALTER SUBSCRIPTION ${d.names.subscription} ENABLE`);
  });

  test('sequences and materialized views are set, and the counts verify ok', async () => {
    const before = await compareServers(source, target, { adminRole: source.user, content: 'counts' });
    expect(before.ok).toBe(false);
    expect(before.mismatches.join('\n')).toMatch(/sequence public\.invoice_no: source at 1044/);

    expect(await copySequences(source, target, DATABASES)).toBe(4);
    expect(await scalar<string>(target, 'shop', `SELECT last_value::text FROM invoice_no`)).toBe('1044');
    expect(await scalar<boolean>(target, 'shop', `SELECT is_called FROM never_used`)).toBe(false);
    expect(
      await scalar<boolean>(target, 'shop', `SELECT relispopulated FROM pg_class WHERE relname = 'totals'`),
    ).toBe(true);

    const report = await compareServers(source, target, { adminRole: source.user, content: 'counts' });
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.classes?.['large objects']).toBeUndefined();
    // A view is refreshed on the target from the replicated rows: the source's, made before the writer ran,
    // holds fewer; counts compare only whether each is populated, and say so.
    expect(report.notes).toContainEqual(
      expect.stringMatching(/^shop: 2 materialized view\(s\): refreshed on the target/),
    );
    expect(await scalar<number>(target, 'shop', 'SELECT count(*)::int FROM totals')).toBe(
      ROWS + writer.ids.length,
    );
    expect(report.rowsVerified).toBeGreaterThan(ROWS);
    // The default still hashes the rows, and sees the migration's publications, which are the source's only.
    const hashed = await compareServers(source, target, { adminRole: source.user });
    expect(hashed.mismatches).toEqual([
      ...named.flatMap((d) => [
        `${d.name}: comment on publication ${d.names.publication}: missing on target`,
        `${d.name}: publication ${d.names.publication}: missing on target`,
      ]),
      `shop: materialized view public.totals: source ${ROWS} rows, target ${ROWS + writer.ids.length}`,
    ]);
    expect(await schemaDifferences(source, target, DATABASES)).toEqual([]);
  });

  test('a DDL change on the source is named, and stops the catch-up with that name', async () => {
    await run(source, 'shop', 'ALTER TABLE orders ADD COLUMN note text');
    const differences = await schemaDifferences(source, target, DATABASES);
    expect(differences).toEqual([expect.stringMatching(/^shop: table public\.orders: .*column note/)]);
    // The next write to orders carries the new column, which the target cannot apply.
    await run(source, 'shop', `INSERT INTO orders (customer, note) VALUES ('after ddl', 'x')`);
    const failure = await waitForCatchUp(source, target, named, { timeoutMs: 120_000 }).catch(
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(SchemaChangedError);
    expect((failure as SchemaChangedError).message).toMatch(/shop: table public\.orders: .*column note/);
    expect((failure as SchemaChangedError).differences).toEqual(differences);
  });

  test('drop leaves no slot, publication or subscription; twice is fine', async () => {
    const results = [];
    for (const db of named) results.push(await dropDatabaseReplication(source, target, db.name, db.names));
    for (const [i, r] of results.entries()) {
      const { name, names } = named[i];
      expect(r.leftBehind).toEqual([]);
      expect(r.dropped).toEqual(
        expect.arrayContaining([
          `subscription ${name}/${names.subscription}`,
          `slot ${names.slot}`,
          `publication ${name}/${names.publication}`,
        ]),
      );
    }
    expect(await replicationObjects(source)).toEqual([]);
    expect(await replicationObjects(target)).toEqual([]);
    for (const db of named) {
      expect(await dropDatabaseReplication(source, target, db.name, db.names)).toEqual({
        dropped: [],
        leftBehind: [],
      });
    }
  });
});

describe('clean-up when a side is gone', () => {
  let names: ReplicationNames;

  beforeAll(async () => {
    names = replicationNames('logical-pg-one-side', 'postgres');
    // The earlier replication left its rows: this one's initial copy brings them again.
    await run(target, 'postgres', 'TRUNCATE notes');
    // An attempt that died after making the publication and the slot, before its subscription was
    // committed: the next one subscribes with create_slot = false.
    await run(
      source,
      'postgres',
      `CREATE PUBLICATION ${names.publication} FOR TABLE notes`,
      `SELECT pg_create_logical_replication_slot('${names.slot}', 'pgoutput')`,
    );
    await startDatabaseReplication(source, target, 'postgres', {
      names,
      sourceConninfo: conninfo(),
      replicaIdentityFull: [],
    });
    const active = await waitFor(
      async () =>
        (await scalar<number>(
          source,
          'postgres',
          `SELECT count(*)::int FROM pg_replication_slots WHERE slot_name = '${names.slot}' AND active`,
        )) === 1,
      60_000,
    );
    expect(active).toBe(true);
    const copied = await waitFor(
      async () => (await scalar<number>(target, 'postgres', 'SELECT count(*)::int FROM notes')) === 1,
      60_000,
    );
    expect(copied).toBe(true);
  });

  test('a target that stopped applying makes the catch-up fail with CatchUpTimeoutError', async () => {
    await run(target, 'postgres', `ALTER SUBSCRIPTION ${names.subscription} DISABLE`);
    await run(source, 'postgres', `INSERT INTO notes VALUES (2, 'not applied')`);
    const failure = await waitForCatchUp(source, target, [{ name: 'postgres', names }], {
      timeoutMs: 1500,
    }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(CatchUpTimeoutError);
    expect((failure as Error).message).toMatch(
      /"postgres": \d+ bytes of WAL behind.*come back up on the source/,
    );
    await run(target, 'postgres', `ALTER SUBSCRIPTION ${names.subscription} ENABLE`);
  });

  test('without the target, the source slot (held by a live subscriber) and publication are dropped', async () => {
    const result = await dropDatabaseReplication(source, undefined, 'postgres', names);
    expect(result.leftBehind).toEqual([]);
    // A table-sync slot the initial copy may have left (the subscription was disabled during it) goes too:
    // the publication's comment names the target's system identifier, which its name ends with.
    expect(result.dropped).toEqual([
      `slot ${names.slot}`,
      ...result.dropped.filter((d) => /^slot pg_\d+_sync_\d+_\d+$/.test(d)),
      `publication postgres/${names.publication}`,
    ]);
    expect(await replicationObjects(source)).toEqual([]);
    // Then without the source: the subscription goes, and the source's SQL is what is left to run.
    const rest = await dropDatabaseReplication(undefined, target, 'postgres', names);
    expect(rest.dropped).toEqual([`subscription postgres/${names.subscription}`]);
    const sysid = await scalar<string>(
      target,
      'postgres',
      'SELECT system_identifier::text FROM pg_control_system()',
    );
    const ours = `(slot_name = '${names.slot}' OR (database = 'postgres' AND slot_name ~ '^pg_[0-9]+_sync_[0-9]+_${sysid}$'))`;
    expect(rest.leftBehind).toEqual([
      `on the source, any database: SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE ${ours} AND active_pid IS NOT NULL; SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE ${ours};`,
      `on the source, database "postgres": DROP PUBLICATION IF EXISTS "${names.publication}";`,
    ]);
    // The SQL is what an operator runs, and running it twice is fine.
    const sql = rest.leftBehind.map((l) => l.slice(l.indexOf(': ') + 2)).join(' ');
    await run(source, 'postgres', sql, sql);
    expect(await replicationObjects(target)).toEqual([]);
  });

  test('a CREATE SUBSCRIPTION under way stops when its signal aborts', async () => {
    // A "source" that accepts the connection and never answers: the CREATE waits on it.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const other = replicationNames('logical-pg-cancelled', 'postgres');
    const controller = new AbortController();
    const creating = `SELECT count(*)::int FROM pg_stat_activity
      WHERE state = 'active' AND query LIKE 'CREATE SUBSCRIPTION%' AND pid <> pg_backend_pid()`;
    try {
      const started = startDatabaseReplication(source, target, 'postgres', {
        names: other,
        sourceConninfo: `host=127.0.0.1 port=${port} user=nobody password=x connect_timeout=600`,
        replicaIdentityFull: [],
        signal: controller.signal,
      }).catch((e: unknown) => e as Error);
      expect(
        await waitFor(async () => (await scalar<number>(target, 'postgres', creating)) === 1, 60_000),
      ).toBe(true);
      controller.abort(new Error('cancelled (test)'));
      // Without the cancel, the statement would wait out connect_timeout on the server.
      const stopped = await waitFor(
        async () => (await scalar<number>(target, 'postgres', creating)) === 0,
        30_000,
      );
      expect(stopped).toBe(true);
      expect(((await started) as Error).message).toBe('cancelled (test)');
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
    expect((await dropDatabaseReplication(source, target, 'postgres', other)).leftBehind).toEqual([]);
    expect(await replicationObjects(target)).toEqual([]);
  });

  test('a wrong password for the source is refused without being told', async () => {
    const other = replicationNames('logical-pg-bad-password', 'postgres');
    const secret = 'Wrong-Secret-4711';
    // A server that logs DDL, and every failed statement (the default log_min_error_statement).
    await run(target, 'postgres', `ALTER SYSTEM SET log_statement = 'ddl'`, 'SELECT pg_reload_conf()');
    const failure = await startDatabaseReplication(source, target, 'postgres', {
      names: other,
      sourceConninfo: `host=${source.host} port=${source.port} user=${source.user} password=${secret}`,
      replicaIdentityFull: [],
    }).catch((e: unknown) => e as Error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toMatch(/password authentication failed/);
    expect(`${(failure as Error).message}\n${(failure as Error).stack}`).not.toContain(secret);
    await run(target, 'postgres', 'ALTER SYSTEM RESET log_statement', 'SELECT pg_reload_conf()');
    const dataDir = await scalar<string>(target, 'postgres', 'SHOW data_directory');
    const log = await readFile(join(dirname(dataDir), 'server.log'), 'utf8');
    expect(log).toContain('password authentication failed');
    expect(log).not.toContain(secret);
    const cleanup = await dropDatabaseReplication(source, target, 'postgres', other);
    expect(cleanup.leftBehind).toEqual([]);
    expect(await replicationObjects(source)).toEqual([]);
    expect(await replicationObjects(target)).toEqual([]);
  });
});
