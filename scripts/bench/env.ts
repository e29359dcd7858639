// The benchmark's world: a private temp directory with a local-platform home, an ephemeral Temporal dev
// server on a free port, and pgshift's worker as a separate process (as `pgshift worker` runs for a user),
// whose memory is read from /proc. Everything started here is recorded and ended by cleanup(), on any exit.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createLocalPlatform, type LocalPlatform } from '../../src/platform/local';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server';

export const REPO = join(__dirname, '..', '..');
export const ENV = 'local';

export class BenchError extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The last lines of a log, for an error message. */
export function tailOf(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Resident memory of a process, from /proc/<pid>/status: now (VmRSS) and its peak (VmHWM), in MiB. */
export function memoryOf(pid: number): { rssMiB: number; peakMiB: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** The worker process and what it used: its peak is reset before a run, and sampled during it as well. */
export class WorkerProcess {
  private child?: ChildProcess;
  private sampler?: NodeJS.Timeout;
  private sampledMiB = 0;
  private peakResettable = true;

  constructor(
    readonly logPath: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** `node bin/pgshift.js worker`: the compiled CLI, or the sources through tsx when dist/ is stale. */
  async start(): Promise<void> {
    const log = openSync(this.logPath, 'a');
    const child = spawn(process.execPath, [join(REPO, 'bin', 'pgshift.js'), 'worker'], {
      cwd: REPO,
      env: this.env,
      // Its own process group: a Ctrl-C on the terminal reaches the bench, which stops it in order.
      detached: true,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.child = child;
    const deadline = Date.now() + 300_000; // bundling the workflows takes a while on a loaded machine
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new BenchError(`the worker exited at start-up:\n${tailOf(this.logPath)}`);
      if (tailOf(this.logPath, 50).includes('Worker polling task queues')) return;
      if (Date.now() > deadline)
        throw new BenchError(`the worker did not start in 5 minutes:\n${tailOf(this.logPath)}`);
      await sleep(250);
    }
  }

  memory(): { rssMiB: number; peakMiB: number } {
    const m = this.pid === undefined ? undefined : memoryOf(this.pid);
    if (!m) throw new BenchError(`the worker (pid ${this.pid}) is gone:\n${tailOf(this.logPath)}`);
    return m;
  }

  /**
   * Starts a measurement: the kernel's peak is reset to the current RSS (clear_refs 5), and sampling starts.
   * Returns that RSS: the idle worker's, as this run begins (MiB).
   */
  beginPeak(): number {
    const pid = this.pid!;
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      this.peakResettable = false; // the sampled maximum is all there is
    }
    this.sampledMiB = this.memory().rssMiB;
    clearInterval(this.sampler);
    this.sampler = setInterval(() => {
      const m = memoryOf(pid);
      if (m) this.sampledMiB = Math.max(this.sampledMiB, m.rssMiB);
    }, 100);
    return this.sampledMiB;
  }

  /** The worker's peak RSS since beginPeak (MiB). */
  endPeak(): number {
    clearInterval(this.sampler);
    this.sampler = undefined;
    const m = this.pid === undefined ? undefined : memoryOf(this.pid);
    return Math.max(this.sampledMiB, this.peakResettable && m ? m.peakMiB : 0);
  }

  /** SIGTERM to its process group (its pg_dumpall and psql children too), SIGKILL after 15 s. */
  async stop(): Promise<void> {
    clearInterval(this.sampler);
    const child = this.child;
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, s);
      } catch {
        // already gone
      }
    };
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), 15_000);
    await gone;
    clearTimeout(timer);
  }
}

export interface BenchEnv {
  dir: string;
  home: string;
  platform: LocalPlatform;
  client: Client;
  worker: WorkerProcess;
  /** Records a child process (group leader) to end on cleanup; returns a function that forgets it. */
  track(child: ChildProcess): () => void;
}

export interface Setup {
  env?: BenchEnv;
  /** Ends everything started so far; safe to call more than once and before setup has finished. */
  cleanup(): Promise<void>;
}

/** Starts the dev server and the worker; `setup.cleanup` undoes whatever of it was done. */
export function createSetup(keep: boolean): { setup: Setup; ready: Promise<BenchEnv> } {
  const dir = mkdtempSync(join(tmpdir(), 'pgshift-bench-'));
  const home = join(dir, 'home');
  const work = join(dir, 'work');
  mkdirSync(work, { mode: 0o700 });
  const platform = createLocalPlatform({ home });
  const children = new Set<ChildProcess>();
  let server: DevServer | undefined;
  let client: Client | undefined;
  let worker: WorkerProcess | undefined;
  let cleaning: Promise<void> | undefined;

  const setup: Setup = {
    cleanup() {
      cleaning ??= (async () => {
        const step = async (what: string, fn: () => Promise<unknown>) =>
          fn().catch((err: unknown) => console.error(`bench: cleanup: ${what}: ${String(err)}`));
        await step('worker', async () => worker?.stop());
        for (const child of children) {
          try {
            if (child.pid && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        await step('client', async () => client?.connection.close());
        await step('dev server', async () => server?.stop());
        await step('clusters', () => platform.destroy());
        if (keep) console.log(`bench: kept ${dir} (--keep)`);
        else rmSync(dir, { recursive: true, force: true });
      })();
      return cleaning;
    },
  };

  const ready = (async (): Promise<BenchEnv> => {
    const port = await freePort();
    server = await startDevServer({ home: join(dir, 'temporal'), port, ephemeral: true });
    if (cleaning) {
      await server.stop(); // interrupted while it started: cleanup has passed it already
      throw new BenchError('interrupted');
    }
    const connection = await Connection.connect({ address: server.address });
    client = new Client({ connection, namespace: 'default' });
    if (cleaning) throw new BenchError('interrupted');
    // Only this server: no Temporal Cloud key, TLS or queue override from the caller's environment.
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/^TEMPORAL_|^PGSHIFT_/.test(k)),
    );
    worker = new WorkerProcess(join(dir, 'worker.log'), {
      ...inherited,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: 'default',
      PGSHIFT_HOME: home,
      PGSHIFT_WORK_DIR: work,
      PGSHIFT_LOG_LEVEL: process.env.PGSHIFT_LOG_LEVEL ?? 'WARN',
    });
    await worker.start();
    const env: BenchEnv = {
      dir,
      home,
      platform,
      client,
      worker,
      track(child) {
        children.add(child);
        return () => children.delete(child);
      },
    };
    setup.env = env;
    return env;
  })();
  return { setup, ready };
}
