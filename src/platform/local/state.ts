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
}

export interface ServiceRecord {
  command: string;
  /** The desired count (what `apps` reports), as on Aptible. */
  containerCount: number;
  containers: ContainerRecord[];
}

export interface AppRecord {
  app: string;
  environment: string;
  /** Working directory of the app's processes. */
  cwd: string;
  services: Record<string, ServiceRecord>;
  createdAt: string;
}

export interface LocalState {
  version: 1;
  databases: Record<string, DatabaseRecord>;
  apps: Record<string, AppRecord>;
}

export function recordKey(environment: string, handle: string): string {
  return `${environment}/${handle}`;
}

function emptyState(): LocalState {
  return { version: 1, databases: {}, apps: {} };
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
