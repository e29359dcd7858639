import { spawn } from 'node:child_process';

// Not execa: it is ESM-only, and in this CommonJS project neither tsx (bin/pgshift.js, npm run demo) nor
// Jest's resolver can load its dependency unicorn-magic through require(). The platform's needs are small.

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
export function runProgram(file: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let all = '';
    const child = spawn(file, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      all += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      all += chunk;
    });
    child.once('error', (err) => resolve({ exitCode: -1, stdout, stderr, all: `${all}${err.message}` }));
    child.once('close', (code, signal) =>
      resolve({ exitCode: code ?? -1, stdout, stderr, all: signal ? `${all}(killed by ${signal})` : all }),
    );
  });
}
