// The benchmark's sources: PostgreSQL 14 clusters of the local platform filled inside the server (with
// generate_series, no client round trips) to about a given size: a pgbench-style database (three quarters)
// and a database of orders with a jsonb column and a GIN index (a quarter). The platform's own database
// "db" holds the writer app's events table (method logical's runs write there while they copy).
import type { Client } from 'pg';
import type { DatabaseConnection } from '../../src/platform/platform';
import { quoteIdent, withClient } from '../../src/pg/connection';
import { totalDatabaseSize } from '../../src/pg/inspect';
import { type BenchEnv, ENV } from './env';

const MiB = 1024 * 1024;

export interface Source {
  handle: string;
  /** What was asked for (MiB of data in pgbench + orders). */
  sizeMiB: number;
  /** What the data added: pgbench and orders beyond two empty databases (MiB). */
  dataMiB: number;
  /** pg_database_size of every database, after the fill (MiB). */
  onDiskMiB: number;
  conn: DatabaseConnection;
}

/** The spec every local database of the bench is created with (sizes only matter on Aptible). */
export function databaseSpec(handle: string, version: string) {
  return { handle, environment: ENV, version, diskSizeGb: 10, containerSizeMb: 1024, createdBy: 'bench' };
}

const PGBENCH_SCHEMA = `
  CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88)) WITH (fillfactor = 100);
  CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100);
  CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor = 100);
  CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));`;
// pgbench -i adds the keys after the data; pgbench_history has none, as in pgbench.
const PGBENCH_KEYS = `
  ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid);
  ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid);
  ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);
  INSERT INTO pgbench_branches SELECT b, 0, '' FROM generate_series(1, $1::int) b;
  INSERT INTO pgbench_tellers SELECT t, 1 + (t - 1) / 10, 0, '' FROM generate_series(1, 10 * $1::int) t;`;
const PGBENCH_BATCH = `INSERT INTO pgbench_accounts
  SELECT a, 1 + (a - 1) / 100000, 0, '' FROM generate_series($1::int + 1, $2::int) a`;

const ORDERS_SCHEMA = `
  CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE);
  CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers, details jsonb NOT NULL,
                       created_at timestamptz NOT NULL);
  CREATE INDEX orders_details ON orders USING gin (details);
  CREATE SEQUENCE invoice_number START 1000;
  INSERT INTO customers SELECT g, 'Customer ' || g, 'c' || g || '@example.com' FROM generate_series(0, 999) g;
  SELECT setval('invoice_number', 4242);`;
const ORDERS_BATCH = `INSERT INTO orders (customer_id, details, created_at)
  SELECT g % 1000, jsonb_build_object('sku', 'SKU-' || g % 97, 'qty', 1 + g % 7,
           'tags', jsonb_build_array('t' || g % 13, 't' || g % 29), 'note', md5(g::text)),
         timestamptz '2024-01-01' + g * interval '1 second'
  FROM generate_series($1::bigint + 1, $2::bigint) g`;

export const EVENTS_SCHEMA = `CREATE TABLE events (id bigserial PRIMARY KEY, note text NOT NULL,
  written_at timestamptz NOT NULL DEFAULT clock_timestamp())`;

const dbSize = async (c: Client) =>
  Number((await c.query('SELECT pg_database_size(current_database()) AS n')).rows[0].n);

/** Inserts rows in batches (sized from the bytes per row so far) until the database has grown by `bytes`. */
async function grow(c: Client, batchSql: string, bytes: number): Promise<number> {
  const empty = await dbSize(c);
  let rows = 0;
  let batch = Math.max(1000, Math.min(50_000, Math.ceil(bytes / 200)));
  for (let now = empty; now - empty < bytes;) {
    await c.query(batchSql, [rows, rows + batch]);
    rows += batch;
    now = await dbSize(c);
    const perRow = Math.max(1, (now - empty) / rows);
    batch = Math.max(1000, Math.min(2_000_000, Math.ceil((bytes - (now - empty)) / perRow)));
  }
  return rows;
}

async function createDatabase(conn: DatabaseConnection, name: string): Promise<void> {
  await withClient(conn, conn.database, (c) => c.query(`CREATE DATABASE ${quoteIdent(name)}`));
}

/** Fills the two databases; the sizes count what the data adds to an empty database. */
async function fill(conn: DatabaseConnection, dataBytes: number): Promise<void> {
  await createDatabase(conn, 'pgbench');
  await withClient(conn, 'pgbench', async (c) => {
    await c.query(PGBENCH_SCHEMA);
    // The keys come after the data (as in pgbench -i), so aim at the heap's share of the total.
    const accounts = await grow(c, PGBENCH_BATCH, dataBytes * 0.75 * 0.86);
    for (const sql of PGBENCH_KEYS.split(';').filter((s) => s.trim())) {
      await c.query(sql, sql.includes('$1') ? [Math.ceil(accounts / 100_000)] : []);
    }
    await c.query('VACUUM (ANALYZE)');
  });
  await createDatabase(conn, 'orders');
  await withClient(conn, 'orders', async (c) => {
    await c.query(ORDERS_SCHEMA);
    await grow(c, ORDERS_BATCH, dataBytes * 0.25);
    await c.query('VACUUM (ANALYZE)');
  });
  await withClient(conn, conn.database, (c) => c.query(EVENTS_SCHEMA));
}

/** Creates a 14 source and fills it to about `sizeMiB` of data. */
export async function buildSource(env: BenchEnv, handle: string, sizeMiB: number): Promise<Source> {
  await env.platform.createDatabase(databaseSpec(handle, '14'));
  const conn = await env.platform.connect(handle, ENV);
  await fill(conn, sizeMiB * MiB);
  const data = await withClient(conn, conn.database, async (c) =>
    Number(
      (
        await c.query(`SELECT pg_database_size('pgbench') + pg_database_size('orders')
                              - 2 * pg_database_size('postgres') AS n`)
      ).rows[0].n,
    ),
  );
  return { handle, sizeMiB, dataMiB: data / MiB, onDiskMiB: (await totalDatabaseSize(conn)) / MiB, conn };
}

/** Rows in the events table (the writer's), and their ids. */
export async function eventIds(conn: DatabaseConnection): Promise<string[]> {
  return withClient(conn, conn.database, async (c) =>
    (await c.query<{ id: string }>('SELECT id::text AS id FROM events ORDER BY id')).rows.map((r) => r.id),
  );
}

/** How many of `ids` are missing from the events table of `conn`. */
export async function missingEvents(conn: DatabaseConnection, ids: string[]): Promise<number> {
  return withClient(conn, conn.database, async (c) => {
    const res = await c.query('SELECT count(*) AS n FROM events WHERE id = ANY($1::bigint[])', [ids]);
    return ids.length - Number(res.rows[0].n);
  });
}
