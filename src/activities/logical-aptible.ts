// Method logical where the platform makes the replica (Aptible's `db:replicate --logical`, pglogical; the
// fake's native stand-in): the names are the platform's, read from the replica, and progress, lag,
// catch-up and clean-up use replication-objects.ts's SQL instead of pgshift's own publications.
import type { Client } from 'pg';
import type { CatchUpResult, ReplicationCleanupResult, ReplicationSample } from './contract';
import { CatchUpTimeoutError, PlatformError } from '../errors';
import {
  type PgTarget,
  openClient,
  quoteIdent,
  quoteLiteral,
  redactError,
  withClient,
} from '../pg/connection';
import { slotLags } from '../pg/logical/progress';
import {
  type AptibleReplication,
  cleanupSql,
  findAptibleReplication,
  lagSql,
  remainingSlotsSql,
  syncProgressSql,
} from '../platform/aptible/replication-objects';
import type { Platform } from '../platform/platform';
import { pause } from './logical-common';

/** Whether the platform makes the replica itself: then pgshift copies no schema and creates no publication. */
export function replicaByPlatform(platform: Platform): boolean {
  return typeof platform.replicateLogical === 'function';
}

/**
 * A difference that is the platform's replication itself (the provider's publication on the source, the
 * pglogical extension, its schemas and what they hold), which the schema check and the verification leave out.
 */
export function isPlatformReplicationObject(line: string): boolean {
  return (
    /\bpublication "?aptible_publisher\w*"?(:|$)/.test(line) ||
    /\b(schema|extension) "?pglogical(_origin)?"?(:|$)/.test(line) ||
    /\b"?pglogical(_origin)?"?\./.test(line)
  );
}

/** What db:replicate made in each database, read on the replica; a database without it is an error. */
export async function platformReplications(
  target: PgTarget,
  databases: readonly string[],
): Promise<AptibleReplication[]> {
  const found: AptibleReplication[] = [];
  const missing: string[] = [];
  for (const db of databases) {
    const r = await withClient(target, db, (c) => findAptibleReplication(c, db)).catch((err: unknown) => {
      if (/does not exist/.test(String(err))) return undefined;
      throw err;
    });
    if (r) found.push(r);
    else missing.push(db);
  }
  if (missing.length > 0) {
    throw new PlatformError(
      `the replica has no logical subscription in database(s) ${missing.map(quoteIdent).join(', ')}: ` +
        'db:replicate --logical did not replicate them (a database created on the source since?); the ' +
        'migration rolls back; run it again',
    );
  }
  return found;
}

async function progressOf(target: PgTarget, r: AptibleReplication): Promise<{ done: number; total: number }> {
  return withClient(target, r.database, async (c) => {
    const { rows } = await c.query<{ done: number; total: number }>(syncProgressSql(r.flavour));
    return rows[0];
  });
}

/** Per database: tables whose initial copy is done (replica), and the WAL not yet confirmed (source). */
export async function samplePlatformReplication(
  source: PgTarget,
  target: PgTarget,
  replications: readonly AptibleReplication[],
): Promise<ReplicationSample> {
  const sample: ReplicationSample = { at: Date.now(), databases: [], lagBytes: 0 };
  await withClient(source, source.database, async (src) => {
    for (const r of replications) {
      const p = await progressOf(target, r);
      const { rows } = await src.query<{ lag_bytes: string | null; lag_seconds: number | null }>(lagSql(r));
      const lagBytes = rows[0]?.lag_bytes == null ? undefined : Math.max(0, Number(rows[0].lag_bytes));
      sample.databases.push({ name: r.database, tablesTotal: p.total, tablesDone: p.done, lagBytes });
      sample.lagBytes = Math.max(sample.lagBytes, lagBytes ?? 0);
      const seconds = rows[0]?.lag_seconds;
      if (seconds != null) sample.lagSeconds = Math.max(sample.lagSeconds ?? 0, seconds);
    }
  });
  return sample;
}

/**
 * pglogical's initial sync may stall on an idle source until its next write (pglogical#337, the guide's
 * workaround writes a table): a WAL message moves it on without the DDL the schema check would see.
 */
export async function nudgeSource(source: PgTarget, databases: readonly string[]): Promise<void> {
  for (const db of databases) {
    await withClient(source, db, (c) =>
      c.query("SELECT pg_logical_emit_message(false, 'pgshift', 'tick')"),
    ).catch(() => undefined);
  }
}

const CATCH_UP_POLL_MS = 200;

/**
 * With writes stopped: the source's WAL position once, then until every slot confirmed it and every table's
 * initial copy is over (the guarantee of the guide's synchronous_standby_names, without slowing every commit
 * while the services run). CatchUpTimeoutError past `timeoutMs`.
 */
export async function waitForPlatformCatchUp(
  source: PgTarget,
  target: PgTarget,
  replications: readonly AptibleReplication[],
  opts: { timeoutMs: number; signal?: AbortSignal; onProgress?(s: ReplicationSample): void },
): Promise<CatchUpResult> {
  const started = Date.now();
  let src: Client | undefined;
  try {
    src = await openClient(source, source.database);
    const { rows } = await src.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    const lsn = rows[0].lsn;
    let copying = [...replications];
    let lastProgress = 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      const still: AptibleReplication[] = [];
      for (const r of copying) {
        const p = await progressOf(target, r);
        if (p.done < p.total) still.push(r);
      }
      copying = still;
      const lags = await slotLags(
        src,
        replications.map((r) => r.slot),
        lsn,
      );
      const behind = replications.filter((r) => !lags.get(r.slot)?.confirmed);
      if (behind.length === 0 && copying.length === 0) return { waitedMs: Date.now() - started, lsn };
      if (Date.now() - started > opts.timeoutMs) {
        const why = [
          ...behind.map((r) => {
            const lag = lags.get(r.slot);
            if (!lag) return `${quoteIdent(r.database)}: its slot ${r.slot} is missing on the source`;
            return `${quoteIdent(r.database)}: ${lag.lagBytes ?? '?'} bytes of WAL behind`;
          }),
          ...copying.map((r) => `${quoteIdent(r.database)}: tables still in their initial copy`),
        ];
        throw new CatchUpTimeoutError(
          `the replica did not apply everything the source had written within ${Math.round(opts.timeoutMs / 1000)}s ` +
            `(${why.join('; ')}): the migration rolls back and the services come back up on the source; read ` +
            "the replica's logs (`aptible logs --database`) for the subscription's errors, then migrate again " +
            '(with a longer cutover.catchUpTimeout if the replica was only slow)',
        );
      }
      if (opts.onProgress && Date.now() - lastProgress >= 1000) {
        lastProgress = Date.now();
        opts.onProgress(await samplePlatformReplication(source, target, replications));
      }
      await pause(CATCH_UP_POLL_MS, opts.signal);
    }
  } catch (err) {
    if (err instanceof CatchUpTimeoutError || opts.signal?.aborted) throw err;
    throw redactError(target, redactError(source, err));
  } finally {
    await src?.end().catch(() => undefined);
  }
}

const SLOT_RELEASE_ATTEMPTS = 20;
const SLOT_RELEASE_MS = 500;

/** "on the source, database d: <sql>; <sql>" — what to run by hand. */
function where(side: 'source' | 'replica', database: string, statements: string[]): string {
  return `on the ${side}, database ${quoteIdent(database)}: ${statements.map((s) => `${s};`).join(' ')}`;
}

/** On the source: drop pglogical's extension only where no other node is left (another user would break). */
async function sourceStatements(source: PgTarget, r: AptibleReplication): Promise<string[]> {
  if (r.flavour !== 'pglogical') return cleanupSql(r, { dropSourceExtension: false }).source;
  const others = await withClient(source, r.database, async (c) => {
    const { rows: ext } = await c.query("SELECT 1 FROM pg_extension WHERE extname = 'pglogical'");
    if (ext.length === 0) return 0;
    const { rows } = await c.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pglogical.node WHERE node_name <> $1',
      [r.provider],
    );
    return rows[0].n;
  });
  return cleanupSql(r, { dropSourceExtension: others === 0 }).source;
}

/**
 * Ends one database's replication as the guide does: the replica's subscription first, then on the source
 * the slots (its walsender ended when still holding one) and the provider, then the slots left, until none.
 * `source` undefined (unreachable): what the source needs is returned as SQL in leftBehind.
 */
export async function dropPlatformReplication(
  source: PgTarget | undefined,
  target: PgTarget,
  r: AptibleReplication,
): Promise<ReplicationCleanupResult> {
  const result: ReplicationCleanupResult = { dropped: [], leftBehind: [] };
  const { replica } = cleanupSql(r, { dropSourceExtension: false });
  await withClient(target, r.database, async (c) => {
    for (const statement of replica) await c.query(statement);
  });
  result.dropped.push(`subscription ${r.database}/${r.subscription}`);
  if (!source) {
    result.leftBehind.push(where('source', r.database, cleanupSql(r, { dropSourceExtension: false }).source));
    return result;
  }
  const statements = await sourceStatements(source, r);
  const left = await withClient(source, r.database, async (c) => {
    for (let attempt = 0; ; attempt++) {
      for (const statement of statements) await c.query(statement);
      const { rows } = await c.query<{ slot_name: string }>(remainingSlotsSql(r));
      if (rows.length === 0 || attempt + 1 >= SLOT_RELEASE_ATTEMPTS) return rows.map((x) => x.slot_name);
      // A terminated walsender lets go of its slot a moment later.
      await pause(SLOT_RELEASE_MS, undefined);
    }
  });
  result.dropped.push(
    `slot ${r.slot}`,
    `${r.flavour === 'native' ? 'publication' : 'node'} ${r.database}/${r.provider}`,
  );
  if (left.length > 0) {
    result.leftBehind.push(
      where(
        'source',
        r.database,
        left.map((slot) => `SELECT pg_drop_replication_slot(${quoteLiteral(slot)})`),
      ),
    );
  }
  return result;
}

/**
 * With the replica gone or unreachable its names cannot be read: what db:replicate makes on the source (a
 * pglogical provider node, or the fake's publication, named aptible_publisher…) is reported, not dropped,
 * since it may be another replica's.
 */
export async function sourceLeftovers(source: PgTarget, databases: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const db of databases) {
    const names = await withClient(source, db, async (c) => {
      const out: string[] = [];
      const { rows: ext } = await c.query("SELECT 1 FROM pg_extension WHERE extname = 'pglogical'");
      if (ext.length > 0) {
        const { rows } = await c.query<{ node_name: string }>(
          "SELECT node_name FROM pglogical.node WHERE node_name LIKE 'aptible\\_publisher%'",
        );
        out.push(...rows.map((n) => `SELECT pglogical.drop_node(${quoteLiteral(n.node_name)})`));
      }
      const { rows: pubs } = await c.query<{ pubname: string }>(
        "SELECT pubname FROM pg_publication WHERE pubname LIKE 'aptible\\_publisher%'",
      );
      out.push(...pubs.map((p) => `DROP PUBLICATION ${quoteIdent(p.pubname)}`));
      return out;
    });
    if (names.length > 0) {
      found.push(
        `${where('source', db, names)} (if this migration's replica made it: the replica could not be read; ` +
          "drop its slots too, as the Cleanup of Aptible's guide says)",
      );
    }
  }
  return found;
}
