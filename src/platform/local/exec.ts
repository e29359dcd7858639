import execa from 'execa';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved, as a terminal would show them. */
  all: string;
}

/** Runs a program to completion; never rejects for a non-zero exit (look at exitCode). */
export async function runProgram(file: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await execa(file, args, {
    ...options,
    // The caller's env is the whole environment (cluster tools must not inherit PG* variables).
    extendEnv: options.env === undefined,
    stdin: 'ignore',
    all: true,
    reject: false,
    stripFinalNewline: false,
  });
  const all = result.all ?? '';
  if (result.exitCode === undefined) {
    // Not started (ENOENT, EACCES), or ended by a signal.
    const why = result.signal
      ? `(killed by ${result.signal})`
      : (result as { originalMessage?: string }).originalMessage;
    return { exitCode: -1, stdout: result.stdout, stderr: result.stderr, all: `${all}${why ?? ''}` };
  }
  return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr, all };
}
