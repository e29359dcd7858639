import { type ChildProcess, execFile, spawn } from 'node:child_process';

// The dump and restore pipelines use node:child_process directly: they stream gigabytes through our own
// filter and need each tool in its own process group, which is all they ask of a process library. Short
// commands go through execa (src/platform/local/exec.ts, src/platform/aptible/cli.ts).

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Started {
  child: ChildProcess;
  /** Settles when the process has exited and its output streams are closed; rejects if it could not start. */
  exited: Promise<Exit>;
}

/**
 * Starts a program in its own process group (so a cancel also reaches what it starts: pg_dumpall runs one
 * pg_dump per database), stdin closed unless asked for, stdout as asked, stderr piped.
 */
export function startProgram(
  file: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; stdin?: 'pipe'; stdout: 'pipe' | 'ignore' },
): Started {
  const child = spawn(file, args, {
    env: options.env,
    cwd: options.cwd,
    detached: true,
    stdio: [options.stdin ?? 'ignore', options.stdout, 'pipe'],
  });
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return { child, exited };
}

/** Runs a short command and returns its stdout; rejects on failure or after `timeoutMs`. */
export function runShort(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
  });
}

/** Stops a child started by startProgram together with everything it started (its whole process group). */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** What to throw when the caller cancelled: its own reason (Temporal's CancelledFailure), else a plain error. */
export function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('cancelled');
}

export function describeExit(exit: Exit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}
