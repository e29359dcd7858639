// What test files need to run workflows on the dev server that test/global-setup.ts started: a client,
// a worker serving the prebuilt workflow bundle with whatever activities the test gives it, unique names.
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { LogLevel } from '@temporalio/common';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import type { DevServer } from '../../src/temporal/dev-server';
import { TestSdkLogger } from './sdk-log';

/** host:port of the dev server (set by global-setup; set it yourself to reuse a running server). */
export const TEMPORAL_ADDRESS_ENV = 'PGSHIFT_TEST_TEMPORAL_ADDRESS';
/** Path of the workflow bundle global-setup built from src/workflows. */
export const WORKFLOW_BUNDLE_ENV = 'PGSHIFT_TEST_WORKFLOW_BUNDLE';
export const TEST_NAMESPACE = 'default';

/** What global-setup leaves for global-teardown (same process). */
export interface TestHarnessState {
  /** The harness directory: the workflow bundle, the dev server's history and log. */
  dir: string;
  server?: DevServer;
}

declare global {
  var __pgshiftTestHarness: TestHarnessState | undefined;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run the tests through Jest, whose globalSetup (test/global-setup.ts) sets it`,
    );
  }
  return value;
}

export function testTemporalAddress(): string {
  return required(TEMPORAL_ADDRESS_ENV);
}

export function testWorkflowBundlePath(): string {
  return required(WORKFLOW_BUNDLE_ENV);
}

let runtimeInstalled = false;
/**
 * The SDK's log goes to the test logger (test/helpers/sdk-log.ts): warnings and up, printed only for a
 * test that fails; PGSHIFT_TEST_LOG_LEVEL=INFO (or another level) prints from that level as it happens.
 */
export function installTestRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const level = process.env.PGSHIFT_TEST_LOG_LEVEL as LogLevel | undefined;
  try {
    Runtime.install({ logger: new TestSdkLogger(level ?? 'WARN', level !== undefined) });
  } catch {
    // This module registry has its Runtime already (created before this call): keep it.
  }
}

/** What a worker of the project (e.g. createPgshiftWorker) needs to serve the test server. */
export function testWorkerOptions(): {
  address: string;
  namespace: string;
  workflowBundle: { codePath: string };
} {
  installTestRuntime();
  return {
    address: testTemporalAddress(),
    namespace: TEST_NAMESPACE,
    workflowBundle: { codePath: testWorkflowBundlePath() },
  };
}

/** A client of the test server. Close it with `await client.connection.close()`. */
export async function connectTestClient(): Promise<Client> {
  installTestRuntime();
  const connection = await Connection.connect({ address: testTemporalAddress() });
  return new Client({ connection, namespace: TEST_NAMESPACE });
}

export interface StartTestWorkerOptions {
  /** The activity implementations (stubs or real ones), by activity name. */
  activities: object;
  taskQueue: string;
  /** Anything else for Worker.create (e.g. maxConcurrentActivityTaskExecutions). */
  workerOptions?: Partial<Omit<WorkerOptions, 'connection' | 'taskQueue' | 'activities'>>;
}

export interface TestWorker {
  worker: Worker;
  taskQueue: string;
  /** Shuts the worker down (waiting for its running activities) and closes its connection. */
  stop(): Promise<void>;
}

/** Starts a worker of the prebuilt workflow bundle on `taskQueue`; call stop() when the test ends. */
export async function startTestWorker(options: StartTestWorkerOptions): Promise<TestWorker> {
  installTestRuntime();
  const connection = await NativeConnection.connect({ address: testTemporalAddress() });
  let worker: Worker;
  try {
    worker = await Worker.create({
      connection,
      namespace: TEST_NAMESPACE,
      taskQueue: options.taskQueue,
      activities: options.activities,
      workflowBundle: { codePath: testWorkflowBundlePath() },
      // Cancellation reaches an activity only with a heartbeat's response: keep that prompt in tests.
      maxHeartbeatThrottleInterval: '200ms',
      defaultHeartbeatThrottleInterval: '200ms',
      ...options.workerOptions,
    });
  } catch (err) {
    await connection.close();
    throw err;
  }
  const running = worker.run();
  // Surface a worker crash in stop() rather than as an unhandled rejection.
  running.catch(() => undefined);
  let stopped: Promise<void> | undefined;
  return {
    worker,
    taskQueue: options.taskQueue,
    stop() {
      stopped ??= (async () => {
        try {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await running;
        } finally {
          await connection.close();
        }
      })();
      return stopped;
    },
  };
}

/** Runs `body` with a worker started, and stops the worker however `body` ends. */
export async function withTestWorker<T>(
  options: StartTestWorkerOptions,
  body: (worker: TestWorker) => Promise<T>,
): Promise<T> {
  const worker = await startTestWorker(options);
  try {
    return await body(worker);
  } finally {
    await worker.stop();
  }
}

function uniqueSuffix(): string {
  return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** A task queue no other test (or earlier run against a reused server) polls. */
export function uniqueTaskQueue(prefix = 'test'): string {
  return `${prefix}-${uniqueSuffix()}`;
}

export function uniqueWorkflowId(prefix = 'test'): string {
  return `${prefix}-${uniqueSuffix()}`;
}
