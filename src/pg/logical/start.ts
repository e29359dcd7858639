// Starting one database's replication: publication on the source, subscription (and its slot) on the
// target. Idempotent: a retry finds what an earlier attempt made, by name, and makes only what is missing.
import type { Client } from 'pg';
import { type PgTarget, quoteIdent, quoteLiteral, withClient } from '../connection';
import {
  SUBSCRIBER_NOTE,
  conninfoFor,
  publishedTables,
  redactConninfoError,
  systemIdentifier,
} from './catalog';
import type { ReplicationNames } from './names';

const NAME = /^[a-z0-9_]{1,63}$/;

/**
 * Creates what is missing of one database's replication: REPLICA IDENTITY FULL on the accepted tables (on
 * both sides, so the schemas stay alike for the check at cutover), the publication on the source (its
 * comment records the target's system identifier, which names the table-sync slots the initial copy makes
 * on the source: a clean-up without the target can still find them), then the subscription on the target, which creates the slot on the source and starts the initial copy. A slot left
 * by an attempt that died before its subscription was committed is used as it is. `sourceConninfo` is how
 * the TARGET SERVER reaches the source (SECRET, libpq key=value); a missing dbname is set to `database`.
 */
export async function startDatabaseReplication(
  source: PgTarget,
  target: PgTarget,
  database: string,
  opts: { names: ReplicationNames; sourceConninfo: string; replicaIdentityFull: readonly string[] },
): Promise<void> {
  const { names } = opts;
  for (const name of [names.publication, names.slot, names.subscription]) {
    if (!NAME.test(name))
      throw new Error(`invalid replication object name "${name}": [a-z0-9_], 1 to 63 characters`);
  }
  const subscriber = await withClient(target, target.database, systemIdentifier);
  await withClient(source, database, async (c) => {
    await setReplicaIdentityFull(c, opts.replicaIdentityFull);
    await ensurePublication(c, names.publication, subscriber);
  });
  await withClient(target, database, async (c) => {
    await setReplicaIdentityFull(c, opts.replicaIdentityFull);
    await ensureSubscription(c, source, database, names, conninfoFor(opts.sourceConninfo, database));
  });
}

/**
 * REPLICA IDENTITY FULL on each listed table ("schema.table") and on every partition of a listed
 * partitioned table, unless already set. ALTER TABLE takes a short exclusive lock: lock_timeout keeps it from
 * queueing behind a long transaction of the application's (and blocking everyone behind it); a retry tries
 * again.
 */
async function setReplicaIdentityFull(c: Client, entries: readonly string[]): Promise<void> {
  if (entries.length === 0) return;
  const { rows } = await c.query<{ ident: string }>(
    `WITH RECURSIVE listed AS (
       SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname || '.' || c.relname = ANY ($1)
       UNION
       SELECT i.inhrelid FROM listed l JOIN pg_inherits i ON i.inhparent = l.oid
         JOIN pg_class pc ON pc.oid = i.inhrelid AND pc.relispartition
     )
     SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS ident
       FROM listed l JOIN pg_class c ON c.oid = l.oid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND c.relreplident <> 'f'
      ORDER BY 1`,
    [entries],
  );
  if (rows.length === 0) return;
  await c.query(`SET lock_timeout = '5s'`);
  for (const { ident } of rows) await c.query(`ALTER TABLE ${ident} REPLICA IDENTITY FULL`);
  await c.query('RESET lock_timeout');
}

/**
 * The publication lists the tables there are now (catalog.ts: PUBLISHED_TABLES). A table created later is
 * not published: DDL is not replicated, and the schema check at cutover names it.
 */
async function ensurePublication(
  c: Client,
  publication: string,
  subscriber: string | undefined,
): Promise<void> {
  const { rowCount } = await c.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
  if (!rowCount) {
    const tables = await publishedTables(c);
    const list = tables.length ? ` FOR TABLE ${tables.map((t) => t.ident).join(', ')}` : '';
    try {
      await c.query(`CREATE PUBLICATION ${quoteIdent(publication)}${list}`);
    } catch (err) {
      // Another attempt made it meanwhile.
      if ((err as { code?: string }).code !== '42710') throw err;
    }
  }
  if (subscriber) {
    await c.query(
      `COMMENT ON PUBLICATION ${quoteIdent(publication)} IS ${quoteLiteral(`${SUBSCRIBER_NOTE}${subscriber}`)}`,
    );
  }
}

async function ensureSubscription(
  c: Client,
  source: PgTarget,
  database: string,
  names: ReplicationNames,
  conninfo: string,
): Promise<void> {
  const { rows } = await c.query<{ enabled: boolean }>(
    `SELECT s.subenabled AS enabled FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
      WHERE s.subname = $1 AND d.datname = current_database()`,
    [names.subscription],
  );
  if (rows.length) {
    if (!rows[0].enabled) await c.query(`ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} ENABLE`);
    return;
  }
  const slotExists = await withClient(source, source.database, async (s) => {
    const r = await s.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [names.slot]);
    return (r.rowCount ?? 0) > 0;
  });
  const create = (createSlot: boolean) =>
    c.query(
      `CREATE SUBSCRIPTION ${quoteIdent(names.subscription)} CONNECTION ${quoteLiteral(conninfo)}
         PUBLICATION ${quoteIdent(names.publication)}
         WITH (slot_name = ${quoteLiteral(names.slot)}, create_slot = ${createSlot}, copy_data = true, enabled = true)`,
    );
  try {
    await create(!slotExists);
  } catch (err) {
    // Another attempt made it meanwhile.
    if ((err as { code?: string }).code === '42710') return;
    const message = err instanceof Error ? err.message : String(err);
    if (!slotExists && /replication slot .* already exists/.test(message)) {
      try {
        await create(false);
        return;
      } catch (again) {
        throw redactConninfoError(
          conninfo,
          again,
          `creating subscription in database ${quoteIdent(database)}: `,
        );
      }
    }
    throw redactConninfoError(conninfo, err, `creating subscription in database ${quoteIdent(database)}: `);
  }
}
