// Test-side helper for the fake `aptible` (README.md here): a private home, a PATH that finds the fake
// first, a logged-in token, state seeding (environments, apps), faults, and asserts on what the fake was
// asked to do. destroy() stops every fake process, tunnel and cluster it left and removes the home.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalPlatform } from '../../src/platform/local';
import type { FaultRule } from './faults';
import {
  type AppRecord,
  type BackupRecord,
  type DatabaseRecord,
  HOME_ENV,
  type ServiceRecord,
  key,
  nextId,
  paths,
  readStateSync,
  updateState,
} from './state';

export type { FaultAction, FaultRule } from './faults';
export type { BackupRecord, DatabaseRecord } from './state';

/** The fake executable itself. */
export const FAKE_APTIBLE_BIN = join(__dirname, 'aptible');

export interface InvocationRecord {
  argv: string[];
  env: { APTIBLE_OUTPUT_FORMAT?: string; APTIBLE_ACCESS_TOKEN?: string };
  pid: number;
  at: string;
  /** Absent while it runs, or when it was killed. */
  exitCode?: number;
}

export interface ServiceSpec {
  containerCount: number;
  /** MB, default 1024. */
  containerSize?: number;
  command?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** null when a signal ended it. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunOptions {
  /** Sets APTIBLE_OUTPUT_FORMAT (default: none, i.e. text). */
  format?: 'json' | 'text';
  /** Extra variables; `undefined` removes one (e.g. APTIBLE_ACCESS_TOKEN: undefined). */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

export interface Tunnel {
  child: ChildProcess;
  /** The URL printed after "Connect at" (with the password). */
  url: string;
  host: string;
  port: number;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  stdout(): string;
  /** Resolves when it exited. */
  exited: Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>;
  /** SIGINT (the way to stop the real one), then waits for it to exit. */
  close(): Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>;
}

export interface FakeAptible {
  home: string;
  /** A directory holding only `aptible` (a link to the fake): put it first on PATH. */
  binDir: string;
  /** The logged-in user's token (an unsigned JWT with `sub` and `email`, as the real CLI needs). */
  token: string;
  /** PATH (binDir first), FAKE_APTIBLE_HOME, APTIBLE_ACCESS_TOKEN, and a private APTIBLE_CONFIG_PATH. */
  env: Record<string, string>;
  /** The local platform holding the fake's databases (e.g. to seed data through connect()). */
  local: LocalPlatform;
  addEnvironment(handle: string, options?: { retainFinalBackups?: boolean }): Promise<void>;
  addApp(
    environment: string,
    app: string,
    services: Record<string, ServiceSpec>,
    config?: Record<string, string>,
  ): Promise<void>;
  /** The dashboard's "unlink" of a replica from its source (no CLI command does it). */
  unlinkReplica(environment: string, handle: string): Promise<void>;
  /** Replaces faults.json and resets the fault counters. */
  setFaults(rules: FaultRule[]): Promise<void>;
  /** The API answers this token (default: the fixture's) with 401 expired_token from now on. */
  expireToken(token?: string): Promise<void>;
  /** Every invocation so far, oldest first, with its exit code once it ended. */
  invocations(): InvocationRecord[];
  /** argv of every invocation joined with spaces (secrets masked), for exact-sequence asserts. */
  commands(): string[];
  app(
    environment: string,
    app: string,
  ): {
    services: Record<string, { containerCount: number; containerSize: number }>;
    config: Record<string, string>;
  };
  databases(): DatabaseRecord[];
  backups(): BackupRecord[];
  /** Backups whose database was deprovisioned (what backup:orphaned lists). */
  orphaned(): BackupRecord[];
  /** Runs the fake with this fixture's environment. */
  run(args: string[], options?: RunOptions): Promise<RunResult>;
  /** Starts `aptible db:tunnel` and waits for "Connected. Ctrl-C to close connection.". */
  tunnel(handle: string, environment: string, extraArgs?: string[]): Promise<Tunnel>;
  destroy(): Promise<void>;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** An unsigned JWT shaped like Aptible's (the real CLI decodes it without verifying: helpers/telemetry.rb). */
export function fakeToken(email = 'deploy@example.com'): string {
  const payload = {
    sub: 'https://auth.aptible.com/users/00000000-0000-4000-8000-000000000001',
    email,
    exp: Math.floor(Date.now() / 1000) + 7 * 24 * 3600,
  };
  return `${base64url({ alg: 'RS256', typ: 'JWT' })}.${base64url(payload)}.ZmFrZS1zaWduYXR1cmU`;
}

/** Whether pid is a fake `aptible` of this home (not a process that reused the pid of one that died). */
function isFakeOf(pid: number, home: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    return cmdline.some((a) => a.endsWith('/aptible')) && environ.includes(`${HOME_ENV}=${home}`);
  } catch {
    return false;
  }
}

export async function createFakeAptible(options: { home?: string } = {}): Promise<FakeAptible> {
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'fake-aptible-')));
  await mkdir(home, { recursive: true, mode: 0o700 });
  const binDir = join(home, 'bin');
  await mkdir(binDir, { recursive: true });
  if (!existsSync(join(binDir, 'aptible'))) await symlink(FAKE_APTIBLE_BIN, join(binDir, 'aptible'));
  const configDir = join(home, 'aptible-config');
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  const token = fakeToken();
  const env: Record<string, string> = {
    PATH: `${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    [HOME_ENV]: home,
    APTIBLE_ACCESS_TOKEN: token,
    APTIBLE_CONFIG_PATH: configDir,
  };
  const local = new LocalPlatform({ home: paths.local(home), stopGraceMs: 3_000 });
  const children = new Set<ChildProcess>();

  const childEnv = (extra: RunOptions['env'] = {}, format?: string): NodeJS.ProcessEnv => {
    const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
    if (format) merged.APTIBLE_OUTPUT_FORMAT = format;
    for (const [k, v] of Object.entries(extra)) {
      if (v === undefined) delete merged[k];
      else merged[k] = v;
    }
    return merged;
  };

  const fake: FakeAptible = {
    home,
    binDir,
    token,
    env,
    local,

    async addEnvironment(handle, opts = {}) {
      await updateState(home, (state) => {
        state.environments[handle] ??= {
          id: nextId(state),
          handle,
          createdAt: new Date().toISOString(),
          retainFinalBackups: true,
        };
        if (opts.retainFinalBackups !== undefined) {
          state.environments[handle].retainFinalBackups = opts.retainFinalBackups;
        }
      });
    },

    async addApp(environment, app, services, config = {}) {
      await updateState(home, (state) => {
        if (!state.environments[environment])
          throw new Error(`no environment ${environment}: addEnvironment first`);
        const now = new Date().toISOString();
        const record: AppRecord = {
          id: nextId(state),
          handle: app,
          environment,
          createdAt: now,
          services: {},
          config: { ...config },
        };
        for (const [name, spec] of Object.entries(services)) {
          const service: ServiceRecord = {
            id: nextId(state),
            containerCount: spec.containerCount,
            containerSize: spec.containerSize ?? 1024,
            containerProfile: null,
            command: spec.command ?? null,
            createdAt: now,
          };
          record.services[name] = service;
        }
        state.apps[key(environment, app)] = record;
      });
    },

    async unlinkReplica(environment, handle) {
      await updateState(home, (state) => {
        const db = state.databases[key(environment, handle)];
        if (!db) throw new Error(`the fake has no database ${handle} in environment ${environment}`);
        delete db.replicaOf;
      });
    },

    async setFaults(rules) {
      await writeFile(paths.faults(home), JSON.stringify(rules, null, 2) + '\n');
      await updateState(home, (state) => {
        state.faultCounters = {};
      });
    },

    async expireToken(expired = token) {
      await updateState(home, (state) => {
        if (!state.expiredTokens.includes(expired)) state.expiredTokens.push(expired);
      });
    },

    invocations() {
      let text = '';
      try {
        text = readFileSync(paths.invocations(home), 'utf8');
      } catch {
        return [];
      }
      const records = text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Partial<InvocationRecord> & { pid: number });
      const exits = new Map<number, number>();
      for (const r of records)
        if (r.argv === undefined && r.exitCode !== undefined) exits.set(r.pid, r.exitCode);
      return records
        .filter((r): r is InvocationRecord => r.argv !== undefined)
        .map((r) => (exits.has(r.pid) ? { ...r, exitCode: exits.get(r.pid) } : r));
    },

    commands() {
      return fake.invocations().map((i) => i.argv.join(' '));
    },

    app(environment, app) {
      const record = readStateSync(home).apps[key(environment, app)];
      if (!record) throw new Error(`the fake has no app ${app} in environment ${environment}`);
      return {
        services: Object.fromEntries(
          Object.entries(record.services).map(([name, s]) => [
            name,
            { containerCount: s.containerCount, containerSize: s.containerSize },
          ]),
        ),
        config: { ...record.config },
      };
    },

    databases() {
      return Object.values(readStateSync(home).databases).sort((a, b) => a.id - b.id);
    },

    backups() {
      return Object.values(readStateSync(home).backups).sort((a, b) => a.id - b.id);
    },

    orphaned() {
      const state = readStateSync(home);
      return Object.values(state.backups)
        .filter((b) => state.deletedDatabases[String(b.databaseId)] !== undefined)
        .sort((a, b) => a.id - b.id);
    },

    run(args, runOptions = {}) {
      return new Promise((resolve) => {
        const child = execFile(
          'aptible',
          args,
          {
            env: childEnv(runOptions.env, runOptions.format),
            timeout: runOptions.timeoutMs ?? 240_000,
            maxBuffer: 64 * 1024 * 1024,
          },
          (err, stdout, stderr) => {
            children.delete(child);
            const failure = err as (Error & { code?: number | string; signal?: NodeJS.Signals }) | null;
            resolve({
              stdout,
              stderr,
              exitCode: failure ? (typeof failure.code === 'number' ? failure.code : null) : 0,
              signal: failure?.signal ?? null,
            });
          },
        );
        children.add(child);
        child.stdin?.end();
      });
    },

    async tunnel(handle, environment, extraArgs = []) {
      const child = spawn('aptible', ['db:tunnel', handle, '--environment', environment, ...extraArgs], {
        env: childEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      let stderr = '';
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('exit', (exitCode, signal) => {
          children.delete(child);
          resolve({ exitCode, signal });
        }),
      );
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`tunnel did not come up in 120s: ${stderr}`)),
          120_000,
        );
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (stderr.includes('Connected. Ctrl-C to close connection.\n')) {
            clearTimeout(timer);
            resolve();
          }
        });
        void exited.then(({ exitCode }) => {
          clearTimeout(timer);
          reject(new Error(`tunnel exited (${exitCode}) before it came up: ${stderr}`));
        });
      });
      const url = /^Connect at (\S+)$/m.exec(stderr)?.[1] as string;
      const host = /^\* Host: (\S+)$/m.exec(stderr)?.[1] as string;
      const port = Number(/^\* Port: (\d+)$/m.exec(stderr)?.[1]);
      return {
        child,
        url,
        host,
        port,
        stderr: () => stderr,
        stdout: () => stdout,
        exited,
        async close() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
          return exited;
        },
      };
    },

    async destroy() {
      for (const child of children) child.kill('SIGKILL');
      // Fake processes this fixture did not start itself (e.g. a driver's tunnel) register under procs/.
      let pids: number[] = [];
      try {
        pids = readdirSync(paths.procs(home)).map(Number).filter(Number.isInteger);
      } catch {
        pids = [];
      }
      for (const pid of pids) {
        if (isFakeOf(pid, home)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
      }
      await local.destroy().catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    },
  };
  return fake;
}

/** The trailing JSON document of a stdout that may start with operation logs (how a driver must parse it). */
export function trailingJson<T = unknown>(stdout: string): T {
  const lines = stdout.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (lines[i] === '{' || lines[i] === '[' || /^[[{].*[\]}]$/.test(lines[i])) {
      return JSON.parse(lines.slice(i).join('\n')) as T;
    }
  }
  throw new Error(`no JSON document at the end of stdout: ${stdout}`);
}

export async function readInvocationLog(home: string): Promise<string> {
  return readFile(paths.invocations(home), 'utf8');
}
