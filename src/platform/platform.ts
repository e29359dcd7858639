// The platform boundary: everything the guide does with the Aptible CLI. The workflow and its activities
// only talk to this interface, so a platform (local, aptible) plugs in without touching them.
// Nothing returned here that holds a password may be passed to Temporal: activities use it and drop it.

export interface DatabaseInfo {
  handle: string;
  environment: string;
  /** PostgreSQL major version, e.g. 17. */
  version: number;
  /** Bytes the database takes on disk, when the platform knows it. */
  sizeBytes?: number;
  /** The migration id that created it, when the platform can record one. */
  createdBy?: string;
  /** Memory of its container in MB, when the platform reports it. */
  containerSizeMb?: number;
  /** When it was created (ISO 8601), when the platform reports it. */
  createdAt?: string;
}

export interface CreateDatabaseSpec {
  handle: string;
  environment: string;
  version: string;
  diskSizeGb: number;
  containerSizeMb: number;
  /** The migration creating it; platforms that can store a label keep it for idempotency checks. */
  createdBy: string;
}

/** Credentials to reach a database from this worker (directly, or through a tunnel). SECRET. */
export interface DatabaseConnection {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The database the platform creates on every server ("db" on Aptible). */
  database: string;
  /** postgresql://user:password@host:port/database */
  url: string;
  /** Closes the tunnel, if any. Safe to call twice. */
  close(): Promise<void>;
}

export interface ServiceInfo {
  app: string;
  service: string;
  containerCount: number;
}

export interface OrphanedBackup {
  id: string;
  databaseHandle: string;
  environment: string;
  createdAt?: string;
}

export interface BackupInfo extends OrphanedBackup {
  /** ISO time the backup was taken. */
  createdAt: string;
  sizeBytes?: number;
}

/** `aptible backup:restore ID --handle H --container-size N`: a new database holding a backup's data. */
export interface RestoreBackupSpec {
  backupId: string;
  handle: string;
  environment: string;
  /** Default: the backed-up database's. */
  containerSizeMb?: number;
  /** The run restoring it; platforms that can store a label keep it for idempotency checks. */
  createdBy: string;
}

export interface Platform {
  readonly name: string;
  /** The admin role every database of this platform has; its password must not be overwritten by a restore. */
  readonly adminRole: string;
  /** Restore errors that are expected on a fresh database of this platform (text after "ERROR:"). */
  readonly expectedRestoreErrors: readonly string[];

  /** Major versions this platform can create, e.g. ["14", "15", "17"]. */
  listVersions(): Promise<string[]>;
  getDatabase(handle: string, environment: string): Promise<DatabaseInfo | undefined>;
  createDatabase(spec: CreateDatabaseSpec): Promise<DatabaseInfo>;
  /** Idempotent: deprovisioning a database that is gone succeeds. */
  deprovisionDatabase(handle: string, environment: string): Promise<void>;
  /** Opens a connection usable by pg_dumpall/psql on this machine; the caller must close() it. */
  connect(handle: string, environment: string): Promise<DatabaseConnection>;
  /** The URL apps use to reach the database (not a tunnel's). SECRET. */
  databaseUrl(handle: string, environment: string): Promise<string>;

  listServices(environment: string): Promise<ServiceInfo[]>;
  scaleService(app: string, service: string, containerCount: number, environment: string): Promise<void>;
  setConfig(app: string, vars: Record<string, string>, environment: string): Promise<void>;
  /** An app's configuration (`aptible config`). SECRET values. */
  getConfig(app: string, environment: string): Promise<Record<string, string>>;

  /** A database's backups, newest first (`aptible backup:list HANDLE`). */
  listBackups(handle: string, environment: string): Promise<BackupInfo[]>;
  /** Idempotent like createDatabase: the database this run already restored is returned as it is. */
  restoreBackup(spec: RestoreBackupSpec): Promise<DatabaseInfo>;
  /** Final backups of deprovisioned databases (`aptible backup:orphaned`). */
  listOrphanedBackups(environment: string): Promise<OrphanedBackup[]>;
  purgeBackup(id: string): Promise<void>;

  /**
   * Aptible's `db:replicate SOURCE REPLICA --logical --version V`: creates the target as a logical replica
   * of the source (roles, schema and the initial sync included) and returns it. Optional: a platform without
   * it gets pgshift's own publications and subscriptions (method logical on the local platform).
   */
  replicateLogical?(spec: CreateDatabaseSpec & { sourceHandle: string }): Promise<DatabaseInfo>;

  /**
   * Warnings about this worker's access to the platform that preflight should show, e.g. a login that
   * ends within `horizonMs`, before the migration may be done. Optional: platforms without logins omit it.
   */
  sessionWarnings?(horizonMs: number): Promise<string[]>;
}
