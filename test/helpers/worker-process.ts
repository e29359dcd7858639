// A real pgshift worker (createPgshiftWorker: shared + host queues, the real activities, the local platform
// under a given home) in a process of its own, so a test can kill it with SIGKILL the way the OOM killer or
// a dead machine would, and start another that carries on from the history. Run as a script with tsx's
// loader by startWorkerProcess.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createLocalPlatform } from '../../src/platform/local';
import { createPgshiftWorker } from '../../src/worker/run-worker';
import { TEST_NAMESPACE, testTemporalAddress, testWorkflowBundlePath } from './temporal';

export interface WorkerProcess {
  pid: number;
  /** kill -9, and resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (the SDK's graceful shutdown), SIGKILL if it has not exited within a minute. */
  stop(): Promise<void>;
  /** What it printed on stderr (its SDK log at WARN and up), for a failing test's message. */
  stderr(): string;
}

export interface WorkerProcessOptions {
  taskQueue: string;
  /** The local platform's home (PGSHIFT_HOME of a worker run by hand). */
  home: string;
  workDir: string;
}

/** Starts the worker; resolves once it polls. */
export async function startWorkerProcess(options: WorkerProcessOptions): Promise<WorkerProcess> {
  // tsx as a loader, not its CLI: the CLI runs the script in a child of its own, which a kill would miss.
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, JSON.stringify(options)], {
    cwd: join(__dirname, '..', '..'),
    env: { ...process.env, PGSHIFT_HOME: options.home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      if (out.split('\n').includes('ready')) resolve();
    });
    void gone.then(() => reject(new Error(`the worker process exited before it polled: ${stderr}`)));
  });
  const signal = async (name: NodeJS.Signals, boundMs: number): Promise<boolean> => {
    if (exited) return true;
    child.kill(name);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), boundMs)));
    const done = await Promise.race([gone.then(() => true), bound]);
    clearTimeout(timer);
    return done;
  };
  const kill = async (): Promise<void> => {
    if (!(await signal('SIGKILL', 30_000))) throw new Error(`worker ${child.pid} survived SIGKILL`);
  };
  return {
    pid: child.pid as number,
    kill,
    async stop() {
      if (!(await signal('SIGTERM', 60_000))) await kill();
    },
    stderr: () => stderr,
  };
}

async function main(options: WorkerProcessOptions): Promise<void> {
  // SIGTERM/SIGINT shut the worker down gracefully (the Runtime's default shutdown signals).
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const worker = await createPgshiftWorker({
    settings: { address: testTemporalAddress(), namespace: TEST_NAMESPACE, uiUrl: '' },
    taskQueue: options.taskQueue,
    platforms: { local: createLocalPlatform({ home: options.home }) },
    workDir: options.workDir,
    workflowBundle: { codePath: testWorkflowBundlePath() },
  });
  const running = worker.run();
  process.stdout.write('ready\n');
  await running;
}

if (require.main === module) {
  main(JSON.parse(process.argv[2]) as WorkerProcessOptions).catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
