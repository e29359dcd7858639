import { type PgTarget, withClient } from '../connection';

/**
 * Settings for the restore's own sessions (PGOPTIONS), none of them persistent: they end with the sessions.
 * - synchronous_commit off: a commit does not wait for the disk. pg_restore commits each object on its own,
 *   so a schema of many objects waits on thousands of flushes (2000 tables: 7.6 s instead of 13.6 s here).
 *   Safe: a target that crashes mid-restore is reset and restored again, and the restore ends with a
 *   synchronous commit (flushWal) that makes everything before it durable.
 * - default_transaction_read_only off: a database whose settings make it read-only must still be restored
 *   (pg_restore reconnects after applying a database's settings; psql's script never does).
 * maintenance_work_mem is left as the target has it: raising it (a share of shared_buffers per job) made
 * no index build faster here, and each of the jobs may use that much at once on a target sized for less.
 */
export const BULK_LOAD_SETTINGS: Readonly<Record<string, string>> = {
  synchronous_commit: 'off',
  default_transaction_read_only: 'off',
};

/**
 * A synchronous commit of a transaction that writes (an xid is assigned): it flushes the WAL up to its
 * commit record, so every asynchronous commit of the restore before it is on disk too.
 */
export async function flushWal(target: PgTarget): Promise<void> {
  await withClient(target, target.database, async (c) => {
    await c.query('SET synchronous_commit = on');
    await c.query('SELECT txid_current()');
  });
}
