// The verification after the restore: does the target hold everything the source held? See compareServers.
import type { VerificationReport } from '../../activities/contract';
import { type PgTarget, redactError } from '../connection';
import { abortReason } from '../process';
import { type ContentCheck, type DatabaseProgress, FULL_COMPARE_MAJOR, compareDatabase } from './database';
import { compareDatabases } from './databases';
import { compareGlobals } from './globals';
import { ReportBuilder } from './report';
import { openCatalogSession, openPair } from './session';
import type { Versions } from './version-differences';

export interface CompareOptions {
  /** Called after each table, so a long verification still shows where it is. */
  onProgress?(progress: DatabaseProgress & { databasesDone: number; databasesTotal: number }): void;
  signal?: AbortSignal;
  /** The platform's admin role: the restore keeps the target's own password for it, so it is not compared. */
  adminRole?: string;
  /** Databases the plan accepts to leave behind (accept.skipDatabases): listed as skipped, not compared. */
  skipDatabases?: readonly string[];
  /** Connections per server and database reading tables at once (default 2). */
  parallel?: number;
  /**
   * 'hashes' (default): every row's content. 'counts': row counts of every table instead, no large
   * objects, and method logical's own publications left out (see DatabaseCompareOptions.content).
   */
  content?: ContentCheck;
}

const DEFAULT_PARALLEL = 2;

/**
 * Source and target agree when the cluster's roles, memberships and tablespaces are alike; every database
 * of the source (template1 and postgres included, template0 excluded) is on the target with the same
 * properties; and in each database that allows connections, the schema fingerprint (every kind of object,
 * with owners, privileges and comments), the rows of every table and materialized view, the sequences and
 * the large objects are the same. What a newer major changes by itself is normalized (see
 * version-differences.ts). Nothing is pulled into memory row by row: rows are checksummed in the server.
 */
export async function compareServers(
  source: PgTarget,
  target: PgTarget,
  opts: CompareOptions = {},
): Promise<VerificationReport> {
  const started = Date.now();
  const report = new ReportBuilder();
  try {
    const [s, t] = await openPair(
      () => openCatalogSession(source),
      () => openCatalogSession(target),
      (opened) => opened.client.end().catch(() => undefined),
    );
    const versions: Versions = { source: s.major, target: t.major };
    let readable: string[];
    try {
      if (versions.source >= FULL_COMPARE_MAJOR && versions.target >= FULL_COMPARE_MAJOR) {
        await compareGlobals(s, t, versions, opts.adminRole, report);
      } else {
        report.mismatch(
          `not verified: PostgreSQL ${versions.source} → ${versions.target}: roles, memberships and tablespaces ` +
            `are compared from ${FULL_COMPARE_MAJOR} on, on both sides`,
        );
      }
      ({ readable } = await compareDatabases(s, t, opts.skipDatabases ?? [], report));
    } finally {
      await Promise.all([s.client.end().catch(() => undefined), t.client.end().catch(() => undefined)]);
    }
    for (const [index, db] of readable.entries()) {
      opts.signal?.throwIfAborted();
      await compareDatabase(source, target, db, report, {
        versions,
        parallel: opts.parallel ?? DEFAULT_PARALLEL,
        content: opts.content,
        signal: opts.signal,
        onProgress: (p) => opts.onProgress?.({ ...p, databasesDone: index, databasesTotal: readable.length }),
      });
    }
  } catch (err) {
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    throw redactError(target, redactError(source, err));
  }
  const result = report.report;
  result.databases.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  result.durationMs = Date.now() - started;
  return result;
}
