import { createPgshiftWorker } from '../worker/run-worker';
import { installQuietSdkLogger } from '../lib/sdk-logger';
import { startDevServer, isPortOpen } from '../temporal/dev-server';
import { resolvePgshiftHome } from '../platform/local';

export async function runWorker(): Promise<void> {
  installQuietSdkLogger();
  const worker = await createPgshiftWorker();
  console.log(
    `Worker polling task queues ${worker.options.taskQueue} and ${worker.options.hostTaskQueue} (its own, for dumps); Ctrl-C stops it.`,
  );
  await worker.run();
}

export async function runDev(opts: { port: number; uiPort: number }): Promise<void> {
  // Before the dev server: without a Temporal CLI, the SDK's runtime starts it.
  installQuietSdkLogger();
  if (await isPortOpen('127.0.0.1', opts.port)) {
    throw new Error(`something already listens on 127.0.0.1:${opts.port}; stop it or choose --port`);
  }
  const home = resolvePgshiftHome();
  const server = await startDevServer({ home, port: opts.port, uiPort: opts.uiPort });
  process.env.TEMPORAL_ADDRESS = server.address;
  console.log(
    `Temporal dev server on ${server.address}, Web UI ${server.uiUrl} (history in ${home}/temporal.db)`,
  );
  try {
    const worker = await createPgshiftWorker();
    console.log('Worker running; Ctrl-C stops both.');
    await worker.run();
  } finally {
    await server.stop();
  }
}
