// Clean-up of method logical: a slot left on the source keeps its WAL forever and fills the source's disk,
// so this runs on every path (success, rollback, abort) and must get as far as it can whatever is gone.
import { Context } from '@temporalio/activity';
import type { MigrationInput, ReplicationCleanupResult } from './contract';
import { type ActivityDeps, platformOf } from './deps';
import { type ActivityScope, withScope } from './scope';
import type { DatabaseConnection, Platform } from '../platform/platform';
import { type PgTarget, quoteIdent, withClient } from '../pg/connection';
import { inActivity } from '../lib/activity-context';
import { dropDatabaseReplication } from '../pg/logical/replication';
import { replicationNames } from '../pg/logical/names';
import { dropByPlatform } from './logical-cleanup-aptible';

/** One server as clean-up finds it. */
export type Side =
  | { state: 'reached'; conn: DatabaseConnection; databases: string[] }
  /** The platform has no such database (deprovisioned, or never created): nothing to drop there. */
  | { state: 'gone' }
  | { state: 'unreachable'; error: unknown };

/**
 * Every database but template0: a slot is dropped from any database, so one whose database no longer allows
 * connections (set ALLOW_CONNECTIONS false after it was replicated) is still found and dropped; what needs
 * the database itself (its publication) is then reported with its SQL.
 */
export async function connectableDatabases(t: PgTarget): Promise<string[]> {
  return withClient(t, t.database, async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname <> 'template0' ORDER BY datname`,
    );
    return rows.map((r) => r.datname);
  });
}

/** Whether the target holds any subscription at all (pg_subscription is shared by every database). */
export async function hasSubscriptions(t: PgTarget): Promise<boolean> {
  return withClient(t, t.database, async (client) => {
    const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_subscription');
    return rows[0].n > 0;
  });
}

export async function reach(
  scope: ActivityScope,
  platform: Platform,
  handle: string,
  environment: string,
): Promise<Side> {
  try {
    if (!(await platform.getDatabase(handle, environment))) return { state: 'gone' };
    const conn = await scope.connect(handle, environment);
    return { state: 'reached', conn, databases: await connectableDatabases(conn) };
  } catch (error) {
    return { state: 'unreachable', error };
  }
}

// A side that cannot be reached, or a drop that failed, may pass: the first attempts fail (and are retried)
// rather than report; from this attempt on, what is left is reported with its SQL instead.
const ATTEMPTS_BEFORE_REPORTING = 4;

export function mayReportNow(): boolean {
  return !inActivity() || Context.current().info.attempt >= ATTEMPTS_BEFORE_REPORTING;
}

/**
 * Drops this migration's subscription, slot and publication in every database either side has: the
 * source's (a database that was never replicated just has nothing to drop) and the target's (a subscription
 * whose source database went away). A failure in one database does not stop the others. What is left
 * because a side could not be reached or a drop failed makes early attempts fail, to be retried (each drop
 * is idempotent); later ones return it in leftBehind, as the SQL to run and where.
 */
export async function dropEverywhere(
  input: MigrationInput,
  source: Side,
  target: Side,
): Promise<ReplicationCleanupResult> {
  if (source.state === 'unreachable' && target.state !== 'reached') {
    // Neither server tells which databases there are: there is no exact SQL to give, only a retry.
    throw unreachableSource(input, source.error);
  }
  const onSource = source.state === 'reached' ? source.databases : [];
  const onTarget = target.state === 'reached' ? target.databases : [];
  // template1 is never replicated (a connection to it would block a CREATE DATABASE meanwhile); without
  // the source, what is left there is named for the target's databases that may have been replicated.
  const skipped = new Set(input.plan.accept?.skipDatabases ?? []);
  const fromTarget = source.state === 'reached' ? onTarget : onTarget.filter((db) => !skipped.has(db));
  const databases = [...new Set([...onSource, ...fromTarget])].filter((db) => db !== 'template1').sort();
  const sourceConn = source.state === 'reached' ? source.conn : undefined;
  const targetConn = target.state === 'reached' ? target.conn : undefined;
  const result: ReplicationCleanupResult = { dropped: [], leftBehind: [] };
  for (const database of databases) {
    const names = replicationNames(input.migrationId, database);
    const one = await dropDatabaseReplication(sourceConn, targetConn, database, names);
    result.dropped.push(...one.dropped);
    // Without a source connection the pg layer lists the source's objects as left behind: true when the
    // source could not be reached, not when it is gone (with its slots).
    result.leftBehind.push(
      ...(source.state === 'gone'
        ? one.leftBehind.filter((l) => !l.startsWith('on the source'))
        : one.leftBehind),
    );
    if (target.state === 'unreachable' && one.dropped.length > 0) {
      // The source had replication for this database, so the target has (had) its subscription.
      const sub = quoteIdent(names.subscription);
      result.leftBehind.push(
        `on the target, database ${quoteIdent(database)} (could not be reached): ALTER SUBSCRIPTION ${sub} ` +
          `DISABLE; ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE); DROP SUBSCRIPTION ${sub};`,
      );
    }
  }
  if (result.leftBehind.length > 0 && !mayReportNow()) {
    const cause = [source, target].find((s) => s.state === 'unreachable') as
      { state: 'unreachable'; error: unknown } | undefined;
    throw new Error(
      `${result.leftBehind.length} replication object(s) could not be dropped yet` +
        (cause ? ` (${errorText(cause.error)})` : '') +
        `; retried. Left so far:\n${result.leftBehind.join('\n')}`,
    );
  }
  return result;
}

function unreachableSource(input: MigrationInput, error: unknown): Error {
  // Every name replicationNames makes for this migration starts the same way (see names.ts).
  const sample = replicationNames(input.migrationId, 'x').slot;
  const prefix = sample.slice(0, sample.lastIndexOf('_x_') + 1);
  return new Error(
    `the source cannot be reached (${errorText(error)}) and the target is gone or unreachable too, so this migration's ` +
      'replication slots and publications cannot be dropped yet; retried. If the source stays unreachable, ' +
      `drop by hand, on the source, the replication slots and, in each database, the publications whose ` +
      `names start with ${prefix}`,
  );
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Drops subscriptions (target), slots and publications (source) of every database the run may have
 * touched. Works when the target is deprovisioned and when one side cannot be reached: the reachable side
 * is cleaned, and what is left is retried a few times, then returned as exact SQL (leftBehind).
 */
export async function dropReplication(
  deps: ActivityDeps,
  input: MigrationInput,
): Promise<ReplicationCleanupResult> {
  const { source, target } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    scope.progress({ phase: 'dropping replication' });
    if (platform.replicateLogical) return dropByPlatform(scope, platform, input);
    const [from, to] = [
      await reach(scope, platform, source.handle, source.environment),
      await reach(scope, platform, target.handle, target.environment),
    ];
    return dropEverywhere(input, from, to);
  });
}
