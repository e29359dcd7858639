import { setTimeout as sleep } from 'node:timers/promises';
import { RestoreInterruptedError } from '../../errors';
import { type PgTarget, withClient } from '../connection';

const POLL_MS = 250;

/**
 * Ends the other sessions the restore's role has on the target, and waits until they are gone. A killed
 * psql or pg_restore (an earlier attempt's, or one a dead worker left running) leaves its server session
 * running the statement it was on: a CREATE DATABASE that commits after the reset looked would meet the
 * retry as "already exists". Only the role's own sessions, and only those there now: a platform's agent
 * that reconnects is not waited for (the reset ends its sessions in the databases it drops anyway).
 */
export async function endStraySessions(target: PgTarget, timeoutMs = 60_000): Promise<void> {
  await withClient(target, target.database, async (c) => {
    // Terminated in the select list, evaluated only for the rows the WHERE kept.
    const { rows } = await c.query<{ pid: number }>(
      `SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE usename = current_user AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
    );
    const pids = rows.map((r) => r.pid);
    const deadline = Date.now() + timeoutMs;
    while (pids.length > 0) {
      const { rows: left } = await c.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
        [pids],
      );
      if (left[0].n === 0) return;
      if (Date.now() > deadline) {
        throw new RestoreInterruptedError(
          `${left[0].n} earlier session(s) of ${target.user} on the target did not end within ` +
            `${timeoutMs / 1000} s of being told to; the restore is retried`,
        );
      }
      await sleep(POLL_MS);
    }
  });
}
