import { availableParallelism } from 'node:os';
import { type PgTarget, withClient } from '../connection';

/**
 * A table smaller than this is not worth a job of its own: it is copied in well under a second, less than
 * a job's own start (a connection, a snapshot, the catalog read) costs.
 */
export const LARGE_TABLE_BYTES = 32 * 1024 * 1024;

export interface SourceDatabase {
  name: string;
  /** pg_database_size: for the progress's total only. */
  bytes: number;
  /** Tables (and partitions) of at least LARGE_TABLE_BYTES. */
  largeTables: number;
}

/**
 * The databases pg_dumpall would dump, in its order: every one that allows connections and is not invalid
 * (an interrupted DROP DATABASE), template1 first, then by name; less those the plan accepts to leave out.
 */
export async function sourceDatabases(
  source: PgTarget,
  skip: readonly string[],
  { countLargeTables = true }: { countLargeTables?: boolean } = {},
): Promise<SourceDatabase[]> {
  const listed = await withClient(source, source.database, async (c) => {
    const { rows } = await c.query<{ name: string; bytes: string }>(
      `SELECT datname AS name, pg_database_size(oid)::text AS bytes FROM pg_database
        WHERE datallowconn AND datconnlimit <> -2 ORDER BY (datname <> 'template1'), datname`,
    );
    return rows.filter((r) => !skip.includes(r.name));
  });
  // Counting opens a connection per database: only the parallel strategy's job count needs it.
  if (!countLargeTables)
    return listed.map((db) => ({ name: db.name, bytes: Number(db.bytes), largeTables: 0 }));
  const out: SourceDatabase[] = [];
  for (const db of listed) {
    const largeTables = await withClient(source, db.name, async (c) => {
      const { rows } = await c.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND pg_table_size(c.oid) >= $1`,
        [LARGE_TABLE_BYTES],
      );
      return Number(rows[0].n);
    });
    out.push({ name: db.name, bytes: Number(db.bytes), largeTables });
  }
  return out;
}

/**
 * Jobs for one database: as many as the worker has cores, but no more than it has large tables (a job
 * per small table costs more than it saves), and at least one; the plan's copy.jobs overrides.
 */
export function jobsFor(
  db: SourceDatabase,
  planJobs: number | undefined,
  cores = availableParallelism(),
): number {
  if (planJobs !== undefined) return planJobs;
  // The manifest accepts at most 64 (the plan's bound): a bigger worker must not make every dump unusable.
  return Math.max(1, Math.min(cores, db.largeTables, 64));
}
