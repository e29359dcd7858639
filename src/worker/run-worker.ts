import { createHash } from 'node:crypto';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, platformRegistry } from '../activities';
import type { Platform } from '../platform/platform';
import { createLocalPlatform, resolvePgshiftHome } from '../platform/local';
import { createAptiblePlatform } from '../platform/aptible';
import { TASK_QUEUE } from '../workflows/definitions';
import { type TemporalSettings, temporalSettings } from '../temporal/connection';

export interface PgshiftWorkerOptions {
  settings?: TemporalSettings;
  taskQueue?: string;
  /**
   * The task queue of this worker's dump directory, where a migration sends the steps that touch its dump
   * file. Default PGSHIFT_HOST_TASK_QUEUE, else `<taskQueue>-host-<hostname>-<hash of the work dir>`.
   */
  hostTaskQueue?: string;
  /**
   * Platforms this worker serves; default: the local platform under the pgshift home, and Aptible through
   * the `aptible` CLI (APTIBLE_CLI_PATH or PATH; logged in, or APTIBLE_ACCESS_TOKEN set).
   */
  platforms?: Record<string, Platform>;
  /** Where dumps go; default PGSHIFT_WORK_DIR or <pgshift home>/work. */
  workDir?: string;
  /** A prebuilt workflow bundle (tests build one per run). */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

/** One pgshift worker process: the shared queue's worker and its own queue's worker, run and stopped together. */
export interface PgshiftWorker {
  readonly options: { taskQueue: string; hostTaskQueue: string; namespace: string };
  /** Polls the shared queue: workflows and every activity. */
  readonly shared: Worker;
  /** Polls the host queue: activities only, the ones a migration sends to the worker that holds its dump. */
  readonly host: Worker;
  /** Resolves once both workers have stopped (and closes their connection); rejects if either failed. */
  run(): Promise<void>;
  /** Starts a graceful shutdown of both workers. */
  shutdown(): void;
}

// The SDK holds heartbeats back for up to 80 % of the heartbeat timeout (48 s of 1 min); the status shows
// the last one the server got, so a few seconds keeps its progress live at a negligible cost.
const HEARTBEAT_THROTTLE = '2s';

export function defaultWorkDir(): string {
  return process.env.PGSHIFT_WORK_DIR ?? join(resolvePgshiftHome() ?? join(homedir(), '.pgshift'), 'work');
}

/**
 * The queue names where the dumps are, not which process: a worker restarted on the same host and work
 * directory serves it again (and finds the dumps its predecessor left), while two workers with different
 * work directories on one host never take each other's restores.
 */
export function defaultHostTaskQueue(sharedTaskQueue: string, workDir: string): string {
  const dir = createHash('sha256').update(resolve(workDir)).digest('hex').slice(0, 12);
  return process.env.PGSHIFT_HOST_TASK_QUEUE ?? `${sharedTaskQueue}-host-${hostname()}-${dir}`;
}

export async function createPgshiftWorker(options: PgshiftWorkerOptions = {}): Promise<PgshiftWorker> {
  const settings = options.settings ?? temporalSettings();
  const taskQueue = options.taskQueue ?? TASK_QUEUE;
  const workDir = options.workDir ?? defaultWorkDir();
  const hostTaskQueue = options.hostTaskQueue ?? defaultHostTaskQueue(taskQueue, workDir);
  const connection = await NativeConnection.connect({
    address: settings.address,
    tls: settings.tls,
    apiKey: settings.apiKey,
  });
  try {
    // Building them runs nothing: the CLI is first called by an activity of an Aptible plan.
    const platforms = options.platforms ?? { local: createLocalPlatform(), aptible: createAptiblePlatform() };
    const activities = createActivities({
      platformFor: platformRegistry(platforms),
      workDir,
      hostTaskQueue,
    });
    const shared = await Worker.create({
      connection,
      namespace: settings.namespace,
      taskQueue,
      activities,
      ...(options.workflowBundle
        ? { workflowBundle: options.workflowBundle }
        : { workflowsPath: require.resolve('../workflows') }),
      maxConcurrentActivityTaskExecutions: 4,
      maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE,
    });
    const host = await Worker.create({
      connection,
      namespace: settings.namespace,
      taskQueue: hostTaskQueue,
      activities,
      // Only migrations that claimed this worker send work here, at most a dump or restore and a removal
      // each. A removal queued behind long dumps would look like a worker gone (schedule-to-start timeout).
      maxConcurrentActivityTaskExecutions: 16,
      maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE,
    });
    return pairOf(shared, host, connection, { taskQueue, hostTaskQueue, namespace: settings.namespace });
  } catch (err) {
    await connection.close();
    throw err;
  }
}

function pairOf(
  shared: Worker,
  host: Worker,
  connection: NativeConnection,
  options: PgshiftWorker['options'],
): PgshiftWorker {
  let stopRequested = false;
  const shutdown = (): void => {
    stopRequested = true;
    for (const w of [shared, host]) {
      if (w.getState() === 'RUNNING') w.shutdown();
    }
  };
  return {
    options,
    shared,
    host,
    shutdown,
    async run() {
      // One without the other is no use: a host worker alone takes no new migration, and a shared worker
      // alone would claim dumps that nothing then runs. So either one stopping for good stops both.
      const runs = [shared.run(), host.run()].map((p) =>
        p.catch((err: unknown) => {
          shutdown();
          throw err;
        }),
      );
      // A shutdown asked for before run() started found nothing running yet.
      if (stopRequested) shutdown();
      try {
        const results = await Promise.allSettled(runs);
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      } finally {
        await connection.close();
      }
    },
  };
}
