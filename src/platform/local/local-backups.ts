import { chown, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, PlatformError } from '../../errors';
import { pathWithin } from '../../lib/path-component';
import type { RestoreBackupSpec } from '../platform';
import {
  type BackupMethod,
  copyBackupData,
  findBaseBackup,
  hasTablespaces,
  prepareRestoredData,
  runBaseBackup,
  runLowLevelBackup,
  setAdminPassword,
} from './backup';
import {
  checkBackupId,
  describeBackup,
  isBackupOf,
  type LocalBackupInfo,
  newestFirst,
  removeBackup,
  removeHalfMadeBackups,
} from './backup-records';
import { bootstrapCluster, ensureReplicationHba, reloadServerConfig, startCluster } from './cluster';
import { ensureDir, readTextIfExists, writeFileAtomic } from './files';
import { diskUsage, type LocalDatabaseInfo, type LocalDatabases } from './local-databases';
import { type LocalHome, passThroughMode } from './local-home';
import { withLock } from './lock';
import { checkHandle } from './names';
import type { ServerUser } from './server-user';
import type { BackupRecord } from './state';

// Backups of local databases, as `aptible db:backup`, `backup:list`, `backup:restore` and `backup:purge`.

export interface LocalRestoreBackupSpec extends RestoreBackupSpec {
  /** Recorded only, as on createDatabase. Default: the backed-up database's. */
  diskSizeGb?: number;
}

export class LocalBackups {
  constructor(
    private readonly ctx: LocalHome,
    private readonly databases: LocalDatabases,
  ) {}

  /**
   * `aptible db:backup`: a physical base backup of the database (taken while it runs), restorable with
   * restoreBackup. Ids are decimal numbers like Aptible's, never reused within this home.
   */
  async createBackup(handle: string, environment: string): Promise<LocalBackupInfo> {
    checkHandle('database handle', handle);
    checkHandle('environment', environment);
    // The database's lock: no deprovision, stop or second backup of it meanwhile.
    return withLock(this.ctx.layout.lockDir('db', environment, handle), async () => {
      const db = await this.databases.requireDatabase(handle, environment);
      await removeHalfMadeBackups(this.ctx, environment, handle);
      const user = await this.ctx.serverUser();
      const install = await this.ctx.usableInstall(await this.ctx.installFor(db), user);
      const port = await this.databases.startLocked(db);
      const current = { ...db, port };
      if (await hasTablespaces(current)) {
        throw new PlatformError(
          `database "${handle}" has tablespaces outside its data directory; local backups do not hold them`,
        );
      }
      const password = await this.databases.readPassword(handle, environment);
      const backupsRoot = await this.backupsRoot(user);
      const record = await this.ctx.store.update((state) => {
        const used = Object.keys(state.backups).map(Number);
        const id = Math.max(state.nextBackupId ?? 1, ...used.map((n) => n + 1));
        state.nextBackupId = id + 1;
        const created: BackupRecord = {
          id: String(id),
          databaseHandle: handle,
          environment,
          databaseCreatedAt: db.createdAt,
          version: db.version,
          status: 'creating',
          dir: pathWithin(backupsRoot, 'backup id', String(id)),
          createdAt: new Date().toISOString(),
          diskSizeGb: db.diskSizeGb,
          containerSizeMb: db.containerSizeMb,
        };
        state.backups[created.id] = created;
        return created;
      });
      try {
        await rm(record.dir, { recursive: true, force: true });
        await ensureDir(record.dir, 0o700);
        if (user) await chown(record.dir, user.uid, user.gid);
        // The restored database starts with the backed-up one's roles: this password lets pgshift log in.
        await writeFileAtomic(this.ctx.layout.backupPasswordFile(record.id), password + '\n', 0o600);
        const source = { paths: current, port, password, major: Number(db.version) };
        const label = `pgshift backup ${record.id} of ${environment}/${handle}`;
        const dataDir = join(record.dir, 'data');
        let method: BackupMethod;
        const tool = await findBaseBackup(Number(db.version), install.binDir, user);
        if (tool) {
          if (await ensureReplicationHba(current)) await reloadServerConfig(port, password);
          await runBaseBackup(tool, user, source, dataDir, record.dir, label);
          method = 'pg_basebackup';
        } else {
          await runLowLevelBackup(user, source, dataDir, label);
          method = 'low-level';
        }
        const sizeBytes = await diskUsage(dataDir);
        const ready = await this.ctx.store.update((state) => {
          const b = state.backups[record.id];
          if (!b) throw new PlatformError(`backup ${record.id} was purged while it was being taken`);
          Object.assign(b, { status: 'ready', method, sizeBytes });
          return b;
        });
        return describeBackup(ready);
      } catch (err) {
        await removeBackup(this.ctx, record).catch(() => undefined);
        throw err;
      }
    });
  }

  /** A database's backups, newest first (`aptible backup:list`). Those of an earlier database with its handle are orphaned. */
  async listBackups(handle: string, environment: string): Promise<LocalBackupInfo[]> {
    const db = await this.databases.requireDatabase(handle, environment);
    const state = await this.ctx.store.read();
    return newestFirst(Object.values(state.backups).filter((b) => b.status === 'ready' && isBackupOf(b, db)));
  }

  /** One backup, whatever its database became; a NotFoundError when there is none with that id. */
  async getBackup(id: string): Promise<LocalBackupInfo> {
    checkBackupId(id);
    return describeBackup(await this.requireBackup(id));
  }

  /** Backups whose database is gone (`aptible backup:orphaned`), newest first; every environment without one. */
  async listOrphanedBackups(environment?: string): Promise<LocalBackupInfo[]> {
    const state = await this.ctx.store.read();
    const databases = Object.values(state.databases);
    return newestFirst(
      Object.values(state.backups).filter(
        (b) =>
          b.status === 'ready' &&
          (environment === undefined || b.environment === environment) &&
          !databases.some((d) => isBackupOf(b, d)),
      ),
    );
  }

  /** purgeBackup, resolving to whether there was a backup to purge. */
  async purgeBackupIfAny(id: string): Promise<boolean> {
    checkBackupId(id);
    return withLock(this.ctx.layout.lockDir('backup', id), async () => {
      const record = (await this.ctx.store.read()).backups[id];
      if (record) await removeBackup(this.ctx, record);
      return record !== undefined;
    });
  }

  /**
   * `aptible backup:restore`: a new database (its own cluster and port) holding the backup's data.
   * Idempotent like createDatabase: the same createdBy gets the database it restored, another creator's
   * database with that handle is a TargetExistsError, and a half-made one from a crash is redone.
   * The restored database's admin password is a new one: it does not open the backed-up database.
   */
  async restoreBackup(spec: LocalRestoreBackupSpec): Promise<LocalDatabaseInfo> {
    const { backupId, handle, environment } = spec;
    checkBackupId(backupId);
    checkHandle('database handle', handle);
    checkHandle('environment', environment);
    return withLock(this.ctx.layout.lockDir('db', environment, handle), async () => {
      const ours = await this.databases.ourOwnOrNone(
        handle,
        environment,
        spec.createdBy,
        `restore backup ${backupId} under another handle`,
      );
      if (ours) return ours;

      // The backup's lock: not purged while it is copied.
      return withLock(this.ctx.layout.lockDir('backup', backupId), async () => {
        const backup = await this.requireBackup(backupId);
        const oldPassword = await readTextIfExists(this.ctx.layout.backupPasswordFile(backupId));
        if (oldPassword === undefined) {
          throw new PlatformError(
            `the password file of backup ${backupId} is missing from ${this.ctx.layout.secretsDir}; it cannot be restored`,
          );
        }
        const user = await this.ctx.serverUser();
        const install = await this.ctx.usableInstall(await this.ctx.installFor(backup), user);
        const record = await this.databases.newRecord(user, {
          handle,
          environment,
          version: backup.version,
          createdBy: spec.createdBy,
          diskSizeGb: spec.diskSizeGb ?? backup.diskSizeGb,
          containerSizeMb: spec.containerSizeMb ?? backup.containerSizeMb,
        });
        return this.databases.bringUp(record, async (password) => {
          await copyBackupData(user, join(backup.dir, 'data'), record);
          await prepareRestoredData(user, record, record.port);
          await startCluster(install, user, record);
          await setAdminPassword(record.port, oldPassword.trim(), password);
          await bootstrapCluster(record.port, password);
        });
      });
    });
  }

  private async requireBackup(id: string): Promise<BackupRecord> {
    const record = (await this.ctx.store.read()).backups[id];
    if (record?.status !== 'ready') {
      throw new NotFoundError(
        `backup "${id}" not found on the local platform (home ${this.ctx.home}); list a database's backups ` +
          'with: pgshift local backup:list HANDLE --environment ENV (those of deprovisioned databases: ' +
          'pgshift local backup:orphaned)',
      );
    }
    return record;
  }

  /** Backups sit beside the clusters, in "_backups" (no environment can have that name). */
  private async backupsRoot(user: ServerUser | undefined): Promise<string> {
    const dir = join(await this.ctx.clusterRoot(user), '_backups');
    await ensureDir(dir, passThroughMode(user));
    return dir;
  }
}
