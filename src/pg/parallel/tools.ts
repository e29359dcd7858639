import { access, constants } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PreflightError } from '../../errors';
import { type ClientTools, findClientTools } from '../client-tools';
import { type PgTarget, libpqArgs, libpqEnv } from '../connection';
import { type Exit, killGroup, startProgram } from '../process';

export interface ParallelTools extends ClientTools {
  pgRestore: string;
}

/** The client tools, and pg_restore beside the pg_dump they found (the same version reads its archives). */
export async function findParallelTools(): Promise<ParallelTools> {
  const tools = await findClientTools();
  const pgRestore = join(dirname(tools.pgDump), 'pg_restore');
  try {
    await access(pgRestore, constants.X_OK);
  } catch {
    throw new PreflightError(
      `pg_restore not found beside ${tools.pgDump}: copy strategy parallel needs it; install the full ` +
        'PostgreSQL client tools there, or choose copy strategy guide',
    );
  }
  return { ...tools, pgRestore };
}

/**
 * `-d` for a database by name: a conninfo string, so a name holding `=` or a URI prefix is a name and
 * nothing else (pg_dumpall passes database names the same way). Single quotes and backslashes escaped.
 */
export function dbnameArg(name: string): string {
  return `dbname='${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export interface ToolRun {
  exit: Exit;
  stderr: string;
  /** stderr passed the cap and was cut. */
  truncated: boolean;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  stderrLimit: number;
  /** Called with the process group id once it runs (for progress read from /proc). */
  onStart?(pid: number): void;
}

/**
 * Runs pg_dump or pg_restore against `target` in a process group of its own (pg_dump and pg_restore fork
 * a process per job), collecting stderr. Whatever is left of the group when the leader ends (workers of a
 * killed leader) is ended too. Rejects only when the program cannot be started.
 */
export async function runTool(
  file: string,
  target: PgTarget,
  args: string[],
  opts: RunOptions,
): Promise<ToolRun> {
  const { child, exited } = startProgram(file, [...libpqArgs(target), ...args], {
    env: { ...libpqEnv(target), ...opts.env },
    stdout: 'ignore',
  });
  let stderr = '';
  let truncated = false;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    if (stderr.length < opts.stderrLimit) stderr += text;
    else truncated = true;
  });
  const onAbort = () => killGroup(child.pid);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // The group outlives a leader only when the leader was killed: its workers go with it, at once, so
  // their sessions do not hold locks the retry's reset must take.
  child.once('exit', () => killGroup(child.pid, 'SIGKILL'));
  if (child.pid) opts.onStart?.(child.pid);
  try {
    return { exit: await exited, stderr, truncated };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
