// Clean-up of method logical where the platform made the replica (Aptible's db:replicate --logical): the
// guide's "Stop replication" and "Cleanup: Source Database", per database, on every path. The names are
// read on the replica, so it runs while the replica exists (the rollback drops replication before it
// deprovisions the target); without the replica what db:replicate leaves on the source is reported.
import type { MigrationInput, ReplicationCleanupResult } from './contract';
import { isOwnedBy } from './deps';
import type { ActivityScope } from './scope';
import { type Side, connectableDatabases, mayReportNow, reach } from './logical-cleanup';
import { dropPlatformReplication, sourceLeftovers } from './logical-aptible';
import { withClient } from '../pg/connection';
import type { Platform } from '../platform/platform';
import {
  type AptibleReplication,
  cleanupSql,
  findAptibleReplication,
} from '../platform/aptible/replication-objects';

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The replica as clean-up finds it; undefined when a database under its handle is not this run's. */
async function reachReplica(
  scope: ActivityScope,
  platform: Platform,
  input: MigrationInput,
): Promise<Side | undefined> {
  const { handle, environment } = input.plan.target;
  try {
    const info = await platform.getDatabase(handle, environment);
    if (!info) return { state: 'gone' };
    if (!isOwnedBy(info, input)) return undefined;
    const conn = await scope.connect(handle, environment);
    return { state: 'reached', conn, databases: await connectableDatabases(conn) };
  } catch (error) {
    return { state: 'unreachable', error };
  }
}

export async function dropByPlatform(
  scope: ActivityScope,
  platform: Platform,
  input: MigrationInput,
): Promise<ReplicationCleanupResult> {
  const { source } = input.plan;
  const result: ReplicationCleanupResult = { dropped: [], leftBehind: [] };
  const replica = await reachReplica(scope, platform, input);
  // A database someone else made under the target's handle holds nothing of this migration's.
  if (!replica) return result;
  const from = await reach(scope, platform, source.handle, source.environment);
  let retryable: string | undefined;
  if (replica.state === 'reached') {
    const sourceConn = from.state === 'reached' ? from.conn : undefined;
    if (from.state === 'unreachable') retryable = `the source cannot be reached (${errorText(from.error)})`;
    const handled = new Set<string>();
    for (const db of replica.databases) {
      if (db === 'template0' || db === 'template1') continue;
      let found: AptibleReplication | undefined;
      try {
        found = await withClient(replica.conn, db, (c) => findAptibleReplication(c, db));
        if (!found) continue;
        handled.add(db);
        const one = await dropPlatformReplication(sourceConn, replica.conn, found);
        result.dropped.push(...one.dropped);
        // A source that is gone took its slots with it.
        result.leftBehind.push(...(from.state === 'gone' ? [] : one.leftBehind));
      } catch (err) {
        retryable = errorText(err);
        if (!found) {
          result.leftBehind.push(`on the replica, database "${db}": could not be read (${errorText(err)})`);
          continue;
        }
        const sql = cleanupSql(found, { dropSourceExtension: false });
        result.leftBehind.push(
          `on the replica, database "${db}": ${sql.replica.map((s) => `${s};`).join(' ')}`,
          ...(from.state === 'gone'
            ? []
            : [`then on the source, database "${db}": ${sql.source.map((s) => `${s};`).join(' ')}`]),
        );
      }
    }
    // A db:replicate that failed half-way leaves a provider on the source without its subscription.
    if (from.state === 'reached') {
      const others = from.databases.filter((db) => db !== 'template0' && !handled.has(db));
      result.leftBehind.push(...(await sourceLeftovers(from.conn, others)));
    }
  } else if (from.state === 'reached') {
    if (replica.state === 'unreachable') {
      retryable = `the replica cannot be reached (${errorText(replica.error)})`;
    }
    result.leftBehind.push(
      ...(await sourceLeftovers(
        from.conn,
        from.databases.filter((db) => db !== 'template0'),
      )),
    );
  } else if (from.state === 'unreachable') {
    throw new Error(
      `neither the replica (${replica.state}) nor the source (${errorText(from.error)}) can be read, so the ` +
        "replication db:replicate made cannot be dropped yet; retried. If this lasts, follow the Cleanup of Aptible's " +
        'logical-replication guide on the source',
    );
  }
  if (result.leftBehind.length > 0 && retryable && !mayReportNow()) {
    throw new Error(
      `${result.leftBehind.length} replication object(s) could not be dropped yet (${retryable}); retried. ` +
        `Left so far:\n${result.leftBehind.join('\n')}`,
    );
  }
  return result;
}
