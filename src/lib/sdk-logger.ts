// The Temporal SDK's log for pgshift's own processes (`pgshift worker`, `pgshift dev`, the demo): the
// SDK's default logger, without the one warning that reads like a fault and is not one.
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { LevelLogger } from './level-logger';

// The host-queue worker serves activities only, by design (see src/worker/run-worker.ts).
const EXPECTED_WARNINGS = new Set(['No workflows registered, not polling for workflow tasks']);

const LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

/** PGSHIFT_LOG_LEVEL when it names a level, else `fallback`. */
export function sdkLogLevel(fallback: LogLevel): LogLevel {
  const wanted = process.env.PGSHIFT_LOG_LEVEL?.toUpperCase();
  return LEVELS.find((l) => l === wanted) ?? fallback;
}

export class QuietSdkLogger extends LevelLogger {
  constructor(private readonly inner: Logger) {
    super();
  }

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (level === 'WARN' && EXPECTED_WARNINGS.has(message)) return;
    this.inner.log(level, message, meta);
  }
}

/** Installs the SDK runtime with the quiet logger; a runtime installed already (tests) is left alone. */
export function installQuietSdkLogger(fallback: LogLevel = 'INFO'): void {
  if (Runtime._instance !== undefined) return;
  Runtime.install({ logger: new QuietSdkLogger(new DefaultLogger(sdkLogLevel(fallback))) });
}
