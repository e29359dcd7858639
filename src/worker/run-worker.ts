import { homedir } from 'node:os';
import { join } from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, platformRegistry } from '../activities';
import type { Platform } from '../platform/platform';
import { createLocalPlatform, resolvePgshiftHome } from '../platform/local';
import { TASK_QUEUE } from '../workflows/definitions';
import { type TemporalSettings, temporalSettings } from '../temporal/connection';

export interface PgshiftWorkerOptions {
  settings?: TemporalSettings;
  taskQueue?: string;
  /** Platforms this worker serves; default: the local platform under the pgshift home. */
  platforms?: Record<string, Platform>;
  /** Where dumps go; default PGSHIFT_WORK_DIR or <pgshift home>/work. */
  workDir?: string;
  /** A prebuilt workflow bundle (tests build one per run). */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

export function defaultWorkDir(): string {
  return process.env.PGSHIFT_WORK_DIR ?? join(resolvePgshiftHome() ?? join(homedir(), '.pgshift'), 'work');
}

export async function createPgshiftWorker(options: PgshiftWorkerOptions = {}): Promise<Worker> {
  const settings = options.settings ?? temporalSettings();
  const connection = await NativeConnection.connect({
    address: settings.address,
    tls: settings.tls,
    apiKey: settings.apiKey,
  });
  const platforms = options.platforms ?? { local: createLocalPlatform() };
  const activities = createActivities({
    platformFor: platformRegistry(platforms),
    workDir: options.workDir ?? defaultWorkDir(),
  });
  return Worker.create({
    connection,
    namespace: settings.namespace,
    taskQueue: options.taskQueue ?? TASK_QUEUE,
    activities,
    ...(options.workflowBundle
      ? { workflowBundle: options.workflowBundle }
      : { workflowsPath: require.resolve('../workflows') }),
    // Long steps (dump, restore) run one at a time per worker: they are bound by disk and network.
    maxConcurrentActivityTaskExecutions: 4,
  });
}
