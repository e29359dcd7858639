import { type PgTarget, withClient } from './connection';
import { listDatabases } from './inspect';
import { abortReason } from './process';

export interface VacuumOptions {
  /** Called before each database, so a long run still shows where it is. */
  onProgress?(database: string, index: number, total: number): void;
  signal?: AbortSignal;
}

/**
 * The guide's cleanup loop: `VACUUM ANALYZE` in every non-template database. A restore leaves tables without
 * statistics (bad plans) and without visibility maps; this fixes both. Safe to repeat.
 */
export async function vacuumAnalyzeAll(t: PgTarget, opts: VacuumOptions = {}): Promise<string[]> {
  const databases = await listDatabases(t);
  for (const [i, db] of databases.entries()) {
    opts.signal?.throwIfAborted();
    opts.onProgress?.(db, i, databases.length);
    await withClient(t, db, async (client) => {
      const stop = () => void client.end().catch(() => undefined);
      opts.signal?.addEventListener('abort', stop, { once: true });
      try {
        await client.query('VACUUM ANALYZE');
      } catch (err) {
        throw opts.signal?.aborted ? abortReason(opts.signal) : err;
      } finally {
        opts.signal?.removeEventListener('abort', stop);
      }
    });
  }
  return databases;
}
