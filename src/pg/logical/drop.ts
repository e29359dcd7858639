// Clean-up of one database's replication, on every path (success, rollback, abort): a slot left on the
// source keeps its WAL forever and fills the source's disk, so what cannot be dropped is said as exact SQL.
import type { Client } from 'pg';
import type { ReplicationCleanupResult } from '../../activities/contract';
import { type PgTarget, quoteIdent, quoteLiteral, withClient } from '../connection';
import { SUBSCRIBER_NOTE, sleep, systemIdentifier } from './catalog';
import type { ReplicationNames } from './names';

/** How long a slot's WAL sender gets to go away after being terminated (a subscriber may reconnect). */
const SLOT_RELEASE_MS = 15_000;

/**
 * Drops the subscription (target), then the slot and the publication (source) of one database. The
 * subscription is detached from its slot first (SET slot_name = NONE), so dropping it never needs the
 * source; the source's side then terminates the WAL sender still holding the slot, drops it and the
 * table-sync slots the subscription's initial copy left (named after the target's system identifier, which
 * the publication's comment also records, for a clean-up without the target).
 * An object that does not exist is fine. `target` undefined: nothing is done there (a subscription on a
 * target that is going away holds nothing of the source's once its slot is dropped). `source` undefined,
 * or a failure on either side: the SQL that remains to run is returned in leftBehind, with where to run it.
 */
export async function dropDatabaseReplication(
  source: PgTarget | undefined,
  target: PgTarget | undefined,
  database: string,
  names: ReplicationNames,
): Promise<ReplicationCleanupResult> {
  const dropped: string[] = [];
  const leftBehind: string[] = [];
  const sub = quoteIdent(names.subscription);
  let systemId: string | undefined;
  let targetRefused: unknown;

  if (target) {
    try {
      const gone = await onDatabase(target, database, async (c) => {
        systemId = await systemIdentifier(c);
        const { rowCount } = await c.query(
          `SELECT 1 FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
            WHERE s.subname = $1 AND d.datname = current_database()`,
          [names.subscription],
        );
        if (!rowCount) return false;
        await c.query(`ALTER SUBSCRIPTION ${sub} DISABLE`);
        await c.query(`ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE)`);
        await c.query(`DROP SUBSCRIPTION IF EXISTS ${sub}`);
        return true;
      });
      if (gone) dropped.push(`subscription ${database}/${names.subscription}`);
    } catch (err) {
      // A database that takes no connections was never replicated (readiness refuses it), unless it was
      // set so afterwards: then its slot on the source says so, below.
      if (refusesConnections(err)) targetRefused = err;
      else
        leftBehind.push(
          `${where('target', target, database, err)}: ALTER SUBSCRIPTION ${sub} DISABLE; ` +
            `ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE); DROP SUBSCRIPTION ${sub};`,
        );
    }
  }

  // Idempotent (a slot already gone is no error), and with the table-sync slots of the initial copy: those
  // of this subscriber when its system identifier is known, else any in this database.
  const slotSql = (slot: string) => {
    const sync = `^pg_[0-9]+_sync_[0-9]+_${systemId ?? '[0-9]+'}$`;
    const ours =
      `(slot_name = ${quoteLiteral(slot)} OR (database = ${quoteLiteral(database)} ` +
      `AND slot_name ~ ${quoteLiteral(sync)}))`;
    return (
      `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE ${ours} AND active_pid IS NOT NULL; ` +
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE ${ours};`
    );
  };
  const publicationSql = `DROP PUBLICATION IF EXISTS ${quoteIdent(names.publication)};`;
  if (!source) {
    leftBehind.push(`${where('source', undefined, undefined)}: ${slotSql(names.slot)}`);
    leftBehind.push(`${where('source', undefined, database)}: ${publicationSql}`);
    return { dropped, leftBehind };
  }
  if (!systemId && target) {
    systemId = await withClient(target, target.database, systemIdentifier).catch(() => undefined);
  }
  if (!systemId) {
    // Without the target, its identifier as the publication's comment recorded it (start.ts).
    await onDatabase(source, database, async (c) => {
      const { rows } = await c.query<{ note: string | null }>(
        `SELECT obj_description(oid, 'pg_publication') AS note FROM pg_publication WHERE pubname = $1`,
        [names.publication],
      );
      const note = rows[0]?.note;
      const id = note?.startsWith(SUBSCRIBER_NOTE) ? note.slice(SUBSCRIBER_NOTE.length) : '';
      if (/^[0-9]+$/.test(id)) systemId = id;
      return true;
    }).catch(() => undefined);
  }
  try {
    const slots = await withClient(source, source.database, async (c) => {
      const out: string[] = [];
      if (await dropSlot(c, names.slot)) out.push(names.slot);
      if (systemId) {
        // pg_<subscription oid>_sync_<table oid>_<subscriber's system identifier>, in this database.
        const { rows } = await c.query<{ slot: string }>(
          `SELECT slot_name AS slot FROM pg_replication_slots
            WHERE database = $1 AND slot_name ~ ('^pg_[0-9]+_sync_[0-9]+_' || $2 || '$')`,
          [database, systemId],
        );
        for (const { slot } of rows) if (await dropSlot(c, slot)) out.push(slot);
      }
      return out;
    });
    dropped.push(...slots.map((s) => `slot ${s}`));
    if (targetRefused !== undefined && slots.includes(names.slot)) {
      leftBehind.push(
        `${where('target', target, database, targetRefused)}: ALTER DATABASE ${quoteIdent(database)} ` +
          `WITH ALLOW_CONNECTIONS true; then, in it: ALTER SUBSCRIPTION ${sub} DISABLE; ` +
          `ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE); DROP SUBSCRIPTION ${sub};`,
      );
    }
  } catch (err) {
    leftBehind.push(`${where('source', source, undefined, err)}: ${slotSql(names.slot)}`);
  }
  try {
    const gone = await onDatabase(source, database, async (c) => {
      const { rowCount } = await c.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [
        names.publication,
      ]);
      if (!rowCount) return false;
      await c.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(names.publication)}`);
      return true;
    });
    if (gone) dropped.push(`publication ${database}/${names.publication}`);
  } catch (err) {
    // Only a database that had this migration's slot can hold its publication.
    if (!refusesConnections(err) || dropped.includes(`slot ${names.slot}`)) {
      const allow = refusesConnections(err)
        ? `ALTER DATABASE ${quoteIdent(database)} WITH ALLOW_CONNECTIONS true; then, in it: `
        : '';
      leftBehind.push(`${where('source', source, database, err)}: ${allow}${publicationSql}`);
    }
  }
  return { dropped, leftBehind };
}

function refusesConnections(err: unknown): boolean {
  return (
    err instanceof Error &&
    /^cannot connect to database .*is not currently accepting connections/s.test(err.message)
  );
}

/** Runs `body` on a database; a database that does not exist holds nothing to drop (resolves to false). */
async function onDatabase(
  t: PgTarget,
  database: string,
  body: (c: Client) => Promise<boolean>,
): Promise<boolean> {
  try {
    return await withClient(t, database, body);
  } catch (err) {
    if (
      err instanceof Error &&
      /^cannot connect to database .*database ".*" does not exist/s.test(err.message)
    )
      return false;
    throw err;
  }
}

/**
 * Drops a slot, terminating the WAL sender that holds it: a subscriber that is still enabled reconnects
 * after wal_retrieve_retry_interval (5 s), so the drop usually comes first; until SLOT_RELEASE_MS it tries
 * again. Resolves to false when there was no such slot.
 */
async function dropSlot(c: Client, slot: string): Promise<boolean> {
  const deadline = Date.now() + SLOT_RELEASE_MS;
  for (;;) {
    const { rows } = await c.query<{ pid: number | null }>(
      'SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    if (rows.length === 0) return false;
    if (rows[0].pid !== null) {
      await c.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
      await sleep(50);
    }
    try {
      await c.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '42704') return false; // dropped meanwhile
      if (code !== '55006' || Date.now() > deadline) throw err; // 55006: still active
      await sleep(100);
    }
  }
}

/** "on the source (host:port), database "db" (failed: reason)": where to run what is left behind. */
function where(side: string, t: PgTarget | undefined, database: string | undefined, err?: unknown): string {
  const server = t ? `on the ${side} (${t.host}:${t.port})` : `on the ${side}`;
  const db = database === undefined ? ', any database' : `, database ${quoteIdent(database)}`;
  const reason =
    err === undefined ? '' : ` (failed: ${(err instanceof Error ? err.message : String(err)).slice(0, 300)})`;
  return `${server}${db}${reason}`;
}
