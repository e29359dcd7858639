// What the activities of method logical share: which databases are replicated, under which names.
import { setTimeout as delay } from 'node:timers/promises';
import type { MigrationInput } from './contract';
import type { ActivityScope } from './scope';
import type { Plan } from '../plan/schema';
import type { DatabaseConnection } from '../platform/platform';
import { type PgTarget, withClient } from '../pg/connection';
import { type ReplicationNames, replicationNames } from '../pg/logical/names';

export interface NamedDatabase {
  name: string;
  names: ReplicationNames;
}

/**
 * The databases replicated: every one that allows connections but template0, template1 and those the plan
 * skips — the rule of checkLogicalReadiness's `databases` (src/pg/logical/readiness.ts; the tests hold the
 * two alike), in one query, since the cutover's steps ask it inside the downtime. Asked again by every
 * activity rather than carried from one to the next, so the history holds no list that could go stale.
 */
export async function replicatedDatabases(source: PgTarget, plan: Plan): Promise<string[]> {
  // Plans started before accept existed have none.
  const skipped = new Set(plan.accept?.skipDatabases ?? []);
  const all = await withClient(source, source.database, async (c) => {
    const { rows } = await c.query<{ datname: string }>(
      `SELECT datname FROM pg_database
        WHERE datallowconn AND datname NOT IN ('template0', 'template1') ORDER BY datname`,
    );
    return rows.map((r) => r.datname);
  });
  return all.filter((db) => !skipped.has(db));
}

export function withNames(input: MigrationInput, databases: readonly string[]): NamedDatabase[] {
  return databases.map((name) => ({ name, names: replicationNames(input.migrationId, name) }));
}

/**
 * The tables of `accept.replicaIdentityFull` ("database.schema.table") in `database`, as "schema.table". A
 * database name may hold dots itself: an entry belongs to the longest replicated database it starts with.
 */
export function replicaIdentityTablesIn(
  database: string,
  databases: readonly string[],
  entries: readonly string[],
): string[] {
  const byLength = [...databases].sort((a, b) => b.length - a.length);
  return entries
    .filter((entry) => byLength.find((db) => entry.startsWith(`${db}.`)) === database)
    .map((entry) => entry.slice(database.length + 1));
}

export interface Sides {
  source: DatabaseConnection;
  target: DatabaseConnection;
}

export async function connectSides(scope: ActivityScope, input: MigrationInput): Promise<Sides> {
  const { source, target } = input.plan;
  return {
    source: await scope.connect(source.handle, source.environment),
    target: await scope.connect(target.handle, target.environment),
  };
}

/** Waits `ms`, or rejects at once with the cancellation's reason. */
export async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    throw err;
  }
}
