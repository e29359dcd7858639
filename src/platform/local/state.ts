import { HomeLayout } from './paths';
import { readJsonIfExists, writeFileAtomic } from './files';
import { withLock } from './lock';

/** One local database: a PostgreSQL cluster of its own. Holds no secret (the password is a separate file). */
export interface DatabaseRecord {
  handle: string;
  environment: string;
  /** Major version, e.g. "17". */
  version: string;
  createdBy: string;
  /** "creating" until initdb, start and bootstrap all finished; a crash leaves it for the next create to redo. */
  status: 'creating' | 'ready';
  port: number;
  /** Owned by the PostgreSQL OS user; holds data/ and server.log. May be outside the home (see clusterRoot). */
  clusterDir: string;
  dataDir: string;
  diskSizeGb?: number;
  containerSizeMb?: number;
  createdAt: string;
}

export interface ContainerRecord {
  index: number;
  pid: number;
  /** From /proc: tells the recorded process apart from a later one that reuses its pid. */
  startTime?: string;
  startedAt: string;
  /** In the container's environment (absent in records written before tags existed). */
  tag?: string;
}

/** A container about to be started: recorded first, so a starter killed before recording its pid leaves a trace. */
export interface StartingContainer {
  index: number;
  tag: string;
  startedAt: string;
}

export interface ServiceRecord {
  command: string;
  /** The desired count (what `apps` reports), as on Aptible. */
  containerCount: number;
  containers: ContainerRecord[];
  /** Containers being started; the next scale (or stop) of the service adopts or forgets them. */
  starting?: StartingContainer[];
}

export interface AppRecord {
  app: string;
  environment: string;
  /** Working directory of the app's processes. */
  cwd: string;
  services: Record<string, ServiceRecord>;
  createdAt: string;
}

/**
 * One backup of a local database: a physical copy of its data directory (PostgreSQL's own base backup),
 * restorable into a new cluster of the same major version. Holds no secret (the password is a separate file).
 */
export interface BackupRecord {
  /** A decimal number, as Aptible's backup ids; never reused within a home (see LocalState.nextBackupId). */
  id: string;
  databaseHandle: string;
  environment: string;
  /** The backed-up database's createdAt: tells its backups from those of a later database with its handle. */
  databaseCreatedAt: string;
  /** Set when pgshift deprovisioned that database (its backups are then "orphaned", as Aptible's final backups). */
  databaseDeletedAt?: string;
  /** Major version, e.g. "14": a restore needs a server of this version. */
  version: string;
  /** "creating" until the copy is complete; a crash leaves it for the next backup of that database to remove. */
  status: 'creating' | 'ready';
  /** Owned by the PostgreSQL OS user; holds data/ (a data directory ready to start). */
  dir: string;
  /** How it was taken: pg_basebackup, or PostgreSQL's low-level backup API when no usable pg_basebackup exists. */
  method?: 'pg_basebackup' | 'low-level';
  createdAt: string;
  sizeBytes?: number;
  diskSizeGb?: number;
  containerSizeMb?: number;
}

export interface LocalState {
  version: 1;
  databases: Record<string, DatabaseRecord>;
  apps: Record<string, AppRecord>;
  /** By backup id. Absent in state files written before backups existed: none. */
  backups: Record<string, BackupRecord>;
  /** The next backup id; absent before the first backup. */
  nextBackupId?: number;
}

export function recordKey(environment: string, handle: string): string {
  return `${environment}/${handle}`;
}

function emptyState(): LocalState {
  return { version: 1, databases: {}, apps: {}, backups: {} };
}

/**
 * The state file. Reads need no lock (writes replace the file atomically); every change is a
 * read-modify-write under one lock so concurrent processes never lose each other's updates.
 */
export class StateStore {
  constructor(private readonly layout: HomeLayout) {}

  async read(): Promise<LocalState> {
    const state = await readJsonIfExists<LocalState>(this.layout.stateFile);
    return { ...emptyState(), ...state };
  }

  async update<T>(change: (state: LocalState) => T | Promise<T>): Promise<T> {
    return withLock(this.layout.lockDir('state'), async () => {
      const state = await this.read();
      const result = await change(state);
      await writeFileAtomic(this.layout.stateFile, JSON.stringify(state, null, 2) + '\n', 0o600);
      return result;
    });
  }
}
