// DDL is not replicated: a change to the source's schema after the copy (a column, a table, an index, a
// function...) is found by comparing the verification's catalog fingerprint of each database, source
// against target, while the replication objects exist.
import { type PgTarget, openClient, redactError } from '../connection';
import { compareFingerprint } from '../verify/database';
import { ReportBuilder, dbLabel } from '../verify/report';
import { openPair, openSnapshotPool } from '../verify/session';
import { isReplicationName } from './names';

/**
 * The differences in words, one per object (`shop: table public.orders: column note: missing on target`);
 * empty when every database's schema is alike. What a newer major changes by itself is normalized as the
 * verification does; this migration's publications (on the source only) are left out.
 */
export async function schemaDifferences(
  source: PgTarget,
  target: PgTarget,
  databases: readonly string[],
): Promise<string[]> {
  const report = new ReportBuilder();
  for (const db of databases) {
    const where = dbLabel(db);
    let pair;
    try {
      pair = await openPair(
        () => openSnapshotPool(source, db, 1),
        () => openSnapshotPool(target, db, 1),
        (pool) => pool.close(),
      );
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // A database gone on one side is a difference; anything else (a server down) is for a retry.
      if (!/database ".*" does not exist/.test(message)) throw redactError(target, redactError(source, err));
      report.mismatch(`${where}: database missing on ${sideOf(message, source)}`);
      continue;
    }
    const [s, t] = pair;
    try {
      await compareFingerprint(s.leader, t.leader, () => openClient(target, db), where, report, {
        versions: { source: s.major, target: t.major },
        ignorePublication: isReplicationName,
      });
    } catch (err) {
      throw redactError(target, redactError(source, err));
    } finally {
      await Promise.all([s.close(), t.close()]);
    }
  }
  const { mismatches, mismatchCount } = report.report;
  const more = (mismatchCount ?? 0) - mismatches.length;
  return more > 0 ? [...mismatches, `... and ${more} more`] : mismatches;
}

/** Which server an openClient failure names (its message says "on host:port"). */
function sideOf(message: string, source: PgTarget): string {
  return message.includes(`on ${source.host}:${source.port} `) ? 'the source' : 'the target';
}
