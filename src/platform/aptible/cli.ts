import execa from 'execa';
import { classifyFailure } from './errors';
import { activityCancellation } from '../../lib/activity-context';

// execa 5: the last CommonJS major. Later majors are ESM-only, which neither tsx's CommonJS loader nor
// Jest can load in this project.

export interface AptibleCliOptions {
  /** The executable; default APTIBLE_CLI_PATH, else `aptible` on PATH. */
  bin?: string;
  /** The environment of every run; default this process's (APTIBLE_ACCESS_TOKEN passes through). */
  env?: NodeJS.ProcessEnv;
}

export interface RunOptions {
  /** Values to scrub from any error (e.g. the URL passed to config:set). */
  secrets?: readonly string[];
  /** Default 24h: db:create and backup:restore wait for Aptible's operation; the activity's own timeout is the real bound. */
  timeoutMs?: number;
  /** Default: the running activity's cancellation, so an abort does not wait for an hour-long db:create. */
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUT_MS = 24 * 60 * 60 * 1000;
// The CLI ignores SIGINT while attached to operation logs unless its ssh child gets it too
// (helpers/ssh.rb), so a stop goes to the whole process group, and is forced after a grace period.
const STOP_GRACE_MS = 5_000;

/** Runs `aptible` commands the way the guide types them, reading their JSON output. */
export class AptibleCli {
  readonly bin: string;
  readonly env: NodeJS.ProcessEnv;

  constructor(options: AptibleCliOptions = {}) {
    this.bin = options.bin ?? process.env.APTIBLE_CLI_PATH ?? 'aptible';
    this.env = options.env ?? process.env;
  }

  /** The environment a child gets: JSON output, and no "installed from source" nag on stderr. */
  childEnv(format: 'json' | 'text'): NodeJS.ProcessEnv {
    return { ...this.env, APTIBLE_OUTPUT_FORMAT: format, APTIBLE_TOOLBELT: this.env.APTIBLE_TOOLBELT ?? '1' };
  }

  /** Runs one command with APTIBLE_OUTPUT_FORMAT=json and returns its stdout; throws a classified error. */
  async run(args: string[], options: RunOptions = {}): Promise<string> {
    const command = args[0];
    const signal = options.signal ?? activityCancellation();
    const child = execa(this.bin, args, {
      env: this.childEnv('json'),
      extendEnv: false,
      stdin: 'ignore',
      reject: false,
      detached: true,
      stripFinalNewline: false,
    });
    let timedOut = false;
    const stop = (): void => {
      signalGroup(child.pid, 'SIGINT');
      setTimeout(() => signalGroup(child.pid, 'SIGKILL'), STOP_GRACE_MS).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    if (signal?.aborted) stop();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      const result = await child;
      if (signal?.aborted) throw abortError(signal);
      if (result.exitCode === 0 && !timedOut) return result.stdout;
      throw classifyFailure(
        {
          command,
          exitCode: result.exitCode,
          stderr: result.stderr,
          spawnError: spawnFailure(result),
          timedOut,
        },
        options.secrets,
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
    }
  }
}

/** Why the program could not be started (ENOENT, EACCES), if that is what happened. */
export function spawnFailure(result: execa.ExecaReturnBase<string>): string | undefined {
  if (!result.failed || result.exitCode !== undefined || result.signal) return undefined;
  return (result as { originalMessage?: string }).originalMessage ?? 'could not start';
}

export function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('cancelled');
}
