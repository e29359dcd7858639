// The `pgshift` command as a user runs it (bin/pgshift.js in a child process), against the test server.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { testTemporalAddress } from './temporal';

export const PGSHIFT_BIN = join(__dirname, '..', '..', 'bin', 'pgshift.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pgshift ARGS` with PGSHIFT_HOME=home and the test server's address (env overrides both). */
export function runPgshift(args: string[], home: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [PGSHIFT_BIN, ...args],
      { env: { ...process.env, TEMPORAL_ADDRESS: testTemporalAddress(), PGSHIFT_HOME: home, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? ((err.code as number) ?? 1) : 0, stdout, stderr }),
    );
  });
}
