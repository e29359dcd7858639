// The fake Aptible's state: what the real API would hold (environments, apps and their services and
// configuration, databases' metadata, backups, operations), plus the fake's own bookkeeping (fault
// counters, expired tokens). One JSON file under FAKE_APTIBLE_HOME, changed under a lock: several fake
// processes run at once (a tunnel stays up while other commands run). Databases and backups are real: the
// local platform under FAKE_APTIBLE_HOME/local holds them, keyed by the same environment and handle.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonIfExists, writeFileAtomic } from '../../src/platform/local/files';
import { withLock } from '../../src/platform/local/lock';

export const HOME_ENV = 'FAKE_APTIBLE_HOME';

export interface EnvironmentRecord {
  id: number;
  handle: string;
  createdAt: string;
  /** Aptible environments keep a deprovisioned database's final backup by default; false turns that off. */
  retainFinalBackups: boolean;
}

export interface ServiceRecord {
  id: number;
  containerCount: number;
  /** MB */
  containerSize: number;
  containerProfile: string | null;
  command: string | null;
  createdAt: string;
}

export interface AppRecord {
  id: number;
  handle: string;
  environment: string;
  createdAt: string;
  services: Record<string, ServiceRecord>;
  /** Insertion order is the order `aptible config` prints. */
  config: Record<string, string>;
}

export type DatabaseStatus = 'pending' | 'provisioning' | 'provisioned' | 'deprovisioning';

export interface DatabaseRecord {
  id: number;
  handle: string;
  environment: string;
  type: 'postgresql';
  version: string;
  status: DatabaseStatus;
  diskSizeGb: number;
  containerSizeMb: number;
  containerProfile: string | null;
  createdAt: string;
  /** The source of a replica (db:replicate), until the replica is unlinked (a dashboard action). */
  replicaOf?: number;
}

/** A database that was deprovisioned (what `database_with_deleted` returns for its backups). */
export interface DeletedDatabaseRecord {
  id: number;
  handle: string;
  type: 'postgresql';
  environment: string;
  deletedAt: string;
}

export interface BackupRecord {
  id: number;
  /** The local platform's backup id holding the data. */
  localId: string;
  databaseId: number;
  databaseHandle: string;
  environment: string;
  manual: boolean;
  createdAt: string;
  /** GB (Aptible reports the backed-up volume's size). */
  size: number;
  region: string;
  /** The `db:backup` operation that took it (manual backups only). */
  operationId?: number;
}

export interface OperationRecord {
  id: number;
  type: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  userEmail: string;
  createdAt: string;
  resource: string;
}

export interface FakeState {
  version: 1;
  nextId: number;
  environments: Record<string, EnvironmentRecord>;
  /** By `${environment}/${app}`. */
  apps: Record<string, AppRecord>;
  /** By `${environment}/${handle}`. */
  databases: Record<string, DatabaseRecord>;
  /** By id. */
  deletedDatabases: Record<string, DeletedDatabaseRecord>;
  /** By id. */
  backups: Record<string, BackupRecord>;
  /** By id. */
  operations: Record<string, OperationRecord>;
  /** Matching invocations seen so far, per fault rule (see faults.ts). */
  faultCounters: Record<string, number>;
  /** Tokens the "API" answers with 401 expired_token. */
  expiredTokens: string[];
}

export function emptyState(): FakeState {
  return {
    version: 1,
    nextId: 1000,
    environments: {},
    apps: {},
    databases: {},
    deletedDatabases: {},
    backups: {},
    operations: {},
    faultCounters: {},
    expiredTokens: [],
  };
}

export function key(environment: string, handle: string): string {
  return `${environment}/${handle}`;
}

export function nextId(state: FakeState): number {
  return state.nextId++;
}

export const paths = {
  state: (home: string) => join(home, 'state.json'),
  lock: (home: string) => join(home, 'state.lock'),
  faults: (home: string) => join(home, 'faults.json'),
  invocations: (home: string) => join(home, 'invocations.jsonl'),
  local: (home: string) => join(home, 'local'),
  /** One file per running fake process (pid), so a fixture can stop what is left (tunnels, hung commands). */
  procs: (home: string) => join(home, 'procs'),
};

export async function readState(home: string): Promise<FakeState> {
  return { ...emptyState(), ...(await readJsonIfExists<FakeState>(paths.state(home))) };
}

export function readStateSync(home: string): FakeState {
  try {
    return { ...emptyState(), ...(JSON.parse(readFileSync(paths.state(home), 'utf8')) as FakeState) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw err;
  }
}

/** Read-modify-write under the lock; never hold it across slow work (cluster creation, tunnels). */
export async function updateState<T>(home: string, change: (state: FakeState) => T | Promise<T>): Promise<T> {
  return withLock(
    paths.lock(home),
    async () => {
      const state = await readState(home);
      const result = await change(state);
      await writeFileAtomic(paths.state(home), JSON.stringify(state, null, 2) + '\n', 0o600);
      return result;
    },
    { timeoutMs: 60_000 },
  );
}

/** `YYYY-MM-DD HH:MM:SS UTC`: how the CLI prints the API's times (Ruby Time#to_s of a UTC time). */
export function rubyTime(iso: string): string {
  return new Date(iso)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

export function appendLine(file: string, record: unknown): void {
  appendFileSync(file, JSON.stringify(record) + '\n', { mode: 0o600 });
}
