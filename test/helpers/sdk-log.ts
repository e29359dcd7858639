// The Temporal SDK's log during tests. Tests make activities and workflows fail on purpose, and the SDK
// logs each such failure at WARN with a stack trace: dozens of them in a green run, hiding what matters.
// So the log is kept per test and printed only when that test fails (test/helpers/sdk-log-environment.ts
// does the printing); an ERROR of the SDK itself (a worker or its core failing) is printed at once.
// PGSHIFT_TEST_LOG_LEVEL=INFO (or DEBUG...) prints everything from that level as it happens instead.
import { inspect } from 'node:util';
import type { LogLevel, LogMetadata } from '@temporalio/common';
import { LevelLogger } from '../../src/lib/level-logger';

export interface SdkLogEntry {
  level: LogLevel;
  message: string;
  meta?: LogMetadata;
  at: number;
}

/** Where the environment and the logger meet: a property of the test file's global object. */
export const SDK_LOG_KEY = '__pgshiftSdkLog';

export interface SdkLogBuffer {
  entries: SdkLogEntry[];
  /** Entries dropped from the front, past MAX_KEPT. */
  dropped: number;
}

const LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
const MAX_KEPT = 500;

export function formatSdkLogEntry(entry: SdkLogEntry): string {
  const meta = entry.meta && Object.keys(entry.meta).length ? ` ${inspect(entry.meta, { depth: 4 })}` : '';
  return `${new Date(entry.at).toISOString()} [${entry.level}] ${entry.message}${meta}\n`;
}

/** The SDK's own failures, as opposed to the application's (an activity or a workflow that failed). */
function isSdkFailure(entry: SdkLogEntry): boolean {
  return entry.level === 'ERROR' && ['worker', 'core'].includes(String(entry.meta?.sdkComponent));
}

export class TestSdkLogger extends LevelLogger {
  private readonly threshold: number;

  constructor(
    private readonly level: LogLevel = 'WARN',
    /** Print every entry at once rather than keep it for a failure. */
    private readonly immediate = false,
  ) {
    super();
    this.threshold = LEVELS.indexOf(level);
  }

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (LEVELS.indexOf(level) < this.threshold) return;
    const entry: SdkLogEntry = { level, message, meta, at: Date.now() };
    const buffer = (globalThis as Record<string, unknown>)[SDK_LOG_KEY] as SdkLogBuffer | undefined;
    if (this.immediate || !buffer || isSdkFailure(entry)) {
      process.stderr.write(formatSdkLogEntry(entry));
      return;
    }
    buffer.entries.push(entry);
    if (buffer.entries.length > MAX_KEPT) {
      buffer.entries.shift();
      buffer.dropped += 1;
    }
  }
}
