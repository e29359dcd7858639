// The project's own worker (shared + host queues, real activities) serving the test server.
import { createPgshiftWorker, type PgshiftWorker } from '../../src/worker/run-worker';
import type { Platform } from '../../src/platform/platform';
import { testWorkerOptions } from './temporal';

export interface RunningWorker {
  worker: PgshiftWorker;
  /** Settles when the worker has stopped. */
  running: Promise<void>;
  stop(): Promise<void>;
}

export async function startProjectWorker(options: {
  taskQueue: string;
  platforms: Record<string, Platform>;
  workDir: string;
}): Promise<RunningWorker> {
  const opts = testWorkerOptions();
  const worker = await createPgshiftWorker({
    settings: { address: opts.address, namespace: opts.namespace, uiUrl: '' },
    taskQueue: options.taskQueue,
    platforms: options.platforms,
    workDir: options.workDir,
    workflowBundle: opts.workflowBundle,
  });
  const running = worker.run();
  return {
    worker,
    running,
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}
