// The cutover's wait: with writes stopped, until the target applied everything the source had written.
import type { Client } from 'pg';
import type { CatchUpResult, ReplicationSample } from '../../activities/contract';
import { CatchUpTimeoutError, SchemaChangedError } from '../../errors';
import { type PgTarget, openClient, quoteIdent, redactError } from '../connection';
import { abortReason } from '../process';
import { serverMajor, sleep } from './catalog';
import { type ReplicatedDatabase, copied, sampleReplication, slotLags, subscriptionTables } from './progress';
import { schemaDifferences } from './schema-diff';

const POLL_MS = 100;
const PROGRESS_MS = 1000;

/**
 * With the services stopped: first waits until no other client of the replicated databases holds a
 * transaction id (a killed service's statement may still be running and commit later), then commits a tiny
 * transaction with synchronous_commit on and takes the WAL insert position after it: every commit visible
 * by then, synchronous or not, lies before it (pg_current_wal_lsn, the write position, can be behind an
 * asynchronous commit that is visible already). Then polls until every slot's confirmed_flush_lsn reached it
 * and every table's initial copy is over. The subscriber confirms a position only once it has applied and
 * flushed what came before it, and it confirms positions of WAL that had nothing for it (other databases,
 * checkpoints) as soon as its sender's keepalive says so: an idle source is caught up within one poll.
 * With `disable`, every subscription is disabled once caught up, so nothing the source receives afterwards
 * reaches the target; one a previous attempt disabled is enabled first, so a retry waits anew.
 * An apply error (DDL on the source: a column the target lacks stops the subscription) or the bound being
 * hit first looks for schema changes, so the operator reads what changed rather than a timeout.
 * Throws CatchUpTimeoutError past `timeoutMs`, SchemaChangedError when the schema changed.
 */
export async function waitForCatchUp(
  source: PgTarget,
  target: PgTarget,
  databases: ReplicatedDatabase[],
  opts: {
    timeoutMs: number;
    signal?: AbortSignal;
    onProgress?(s: ReplicationSample): void;
    disable?: boolean;
  },
): Promise<CatchUpResult> {
  const started = Date.now();
  const clients: Client[] = [];
  const open = async (t: PgTarget, db: string) => {
    const c = await openClient(t, db);
    clients.push(c);
    return c;
  };
  try {
    // Connections are most of the wait when all is applied already: opened at once.
    const opened = await Promise.allSettled([
      open(source, source.database),
      open(target, target.database),
      ...databases.map((db) => open(target, db.name)),
    ]);
    const failed = opened.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
    const [src, tgt, ...perDatabase] = opened.map((o) => (o as PromiseFulfilledResult<Client>).value);
    if (opts.disable) await setSubscriptionsEnabled(perDatabase, databases, true);
    await waitForTransactions(src, databases, started, opts);
    const lsn = await committedPosition(src);
    const withStats = (await serverMajor(tgt)) >= 15;
    let errorsSeen = withStats ? await applyErrors(tgt, databases) : 0;
    const copying = new Map<string, Client>(databases.map((db, i) => [db.name, perDatabase[i]]));
    let lastProgress = 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      for (const [name, c] of [...copying]) {
        const db = databases.find((d) => d.name === name)!;
        const tables = await subscriptionTables(c, db.names.subscription);
        if (tables.every((t) => copied(t.state))) {
          copying.delete(name);
          await c.end().catch(() => undefined);
        }
      }
      const lags = await slotLags(
        src,
        databases.map((d) => d.names.slot),
        lsn,
      );
      const behind = databases.filter((d) => !lags.get(d.names.slot)?.confirmed);
      if (behind.length === 0 && copying.size === 0) {
        if (opts.disable) await disableSubscriptions(target, databases);
        return { waitedMs: Date.now() - started, lsn };
      }

      const errors = withStats ? await applyErrors(tgt, databases) : 0;
      if (errors > errorsSeen) {
        errorsSeen = errors;
        await throwIfSchemaChanged(source, target, databases);
      }
      if (Date.now() - started > opts.timeoutMs) {
        await throwIfSchemaChanged(source, target, databases);
        const still = [
          ...behind.map((d) => {
            const lag = lags.get(d.names.slot);
            if (!lag) return `${quoteIdent(d.name)}: its slot ${d.names.slot} is missing on the source`;
            return `${quoteIdent(d.name)}: ${lag.lagBytes ?? '?'} bytes of WAL behind`;
          }),
          ...[...copying.keys()].map((name) => `${quoteIdent(name)}: tables still in their initial copy`),
        ];
        throw new CatchUpTimeoutError(
          `the target did not apply everything the source had written within ${Math.round(opts.timeoutMs / 1000)}s ` +
            `(${still.join('; ')}): the migration rolls back and the services come back up on the source; ` +
            "read the target's server log for the subscriptions' errors, then migrate again (with a longer " +
            'cutover.catchUpTimeout if the target was only slow)',
        );
      }
      if (opts.onProgress && Date.now() - lastProgress >= PROGRESS_MS) {
        lastProgress = Date.now();
        opts.onProgress(await sampleReplication(source, target, databases));
      }
      await sleep(POLL_MS, opts.signal);
    }
  } catch (err) {
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    if (err instanceof CatchUpTimeoutError || err instanceof SchemaChangedError) throw err;
    throw redactError(target, redactError(source, err));
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}

/** Other client sessions of the replicated databases that hold a transaction id: writes not yet committed. */
async function openWriters(src: Client, databases: ReplicatedDatabase[]): Promise<string[]> {
  const { rows } = await src.query<{
    pid: number;
    datname: string;
    app: string | null;
    state: string | null;
    started: string | null;
  }>(
    `SELECT pid, datname, application_name AS app, state, query_start::text AS started
       FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()
        AND datname = ANY ($1)
      ORDER BY pid`,
    [databases.map((d) => d.name)],
  );
  return rows.map(
    (r) =>
      `pid ${r.pid} in database ${quoteIdent(r.datname)} (application_name ${JSON.stringify(r.app ?? '')}, ` +
      `${r.state ?? 'unknown state'}, query started ${r.started ?? 'unknown'})`,
  );
}

/**
 * Waits until no other client of the replicated databases holds a transaction id: a service's session whose
 * statement still runs after the scale-down would commit after the position the catch-up waits for.
 */
async function waitForTransactions(
  src: Client,
  databases: ReplicatedDatabase[],
  started: number,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<void> {
  for (;;) {
    const open = await openWriters(src, databases);
    if (open.length === 0) return;
    if (Date.now() - started > opts.timeoutMs) {
      throw new CatchUpTimeoutError(
        `${open.length} transaction(s) on the source were still open ${Math.round(opts.timeoutMs / 1000)}s ` +
          `after the services were stopped (${open.join('; ')}): their writes could commit after the cutover ` +
          'and be lost. The migration rolls back and the services come back up on the source; find what ' +
          'still writes to the source (a service not scaled down, a job, a session left open) and stop it, ' +
          'then migrate again',
      );
    }
    await sleep(POLL_MS, opts.signal);
  }
}

/**
 * A tiny transaction that takes a transaction id, committed with synchronous_commit on (its commit flushes
 * the WAL of every commit before it), then the WAL insert position after it.
 */
async function committedPosition(src: Client): Promise<string> {
  await src.query('SET synchronous_commit = on');
  await src.query('BEGIN');
  try {
    await src.query('SELECT txid_current()');
    await src.query('COMMIT');
  } catch (err) {
    await src.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  const { rows } = await src.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return rows[0].lsn;
}

/** Enables (or disables) each database's subscription whose state differs; `clients` are per database. */
async function setSubscriptionsEnabled(
  clients: Client[],
  databases: ReplicatedDatabase[],
  enabled: boolean,
): Promise<void> {
  for (const [i, db] of databases.entries()) {
    const c = clients[i];
    const { rows } = await c.query<{ enabled: boolean }>(
      `SELECT subenabled AS enabled FROM pg_subscription
        WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [db.names.subscription],
    );
    if (rows.length === 0 || rows[0].enabled === enabled) continue;
    const sub = quoteIdent(db.names.subscription);
    await c.query(`ALTER SUBSCRIPTION ${sub} ${enabled ? 'ENABLE' : 'DISABLE'}`);
  }
}

/**
 * Disables every database's subscription on the target: once the target caught up at the cutover, nothing
 * the source receives afterwards (a late commit) may be applied over what the services write on the
 * target. Idempotent; the clean-up drops disabled subscriptions as it drops enabled ones.
 */
export async function disableSubscriptions(target: PgTarget, databases: ReplicatedDatabase[]): Promise<void> {
  const clients: Client[] = [];
  try {
    for (const db of databases) clients.push(await openClient(target, db.name));
    await setSubscriptionsEnabled(clients, databases, false);
  } catch (err) {
    throw redactError(target, err);
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}

/** Errors of the subscriptions' apply and table-sync workers so far (the target's statistics, 15+). */
async function applyErrors(c: Client, databases: ReplicatedDatabase[]): Promise<number> {
  const { rows } = await c.query<{ n: string | null }>(
    `SELECT sum(apply_error_count + sync_error_count)::text AS n FROM pg_stat_subscription_stats
      WHERE subname = ANY ($1)`,
    [databases.map((d) => d.names.subscription)],
  );
  return Number(rows[0]?.n ?? 0);
}

async function throwIfSchemaChanged(
  source: PgTarget,
  target: PgTarget,
  databases: ReplicatedDatabase[],
): Promise<void> {
  const differences = await schemaDifferences(
    source,
    target,
    databases.map((d) => d.name),
  );
  if (differences.length === 0) return;
  throw schemaChangedError(differences);
}

const SHOWN = 20;

/** The error the cutover fails with when the source's schema changed since it was copied. */
export function schemaChangedError(differences: string[]): SchemaChangedError {
  const shown = differences.slice(0, SHOWN).join('; ');
  const more = differences.length > SHOWN ? `; and ${differences.length - SHOWN} more` : '';
  return new SchemaChangedError(
    `the source's schema changed after it was copied, and DDL is not replicated: ${shown}${more}. The ` +
      'migration rolls back and the services come back up on the source; migrate again once the schema ' +
      'is settled (the new migration copies it as it is then)',
    differences,
  );
}
