import { readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CreateDatabaseSpec, DatabaseConnection, Platform, ServiceInfo } from '../platform';
import type { LocalBackupInfo } from './backup-records';
import { ADMIN_ROLE, DEFAULT_DATABASE } from './cluster';
import { type CreateAppOptions, type LocalAppInfo, LocalApps } from './local-apps';
import { LocalBackups, type LocalRestoreBackupSpec } from './local-backups';
import { type LocalDatabaseInfo, LocalDatabases } from './local-databases';
import { LocalHome, SHARED_CLUSTER_ROOT } from './local-home';
import { resolvePgshiftHome } from './paths';
import type { LocalState } from './state';

export type { LocalBackupInfo } from './backup-records';
export {
  type CreateAppOptions,
  type LocalAppInfo,
  type LocalServiceInfo,
  MAX_CONTAINERS_PER_SERVICE,
} from './local-apps';
export type { LocalRestoreBackupSpec } from './local-backups';
export type { LocalDatabaseInfo } from './local-databases';
export type { LocalState };

export interface LocalPlatformOptions {
  /** Defaults to PGSHIFT_HOME, then ~/.pgshift. */
  home?: string;
  /** How long a container may take to exit after SIGTERM before it is killed. */
  stopGraceMs?: number;
}

/** What the local platform keeps in its home; destroy removes these and leaves anything else. */
const PLATFORM_ENTRIES = ['local-state.json', 'locks', 'secrets', 'logs', 'clusters'];

/**
 * The Platform on this machine: databases are PostgreSQL clusters, services are local processes. Each
 * concept lives in its own file (local-databases, local-backups, local-apps); this is the one object the
 * workflow's activities and the `pgshift local` commands use, and what concerns the whole home.
 */
export class LocalPlatform implements Platform {
  readonly name = 'local';
  readonly adminRole = ADMIN_ROLE;
  readonly expectedRestoreErrors = [
    `role "${ADMIN_ROLE}" already exists`,
    'role "postgres" already exists',
    `database "${DEFAULT_DATABASE}" already exists`,
  ] as const;
  readonly home: string;

  private readonly ctx: LocalHome;
  private readonly databases: LocalDatabases;
  private readonly backups: LocalBackups;
  private readonly apps: LocalApps;

  constructor(options: LocalPlatformOptions = {}) {
    this.home = resolvePgshiftHome(options.home);
    this.ctx = new LocalHome(this.home, options.stopGraceMs ?? 10_000);
    this.databases = new LocalDatabases(this.ctx);
    this.backups = new LocalBackups(this.ctx, this.databases);
    this.apps = new LocalApps(this.ctx);
  }

  // ---- databases ----

  listVersions(): Promise<string[]> {
    return this.databases.listVersions();
  }

  getDatabase(handle: string, environment: string): Promise<LocalDatabaseInfo | undefined> {
    return this.databases.getDatabase(handle, environment);
  }

  listDatabases(environment?: string): Promise<LocalDatabaseInfo[]> {
    return this.databases.listDatabases(environment);
  }

  createDatabase(spec: CreateDatabaseSpec): Promise<LocalDatabaseInfo> {
    return this.databases.createDatabase(spec);
  }

  async deprovisionDatabase(handle: string, environment: string): Promise<void> {
    await this.databases.deprovisionDatabaseIfAny(handle, environment);
  }

  /** deprovisionDatabase, resolving to whether there was a database to deprovision. */
  deprovisionDatabaseIfAny(handle: string, environment: string): Promise<boolean> {
    return this.databases.deprovisionDatabaseIfAny(handle, environment);
  }

  connect(handle: string, environment: string): Promise<DatabaseConnection> {
    return this.databases.connect(handle, environment);
  }

  async databaseUrl(handle: string, environment: string): Promise<string> {
    return (await this.databases.connect(handle, environment)).url;
  }

  /** Stops a database's server without removing it; the next connect starts it again. */
  stopDatabase(handle: string, environment: string): Promise<void> {
    return this.databases.stopDatabase(handle, environment);
  }

  // ---- backups ----

  /** `aptible db:backup`: a physical base backup of the database, taken while it runs. */
  createBackup(handle: string, environment: string): Promise<LocalBackupInfo> {
    return this.backups.createBackup(handle, environment);
  }

  listBackups(handle: string, environment: string): Promise<LocalBackupInfo[]> {
    return this.backups.listBackups(handle, environment);
  }

  getBackup(id: string): Promise<LocalBackupInfo> {
    return this.backups.getBackup(id);
  }

  listOrphanedBackups(environment?: string): Promise<LocalBackupInfo[]> {
    return this.backups.listOrphanedBackups(environment);
  }

  /** `aptible backup:purge`: purging a backup that is gone succeeds. */
  async purgeBackup(id: string): Promise<void> {
    await this.backups.purgeBackupIfAny(id);
  }

  /** purgeBackup, resolving to whether there was a backup to purge. */
  purgeBackupIfAny(id: string): Promise<boolean> {
    return this.backups.purgeBackupIfAny(id);
  }

  restoreBackup(spec: LocalRestoreBackupSpec): Promise<LocalDatabaseInfo> {
    return this.backups.restoreBackup(spec);
  }

  // ---- apps and services ----

  createApp(
    app: string,
    services: Record<string, string>,
    environment: string,
    options: CreateAppOptions = {},
  ): Promise<LocalAppInfo> {
    return this.apps.createApp(app, services, environment, options);
  }

  /** Stops the app's processes and forgets it; resolves to whether it was there. */
  deprovisionApp(app: string, environment: string): Promise<boolean> {
    return this.apps.deprovisionApp(app, environment);
  }

  listApps(environment?: string): Promise<LocalAppInfo[]> {
    return this.apps.listApps(environment);
  }

  listServices(environment: string): Promise<ServiceInfo[]> {
    return this.apps.listServices(environment);
  }

  scaleService(app: string, service: string, containerCount: number, environment: string): Promise<void> {
    return this.apps.scaleService(app, service, containerCount, environment);
  }

  setConfig(app: string, vars: Record<string, string>, environment: string): Promise<void> {
    return this.apps.setConfig(app, vars, environment);
  }

  /** The app's configuration. SECRET: values are typically database URLs. */
  getConfig(app: string, environment: string): Promise<Record<string, string>> {
    return this.apps.getConfig(app, environment);
  }

  // ---- the whole home ----

  /** Stops every process and cluster of this home. Desired container counts stay recorded (see startAll). */
  async stopAll(): Promise<void> {
    await this.apps.stopAll();
    await this.databases.stopAll();
  }

  /** Starts every cluster and brings every service to its recorded container count (e.g. after a reboot). */
  async startAll(): Promise<void> {
    await this.databases.startAll();
    await this.apps.startAll();
  }

  /**
   * Stops everything and deletes every database, backup and app of this home, with the platform's state
   * (irreversible). What else lives in the home is not the platform's and stays: the dev server's history
   * and log (`pgshift dev`, maybe running), migration dumps under work/. The home goes when nothing is left.
   * Resolves to the names of what was kept.
   */
  async destroy(): Promise<{ kept: string[] }> {
    // Removes what it can even when stopping failed, then reports that failure.
    const stopped = await this.stopAll().then(
      () => undefined,
      (err: unknown) => err,
    );
    const state = await this.ctx.store.read();
    for (const d of Object.values(state.databases)) await rm(d.clusterDir, { recursive: true, force: true });
    for (const b of Object.values(state.backups)) await rm(b.dir, { recursive: true, force: true });
    await rm(join(SHARED_CLUSTER_ROOT, this.ctx.layout.homeId), { recursive: true, force: true });
    const entries = await readdir(this.home).catch(() => [] as string[]);
    const ours = (name: string) =>
      PLATFORM_ENTRIES.includes(name) || name.startsWith('local-state.json.tmp-');
    for (const name of entries.filter(ours)) {
      await rm(join(this.home, name), { recursive: true, force: true });
    }
    const kept = entries.filter((name) => !ours(name)).sort();
    if (kept.length === 0) await rmdir(this.home).catch(() => undefined);
    if (stopped) throw stopped;
    return { kept };
  }
}

export function createLocalPlatform(options: LocalPlatformOptions = {}): LocalPlatform {
  return new LocalPlatform(options);
}
