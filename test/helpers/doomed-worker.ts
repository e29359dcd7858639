// A host worker in a process of its own, for a test to kill with SIGKILL mid-dump the way the OOM killer or
// a dead machine would: its dumpSource says so on stdout, then hangs without a heartbeat. Run as a script
// with tsx's loader by startDoomedWorker.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { TEST_NAMESPACE, testTemporalAddress } from './temporal';

export interface DoomedWorker {
  /** Resolves once its dumpSource has started. */
  dumping: Promise<void>;
  /** kill -9, and resolves once the process is gone. */
  kill(): Promise<void>;
}

/** Starts the worker on `taskQueue`; resolves once it polls. */
export async function startDoomedWorker(taskQueue: string): Promise<DoomedWorker> {
  // tsx as a loader, not its CLI: the CLI runs the script in a child of its own, which a kill would miss.
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, taskQueue], {
    cwd: join(__dirname, '..', '..'),
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const said = (word: string) =>
    new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        out += text;
        if (out.split('\n').includes(word)) resolve();
      });
      void exited.then(() => reject(new Error(`the doomed worker exited before "${word}": ${stderr}`)));
    });
  const ready = said('ready');
  const dumping = said('dumping');
  dumping.catch(() => undefined);
  await ready;
  return {
    dumping,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function main(taskQueue: string): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const connection = await NativeConnection.connect({ address: testTemporalAddress() });
  const worker = await Worker.create({
    connection,
    namespace: TEST_NAMESPACE,
    taskQueue,
    activities: {
      dumpSource: () => {
        process.stdout.write('dumping\n');
        return new Promise(() => undefined);
      },
    },
  });
  const running = worker.run();
  process.stdout.write('ready\n');
  await running;
}

if (require.main === module) {
  main(process.argv[2]).catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
