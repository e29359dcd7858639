// Where replication stands: the initial copy per database (tables done, bytes) from the target's
// pg_subscription_rel and the source's table sizes, and the lag from the source's slots and WAL senders.
import type { Client } from 'pg';
import type { ReplicationDatabaseProgress, ReplicationSample } from '../../activities/contract';
import { type PgTarget, withClient } from '../connection';
import { serverMajor } from './catalog';
import type { ReplicationNames } from './names';

export interface ReplicatedDatabase {
  name: string;
  names: ReplicationNames;
}

export interface SlotLag {
  slot: string;
  /** WAL written on the source that the subscription has not confirmed; undefined before it confirmed any. */
  lagBytes?: number;
  /** Whether everything up to `upTo` (when given) is confirmed. */
  confirmed: boolean;
  /** Whether a WAL sender holds the slot. */
  active: boolean;
}

/** The slots' lag behind the source's current WAL position, or behind `upTo` when given. */
export async function slotLags(c: Client, slots: string[], upTo?: string): Promise<Map<string, SlotLag>> {
  const { rows } = await c.query<{
    slot: string;
    lag: number | null;
    confirmed: boolean | null;
    active: boolean;
  }>(
    `SELECT slot_name AS slot, active,
            pg_wal_lsn_diff(coalesce($2::pg_lsn, pg_current_wal_lsn()), confirmed_flush_lsn)::float8 AS lag,
            confirmed_flush_lsn >= coalesce($2::pg_lsn, pg_current_wal_lsn()) AS confirmed
       FROM pg_replication_slots WHERE slot_name = ANY ($1)`,
    [slots, upTo ?? null],
  );
  return new Map(
    rows.map((r) => [
      r.slot,
      {
        slot: r.slot,
        lagBytes: r.lag === null ? undefined : Math.max(0, r.lag),
        confirmed: r.confirmed === true,
        active: r.active,
      },
    ]),
  );
}

/** Each table of a subscription with its state, on the target (pg_subscription_rel is per database). */
export async function subscriptionTables(
  c: Client,
  subscription: string,
): Promise<{ schema: string; name: string; state: string }[]> {
  const { rows } = await c.query<{ schema: string; name: string; state: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, sr.srsubstate::text AS state
       FROM pg_subscription_rel sr JOIN pg_subscription s ON s.oid = sr.srsubid
       JOIN pg_class c ON c.oid = sr.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [subscription],
  );
  return rows;
}

/** 'r' (ready) and 's' (sync done: the apply worker takes it from there) mean the initial copy is over. */
export const copied = (state: string) => state === 'r' || state === 's';

const key = (schema: string, name: string) => `${schema}\u0000${name}`;

/** One sample: per-database tables done/total, bytes, lag in bytes (and seconds when known). */
export async function sampleReplication(
  source: PgTarget,
  target: PgTarget,
  databases: ReplicatedDatabase[],
): Promise<ReplicationSample> {
  const at = Date.now();
  const { lags, seconds } = await withClient(source, source.database, async (c) => ({
    lags: await slotLags(
      c,
      databases.map((d) => d.names.slot),
    ),
    seconds: await senderLagSeconds(
      c,
      databases.map((d) => d.names.subscription),
    ),
  }));
  const out: ReplicationDatabaseProgress[] = [];
  const errors = await withClient(target, target.database, (c) =>
    subscriptionErrors(
      c,
      databases.map((d) => d.names.subscription),
    ),
  );
  for (const db of databases) {
    const sizes = await withClient(source, db.name, (c) => publishedSizes(c, db.names.publication));
    const states = await withClient(target, db.name, (c) => subscriptionTables(c, db.names.subscription));
    const done = states.filter((t) => copied(t.state)).map((t) => key(t.schema, t.name));
    let bytesDone = 0;
    for (const k of done) bytesDone += sizes.get(k) ?? 0;
    const progress: ReplicationDatabaseProgress = {
      name: db.name,
      tablesTotal: sizes.size,
      tablesDone: done.filter((k) => sizes.has(k)).length,
      bytesTotal: [...sizes.values()].reduce((a, b) => a + b, 0),
      bytesDone,
    };
    const slot = lags.get(db.names.slot);
    if (slot?.lagBytes !== undefined) progress.lagBytes = slot.lagBytes;
    if (slot) progress.slotActive = slot.active;
    const counted = errors?.get(db.names.subscription);
    if (counted) Object.assign(progress, counted);
    out.push(progress);
  }
  const lagBytes = Math.max(0, ...out.map((d) => d.lagBytes ?? 0));
  const sample: ReplicationSample = { at, databases: out, lagBytes };
  // The lag columns go NULL once a sender has been idle a while: caught up then means no lag.
  if (seconds !== undefined) sample.lagSeconds = seconds;
  else if (lagBytes === 0 && lags.size === databases.length) sample.lagSeconds = 0;
  return sample;
}

/**
 * Each subscription's apply and table-sync error counts (pg_stat_subscription_stats, PostgreSQL 15+;
 * undefined before): a copy or an apply that keeps failing is retried by the server without end, silently.
 */
async function subscriptionErrors(
  c: Client,
  subscriptions: string[],
): Promise<Map<string, { applyErrors: number; syncErrors: number }> | undefined> {
  if ((await serverMajor(c)) < 15) return undefined;
  const { rows } = await c.query<{ name: string; apply: string; sync: string }>(
    `SELECT subname AS name, apply_error_count::text AS apply, sync_error_count::text AS sync
       FROM pg_stat_subscription_stats WHERE subname = ANY ($1)`,
    [subscriptions],
  );
  return new Map(rows.map((r) => [r.name, { applyErrors: Number(r.apply), syncErrors: Number(r.sync) }]));
}

/** The largest write/flush/replay lag of the subscriptions' WAL senders, when the server measured one. */
async function senderLagSeconds(c: Client, subscriptions: string[]): Promise<number | undefined> {
  const { rows } = await c.query<{ s: number | null }>(
    `SELECT max(extract(epoch FROM greatest(write_lag, flush_lag, replay_lag)))::float8 AS s
       FROM pg_stat_replication WHERE application_name = ANY ($1)`,
    [subscriptions],
  );
  return rows[0]?.s ?? undefined;
}

/** The published tables of a database with their size on the source (heap and TOAST, not indexes). */
async function publishedSizes(c: Client, publication: string): Promise<Map<string, number>> {
  const { rows } = await c.query<{ schema: string; name: string; bytes: string }>(
    `SELECT p.schemaname AS schema, p.tablename AS name,
            pg_table_size(format('%I.%I', p.schemaname, p.tablename)::regclass)::text AS bytes
       FROM pg_publication_tables p WHERE p.pubname = $1`,
    [publication],
  );
  return new Map(rows.map((r) => [key(r.schema, r.name), Number(r.bytes)]));
}
