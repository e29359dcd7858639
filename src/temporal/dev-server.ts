import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { DEV_SERVER_SEARCH_ATTRIBUTE_ARGS, resolveTemporalCli } from './temporal-cli';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';

export interface DevServer {
  address: string;
  uiUrl: string;
  pid?: number;
  /** Stops the server (a no-op for a server left running on purpose). */
  stop(): Promise<void>;
}

export interface DevServerOptions {
  /** The pgshift home: the history database and the server log live there, so history survives restarts. */
  home: string;
  port?: number;
  uiPort?: number;
  /** Leave the server running after this process exits (the demo does, so its UI link keeps working). */
  detached?: boolean;
  /** The test harness's server: history in memory, no Web UI (the log still goes to the home). */
  ephemeral?: boolean;
}

export function isPortOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (up: boolean) => {
      socket.destroy();
      resolve(up);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await isPortOpen(host, port))) {
    if (Date.now() > deadline)
      throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Starts the Temporal dev server with its Web UI and pgshift's search attributes registered. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? 8233;
  const address = `127.0.0.1:${port}`;
  const uiUrl = `http://localhost:${uiPort}`;
  mkdirSync(options.home, { recursive: true, mode: 0o700 });
  const dbFilename = join(options.home, 'temporal.db');
  const cli = await resolveTemporalCli();
  if (!cli) {
    // Users with internet and no Go: the SDK downloads the CLI. It lives as long as this process.
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    const env = await TestWorkflowEnvironment.createLocal({
      server: options.ephemeral
        ? { ip: '127.0.0.1', port, searchAttributes: SEARCH_ATTRIBUTES }
        : { ip: '127.0.0.1', port, ui: true, uiPort, dbFilename, searchAttributes: SEARCH_ATTRIBUTES },
    });
    return { address, uiUrl, stop: () => env.teardown() };
  }
  const logPath = join(options.home, 'temporal.log');
  const log = openSync(logPath, 'a');
  const child = spawn(
    cli,
    [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      ...(options.ephemeral ? ['--headless'] : ['--ui-port', String(uiPort), '--db-filename', dbFilename]),
      '--log-level',
      'warn',
      ...DEV_SERVER_SEARCH_ATTRIBUTE_ARGS,
    ],
    { detached: options.detached, stdio: ['ignore', log, log] },
  );
  closeSync(log); // the server has its own copy
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) =>
      reject(new Error(`the Temporal dev server exited (code ${code}); see ${logPath}`)),
    ),
  );
  try {
    // Generous: a loaded machine takes its time to open the history store.
    await Promise.race([waitForPort('127.0.0.1', port, 180_000), exited]);
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
  if (options.detached) {
    child.unref();
    writeFileSync(join(options.home, 'temporal.pid'), `${child.pid}\n`);
  }
  return {
    address,
    uiUrl,
    pid: child.pid,
    stop: async () => {
      if (options.detached || child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const stubborn = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await gone;
      clearTimeout(stubborn);
    },
  };
}
