import type { Client } from 'pg';
import { type PgTarget, openClient } from '../connection';

/**
 * Settings that make the text of a value the same on both servers, whatever their configuration (row
 * checksums hash the rows' text; catalog values are compared as text):
 * - TimeZone, DateStyle, IntervalStyle: timestamptz, date/timestamp and interval output;
 * - extra_float_digits = 3: shortest-exact float output on 12+ (older servers print differently: see
 *   canChecksum), independent of the server's default;
 * - bytea_output = hex: the server's default may be 'escape';
 * - lc_monetary = C: money output follows it (C exists everywhere; a locale may not exist on the target);
 * - search_path = pg_catalog: reg* values, function signatures and view definitions come out schema-
 *   qualified, so they do not depend on a user's search_path;
 * - statement_timeout = 0 and lock_timeout = 0: a long checksum must not be cut by a role's default;
 * - row_security = off: a verifying role subject to row-level security gets an error, instead of
 *   checksumming only the rows its policies let it see.
 * lc_numeric, lc_time and xmloption affect only to_char and input, not output functions.
 */
export const OUTPUT_SETTINGS = `SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD';
  SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex';
  SET LOCAL lc_monetary = 'C'; SET LOCAL search_path = pg_catalog; SET LOCAL statement_timeout = 0;
  SET LOCAL lock_timeout = 0; SET LOCAL row_security = off`;

/** Connections to one database of one server, all reading the same snapshot. */
export interface SnapshotPool {
  /** Runs the catalog queries; also one of `all`. */
  leader: Client;
  all: Client[];
  major: number;
  close(): Promise<void>;
}

/**
 * Opens `size` read-only connections on `db` in one exported snapshot (pg_export_snapshot, then SET
 * TRANSACTION SNAPSHOT), so every table is read as of the same moment whichever connection reads it.
 */
export async function openSnapshotPool(t: PgTarget, db: string, size: number): Promise<SnapshotPool> {
  const clients: Client[] = [];
  const close = async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  };
  try {
    const leader = await openClient(t, db);
    clients.push(leader);
    await leader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows } = await leader.query<{ snapshot: string; v: string }>(
      `SELECT pg_export_snapshot() AS snapshot, current_setting('server_version_num') AS v`,
    );
    await leader.query(OUTPUT_SETTINGS);
    const others = await Promise.all(
      Array.from({ length: Math.max(0, size - 1) }, async () => {
        const c = await openClient(t, db);
        clients.push(c);
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await c.query(`SET TRANSACTION SNAPSHOT '${rows[0].snapshot.replace(/'/g, "''")}'`);
        await c.query(OUTPUT_SETTINGS);
        return c;
      }),
    );
    return { leader, all: [leader, ...others], major: Math.floor(Number(rows[0].v) / 10000), close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A read-only transaction on the maintenance database, for the cluster-wide catalogs. */
export async function openCatalogSession(t: PgTarget): Promise<{ client: Client; major: number }> {
  const client = await openClient(t, t.database);
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query(OUTPUT_SETTINGS);
    const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
    return { client, major: Math.floor(Number(rows[0].v) / 10000) };
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
}

/** Opens the same thing on both servers; when one side fails, the other is closed before the error goes on. */
export async function openPair<T>(
  source: () => Promise<T>,
  target: () => Promise<T>,
  close: (opened: T) => Promise<void>,
): Promise<[T, T]> {
  const [s, t] = await Promise.allSettled([source(), target()]);
  if (s.status === 'fulfilled' && t.status === 'fulfilled') return [s.value, t.value];
  for (const r of [s, t]) if (r.status === 'fulfilled') await close(r.value);
  throw s.status === 'rejected' ? s.reason : (t as PromiseRejectedResult).reason;
}
