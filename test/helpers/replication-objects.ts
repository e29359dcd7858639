// What logical replication leaves on a server, read from the catalogs directly (not through src/pg/logical),
// so a test can check that a migration left nothing: a slot left on a source keeps its WAL forever.
import { type PgTarget, withClient } from '../../src/pg/connection';

/** The connectable databases of a server. */
export async function databasesOf(server: PgTarget): Promise<string[]> {
  return withClient(server, server.database, async (c) =>
    (
      await c.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datallowconn AND datname <> 'template0' ORDER BY 1`,
      )
    ).rows.map((r) => r.datname),
  );
}

/**
 * Every replication slot, subscription, replication origin and (in each database) publication of the
 * server, one line each ("slot x (db)", "publication db/x", ...). Empty when replication left nothing.
 */
export async function replicationObjects(server: PgTarget): Promise<string[]> {
  const found: string[] = [];
  await withClient(server, server.database, async (c) => {
    const slots = await c.query<{ s: string }>(
      `SELECT format('slot %s (%s, %s)', slot_name, coalesce(database, '-'), slot_type) AS s
         FROM pg_replication_slots`,
    );
    // pg_subscription is a shared catalog: every subscription of the server shows from any database.
    const subs = await c.query<{ s: string }>(
      `SELECT format('subscription %s/%s', d.datname, s.subname) AS s
         FROM pg_subscription s LEFT JOIN pg_database d ON d.oid = s.subdbid`,
    );
    const origins = await c.query<{ s: string }>(
      `SELECT 'origin ' || roname AS s FROM pg_replication_origin`,
    );
    for (const res of [slots, subs, origins]) found.push(...res.rows.map((r) => r.s));
  });
  for (const db of await databasesOf(server)) {
    await withClient(server, db, async (c) => {
      const pubs = await c.query<{ pubname: string }>('SELECT pubname FROM pg_publication');
      found.push(...pubs.rows.map((r) => `publication ${db}/${r.pubname}`));
    });
  }
  return found.sort();
}

/** Every sequence of every connectable database: "db.schema.name" → last_value (null before first use). */
export async function sequenceValues(server: PgTarget): Promise<Record<string, bigint | null>> {
  const out: Record<string, bigint | null> = {};
  for (const db of await databasesOf(server)) {
    await withClient(server, db, async (c) => {
      const res = await c.query<{ s: string; v: string | null }>(
        `SELECT format('%s.%I.%I', current_database(), schemaname, sequencename) AS s, last_value::text AS v
           FROM pg_sequences`,
      );
      for (const { s, v } of res.rows) out[s] = v === null ? null : BigInt(v);
    });
  }
  return out;
}

/** Tables of the subscriptions in `databases` of `target` whose initial copy is not finished (not r or s). */
export async function tablesStillCopying(target: PgTarget, databases: string[]): Promise<number> {
  let n = 0;
  for (const db of databases) {
    n += await withClient(target, db, async (c) =>
      Number(
        (await c.query(`SELECT count(*) AS n FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')`))
          .rows[0].n,
      ),
    );
  }
  return n;
}
