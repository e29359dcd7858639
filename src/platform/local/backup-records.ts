import { rm } from 'node:fs/promises';
import { BadInputError } from '../../errors';
import type { BackupInfo } from '../platform';
import type { BackupMethod } from './backup';
import type { LocalHome } from './local-home';
import type { BackupRecord, DatabaseRecord } from './state';

// Backups as the state file records them: what a backup is of, how it is described, how it is removed.
// Shared by the databases (a deprovision marks their backups orphaned) and the backups themselves.

export interface LocalBackupInfo extends BackupInfo {
  /** PostgreSQL major version of the backed-up database: a restore makes a database of this version. */
  version: number;
  sizeBytes?: number;
  diskSizeGb?: number;
  containerSizeMb?: number;
  /** When pgshift deprovisioned the backed-up database, if it did. */
  databaseDeletedAt?: string;
  method?: BackupMethod;
  /** Where its files are (owned by the PostgreSQL OS user). */
  dir: string;
}

/** Whether a backup was taken of this database (not of an earlier one that had its handle). */
export function isBackupOf(backup: BackupRecord, db: DatabaseRecord): boolean {
  return (
    backup.environment === db.environment &&
    backup.databaseHandle === db.handle &&
    backup.databaseCreatedAt === db.createdAt
  );
}

export function newestFirst(records: BackupRecord[]): LocalBackupInfo[] {
  return records
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || Number(b.id) - Number(a.id))
    .map(describeBackup);
}

export function describeBackup(record: BackupRecord): LocalBackupInfo {
  return {
    id: record.id,
    databaseHandle: record.databaseHandle,
    environment: record.environment,
    createdAt: record.createdAt,
    version: Number(record.version),
    sizeBytes: record.sizeBytes,
    diskSizeGb: record.diskSizeGb,
    containerSizeMb: record.containerSizeMb,
    databaseDeletedAt: record.databaseDeletedAt,
    method: record.method,
    dir: record.dir,
  };
}

export function checkBackupId(id: string): void {
  if (typeof id !== 'string' || !/^[1-9]\d{0,15}$/.test(id)) {
    throw new BadInputError(`"${id}" is not a backup id of the local platform (a number, see backup:list)`);
  }
}

export async function removeBackup(ctx: LocalHome, record: BackupRecord): Promise<void> {
  await rm(record.dir, { recursive: true, force: true });
  await rm(ctx.layout.backupPasswordFile(record.id), { force: true });
  await ctx.store.update((state) => {
    delete state.backups[record.id];
  });
}

/** Backups a crash left unfinished. Called under the database's lock, so none of them is still being taken. */
export async function removeHalfMadeBackups(
  ctx: LocalHome,
  environment: string,
  handle: string,
): Promise<void> {
  const state = await ctx.store.read();
  for (const b of Object.values(state.backups)) {
    if (b.status === 'creating' && b.environment === environment && b.databaseHandle === handle) {
      await removeBackup(ctx, b);
    }
  }
}
