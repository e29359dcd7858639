// A PostgreSQL 14 source of the local platform with the demo's sample data, bulk tables that make the
// initial sync last, and the demo's writer app writing to it: what an online migration runs against.
import { join } from 'node:path';
import { loadSampleData } from '../../src/demo/sample-data';
import { quoteIdent, withClient } from '../../src/pg/connection';
import type { LocalPlatform } from '../../src/platform/local';
import type { DatabaseConnection } from '../../src/platform/platform';

const WRITER = join(__dirname, '..', '..', 'src', 'demo', 'writer.js');

export interface LiveSourceOptions {
  handle: string;
  environment: string;
  /** Tables bulk_1..n, in database "db" and in "inventory" alternately, each of `bulkRows` rows. */
  bulkTables?: number;
  bulkRows?: number;
}

export async function createLiveSource(
  platform: LocalPlatform,
  { handle, environment, bulkTables = 0, bulkRows = 0 }: LiveSourceOptions,
): Promise<DatabaseConnection> {
  await platform.createDatabase({
    handle,
    environment,
    version: '14',
    diskSizeGb: 1,
    containerSizeMb: 1024,
    createdBy: 'test',
  });
  const source = await platform.connect(handle, environment);
  await loadSampleData(source);
  for (let i = 1; i <= bulkTables; i++) {
    const db = i % 2 === 1 ? source.database : 'inventory';
    const table = quoteIdent(`bulk_${i}`);
    await withClient(source, db, (c) =>
      c.query(`
        CREATE TABLE ${table} (id bigint PRIMARY KEY, payload text NOT NULL, n int NOT NULL);
        INSERT INTO ${table} SELECT g, repeat(md5(g::text), 4), g % 1000 FROM generate_series(1, ${Number(bulkRows)}) g;
        ANALYZE ${table};
      `),
    );
  }
  return source;
}

/** The demo's writer (a row into db.public.events every 100 ms per container) as app `app`, on `url`. */
export async function startWriter(
  platform: LocalPlatform,
  app: string,
  environment: string,
  url: string,
  containers: number,
): Promise<void> {
  await platform.createApp(app, { cmd: `exec node ${JSON.stringify(WRITER)}` }, environment);
  await platform.setConfig(app, { DB_URL: url }, environment);
  await platform.scaleService(app, 'cmd', containers, environment);
}

export async function writerContainers(
  platform: LocalPlatform,
  app: string,
  environment: string,
): Promise<number | undefined> {
  const services = await platform.listServices(environment);
  return services.find((s) => s.app === app && s.service === 'cmd')?.containerCount;
}

/** The ids of db.public.events, the writer's table. */
export async function eventIds(conn: DatabaseConnection): Promise<bigint[]> {
  return withClient(conn, conn.database, async (c) =>
    (await c.query<{ id: string }>('SELECT id::text AS id FROM events ORDER BY id')).rows.map((r) =>
      BigInt(r.id),
    ),
  );
}

export async function maxEventId(conn: DatabaseConnection): Promise<bigint> {
  return withClient(conn, conn.database, async (c) =>
    BigInt((await c.query<{ m: string }>('SELECT coalesce(max(id), 0)::text AS m FROM events')).rows[0].m),
  );
}

/** How many of `ids` are in db.public.events on `conn`. */
export async function eventsPresent(conn: DatabaseConnection, ids: bigint[]): Promise<number> {
  return withClient(conn, conn.database, async (c) =>
    Number(
      (
        await c.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE id = ANY($1::bigint[])', [
          ids.map(String),
        ])
      ).rows[0].n,
    ),
  );
}
