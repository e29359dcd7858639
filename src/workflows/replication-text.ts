// Replication in words: the initial sync's progress, the lag, and the SQL that drops what is left behind.
// Pure: the workflow (step details, the UI's current details) and the CLI (status, watch) share it.
import type { ReplicationDatabaseProgress, ReplicationSample } from '../activities/contract';
import { formatDuration } from '../lib/duration';
import { formatBytes } from '../lib/progress-estimate';
import type { ReplicationStatus } from './definitions';

/** "3/12 tables, 1.2 GB of 4.0 GB" */
function progressText(tablesDone: number, tablesTotal: number, bytesDone?: number, bytesTotal?: number) {
  const bytes =
    bytesTotal !== undefined && bytesTotal > 0
      ? `, ${formatBytes(bytesDone ?? 0)} of ${formatBytes(bytesTotal)}`
      : '';
  return `${tablesDone}/${tablesTotal} tables${bytes}`;
}

/** One database's initial copy: "app: 3/12 tables, 1.2 GB of 4.0 GB". */
export function describeDatabaseSync(db: ReplicationDatabaseProgress): string {
  return `${db.name}: ${progressText(db.tablesDone, db.tablesTotal, db.bytesDone, db.bytesTotal)}`;
}

export interface SyncTotals {
  tablesDone: number;
  tablesTotal: number;
  /** Absent when no database reported sizes. */
  bytesDone?: number;
  bytesTotal?: number;
}

export function syncTotals(sample: ReplicationSample): SyncTotals {
  const sum = (f: (d: ReplicationDatabaseProgress) => number | undefined) =>
    sample.databases.reduce((n, d) => n + (f(d) ?? 0), 0);
  const sized = sample.databases.some((d) => d.bytesTotal !== undefined);
  return {
    tablesDone: sum((d) => d.tablesDone),
    tablesTotal: sum((d) => d.tablesTotal),
    bytesDone: sized ? sum((d) => d.bytesDone) : undefined,
    bytesTotal: sized ? sum((d) => d.bytesTotal) : undefined,
  };
}

/** Every table of every database has had its initial copy. */
export function syncComplete(sample: ReplicationSample): boolean {
  return sample.databases.every((d) => d.tablesDone >= d.tablesTotal);
}

/** All databases at once: "5/24 tables, 1.2 GB of 4.0 GB in 2 database(s)". */
export function describeSync(sample: ReplicationSample): string {
  const t = syncTotals(sample);
  return `${progressText(t.tablesDone, t.tablesTotal, t.bytesDone, t.bytesTotal)} in ${sample.databases.length} database(s)`;
}

/** "lag 12 kB, 0.4s" (the seconds only when the source can tell). */
export function describeLag(sample: { lagBytes: number; lagSeconds?: number }): string {
  const seconds = sample.lagSeconds !== undefined ? `, ${formatDuration(sample.lagSeconds * 1000)}` : '';
  return `lag ${formatBytes(sample.lagBytes)}${seconds}`;
}

/** The largest lag in the history, for a summary: "max lag 3.1 MB, 2.0s over 42 samples". */
export function describeLagHistory(history: ReplicationStatus['lagHistory']): string | undefined {
  if (history.length === 0) return undefined;
  const bytes = Math.max(...history.map((h) => h.bytes));
  const secs = history.map((h) => h.seconds).filter((s): s is number => s !== undefined);
  const seconds = secs.length ? `, ${formatDuration(Math.max(...secs) * 1000)}` : '';
  return `max lag ${formatBytes(bytes)}${seconds} over the ${history.length} sample(s) kept`;
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
/** A name as ReplicationStartResult may give it, "database/name" or just "name". */
function split(qualified: string, fallbackDb?: string): { db?: string; name: string } {
  // Slot and publication names hold no '/', a database name may.
  const at = qualified.lastIndexOf('/');
  return at < 0
    ? { db: fallbackDb, name: qualified }
    : { db: qualified.slice(0, at), name: qualified.slice(at + 1) };
}

/**
 * SQL to drop, by hand, what replication created (ReplicationStatus.objects), for when the clean-up itself
 * could not run. A subscription whose source is gone must be detached from its slot before it can be dropped.
 */
export function manualDropSql(objects: NonNullable<ReplicationStatus['objects']>): string[] {
  const dbs = objects.databases ?? [];
  // One of each per database, in the order of the databases, when the activity returned them that way.
  const dbOf = (list: string[], i: number) => (list.length === dbs.length ? dbs[i] : undefined);
  const where = (side: string, db?: string) => `on the ${side}${db ? `, in database ${db}` : ''}`;
  const out: string[] = [];
  objects.subscriptions.forEach((q, i) => {
    const { db, name } = split(q, dbOf(objects.subscriptions, i));
    out.push(
      `${where('target', db)}: ALTER SUBSCRIPTION ${ident(name)} DISABLE; ` +
        `ALTER SUBSCRIPTION ${ident(name)} SET (slot_name = NONE); DROP SUBSCRIPTION ${ident(name)};`,
    );
  });
  for (const q of objects.slots) {
    const { name } = split(q);
    // A subscriber still connected holds the slot: its WAL sender is ended first.
    out.push(
      `on the source: SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots ` +
        `WHERE slot_name = ${literal(name)} AND active_pid IS NOT NULL; ` +
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ${literal(name)};`,
    );
  }
  objects.publications.forEach((q, i) => {
    const { db, name } = split(q, dbOf(objects.publications, i));
    out.push(`${where('source', db)}: DROP PUBLICATION IF EXISTS ${ident(name)};`);
  });
  return out;
}
