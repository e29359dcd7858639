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
  opts: {
    names: ReplicationNames;
    sourceConninfo: string;
    replicaIdentityFull: readonly string[];
    /** Cancels a CREATE SUBSCRIPTION under way (pg_cancel_backend), so it cannot outlive a rollback's drop. */
    signal?: AbortSignal;
  },
): Promise<void> {
  const { names } = opts;
  for (const name of [names.publication, names.slot, names.subscription]) {
    if (!NAME.test(name))
      throw new Error(`invalid replication object name "${name}": [a-z0-9_], 1 to 63 characters`);
  }
  const subscriber = await withClient(target, target.database, systemIdentifier);
  const changed = await withClient(source, database, async (c) => {
    await setReplicaIdentityFull(c, opts.replicaIdentityFull);
    return ensurePublication(c, names.publication, subscriber);
  });
  opts.signal?.throwIfAborted();
  await withClient(target, database, async (c) => {
    await setReplicaIdentityFull(c, opts.replicaIdentityFull);
    await ensureSubscription(c, source, target, database, names, conninfoFor(opts.sourceConninfo, database), {
      refresh: changed,
      signal: opts.signal,
    });
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
 * The publication lists the tables there are now (catalog.ts: PUBLISHED_TABLES); one an earlier attempt
 * made is set to them again (ALTER PUBLICATION ... SET TABLE), so a table created since is not left out. A
 * table created after this is not published: DDL is not replicated, and the schema check at cutover names
 * it. Resolves to whether an existing publication's tables changed (its subscription must be refreshed).
 */
async function ensurePublication(
  c: Client,
  publication: string,
  subscriber: string | undefined,
): Promise<boolean> {
  const pub = quoteIdent(publication);
  const tables = await publishedTables(c);
  const { rowCount } = await c.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]);
  let changed = false;
  if (!rowCount) {
    const list = tables.length ? ` FOR TABLE ${tables.map((t) => t.ident).join(', ')}` : '';
    try {
      await c.query(`CREATE PUBLICATION ${pub}${list}`);
    } catch (err) {
      // Another attempt made it meanwhile.
      if ((err as { code?: string }).code !== '42710') throw err;
    }
  } else {
    const { rows } = await c.query<{ ident: string }>(
      `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS ident
         FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
         JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE p.pubname = $1`,
      [publication],
    );
    const had = new Set(rows.map((r) => r.ident));
    const want = new Set(tables.map((t) => t.ident));
    changed = had.size !== want.size || [...want].some((t) => !had.has(t));
    if (changed && want.size > 0) {
      await c.query(`ALTER PUBLICATION ${pub} SET TABLE ${[...want].join(', ')}`);
    } else if (changed) {
      await c.query(`ALTER PUBLICATION ${pub} DROP TABLE ${[...had].join(', ')}`);
    }
  }
  if (subscriber) {
    await c.query(
      `COMMENT ON PUBLICATION ${quoteIdent(publication)} IS ${quoteLiteral(`${SUBSCRIBER_NOTE}${subscriber}`)}`,
    );
  }
  return changed;
}

/**
 * The subscription, made or enabled; refreshed when its publication's tables changed. The CREATE runs in a
 * session that does not log its statement (it holds the source's password: log_statement = ddl or a failure
 * under log_min_error_statement would write it to the target's log), and is cancelled on `signal`.
 */
async function ensureSubscription(
  c: Client,
  source: PgTarget,
  target: PgTarget,
  database: string,
  names: ReplicationNames,
  conninfo: string,
  opts: { refresh: boolean; signal?: AbortSignal },
): Promise<void> {
  const sub = quoteIdent(names.subscription);
  const { rows } = await c.query<{ enabled: boolean }>(
    `SELECT s.subenabled AS enabled FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
      WHERE s.subname = $1 AND d.datname = current_database()`,
    [names.subscription],
  );
  if (rows.length) {
    if (!rows[0].enabled) await c.query(`ALTER SUBSCRIPTION ${sub} ENABLE`);
    if (opts.refresh) await c.query(`ALTER SUBSCRIPTION ${sub} REFRESH PUBLICATION WITH (copy_data = true)`);
    return;
  }
  const slotExists = await withClient(source, source.database, async (s) => {
    const r = await s.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [names.slot]);
    return (r.rowCount ?? 0) > 0;
  });
  await quietStatements(c);
  const create = (createSlot: boolean) =>
    cancellable(target, c, opts.signal, () =>
      c.query(
        `CREATE SUBSCRIPTION ${sub} CONNECTION ${quoteLiteral(conninfo)}
           PUBLICATION ${quoteIdent(names.publication)}
           WITH (slot_name = ${quoteLiteral(names.slot)}, create_slot = ${createSlot}, copy_data = true, enabled = true)`,
      ),
    );
  try {
    await create(!slotExists);
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? err;
    // Another attempt made it meanwhile.
    if ((err as { code?: string }).code === '42710') return;
    const message = err instanceof Error ? err.message : String(err);
    if (!slotExists && /replication slot .* already exists/.test(message)) {
      try {
        await create(false);
        return;
      } catch (again) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? again;
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

/**
 * Keeps this session's statements out of the server's log. Superuser-only settings: where one is refused,
 * the server's own setting stays and the CREATE goes ahead (as it did before).
 */
async function quietStatements(c: Client): Promise<void> {
  for (const set of [
    "SET log_statement = 'none'",
    "SET log_min_error_statement = 'panic'",
    'SET log_min_duration_statement = -1',
  ]) {
    await c.query(set).catch(() => undefined);
  }
}

/**
 * Runs `query` on `c`; when `signal` aborts meanwhile, cancels it on the server (pg_cancel_backend from
 * another session), so the statement stops rather than finishing after the caller gave up.
 */
async function cancellable<T>(
  target: PgTarget,
  c: Client,
  signal: AbortSignal | undefined,
  query: () => Promise<T>,
): Promise<T> {
  if (!signal) return query();
  signal.throwIfAborted();
  const pid = (c as unknown as { processID: number | null }).processID;
  const onAbort = () => {
    if (pid === null) return;
    void withClient(target, target.database, (k) => k.query('SELECT pg_cancel_backend($1)', [pid])).catch(
      () => undefined,
    );
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await query();
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
