import { ApplicationFailure, Context } from '@temporalio/activity';
import type { DatabaseConnection, Platform } from '../platform/platform';
import { redact } from '../lib/redact';
import { activityCancellation, inActivity } from '../lib/activity-context';

// Heartbeats keep flowing while a long step waits on a child process, so a dead worker is noticed
// within the heartbeat timeout even when there is no progress to report. The worker sends them on at most
// every few seconds (maxHeartbeatThrottleInterval), which is how fresh the status's progress is.
const HEARTBEAT_INTERVAL_MS = 5_000;

/**
 * What one activity invocation holds: the connections (tunnels) it opened and the secrets they carry.
 * Everything is closed when the activity ends, and any error that escapes is scrubbed of those secrets.
 */
export class ActivityScope {
  private readonly connections: DatabaseConnection[] = [];
  private readonly secrets: string[] = [];
  private details: unknown;
  private phase?: unknown;
  private phaseStartedAt?: number;

  constructor(readonly platform: Platform) {}

  async connect(handle: string, environment: string): Promise<DatabaseConnection> {
    const conn = await this.platform.connect(handle, environment);
    this.connections.push(conn);
    this.secrets.push(conn.password, conn.url);
    return conn;
  }

  /** Registers a secret learned some other way (e.g. an app-facing URL) for scrubbing. */
  secret(value: string): string {
    this.secrets.push(value);
    return value;
  }

  /**
   * Heartbeats `details` with `elapsedMs`, the time since its `phase` began (a new phase restarts the
   * clock), so the status can compute a rate and an ETA without trusting the worker's clock.
   */
  progress(details: object): void {
    const phase = (details as { phase?: unknown }).phase;
    const now = Date.now();
    if (this.phaseStartedAt === undefined || phase !== this.phase) {
      this.phase = phase;
      this.phaseStartedAt = now;
    }
    this.details = { ...details, elapsedMs: now - this.phaseStartedAt };
    heartbeatIfActivity(this.details);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.connections.map((c) => c.close()));
  }

  scrub(err: unknown): unknown {
    if (!(err instanceof Error)) return new Error(redact(String(err), this.secrets));
    err.message = redact(err.message, this.secrets);
    if (err.stack) err.stack = redact(err.stack, this.secrets);
    // Structured details (restore error lines, a verification report) reach the history as they are.
    if (err instanceof ApplicationFailure && err.details?.length) {
      const secrets = this.secrets;
      const scrubbed = JSON.parse(
        JSON.stringify(err.details, (_key, value: unknown) =>
          typeof value === 'string' ? redact(value, secrets) : value,
        ),
      ) as unknown[];
      Object.assign(err, { details: scrubbed });
    }
    return err;
  }

  lastDetails(): unknown {
    return this.details;
  }
}

function heartbeatIfActivity(details?: unknown): void {
  if (inActivity()) Context.current().heartbeat(details);
}

export function cancellationSignal(): AbortSignal | undefined {
  return activityCancellation();
}

/** Runs an activity body with a scope that heartbeats, closes its tunnels and scrubs its errors. */
export async function withScope<T>(
  platform: Platform,
  body: (scope: ActivityScope) => Promise<T>,
): Promise<T> {
  const scope = new ActivityScope(platform);
  const timer = setInterval(() => heartbeatIfActivity(scope.lastDetails()), HEARTBEAT_INTERVAL_MS);
  try {
    return await body(scope);
  } catch (err) {
    throw scope.scrub(err);
  } finally {
    clearInterval(timer);
    await scope.close();
  }
}
