import { createInterface } from 'node:readline';
import execa from 'execa';
import { PlatformError, TransientPlatformError } from '../../errors';
import type { DatabaseConnection } from '../platform';
import { type AptibleCli, signalGroup, spawnFailure } from './cli';
import { classifyFailure } from './errors';
import { activityCancellation } from '../../lib/activity-context';
import { TUNNEL_READY, type TunnelEndpoint, parseConnectLine } from './parse';

// The guide's "In a separate terminal, create a Database Tunnel": one `aptible db:tunnel` per activity that
// needs the database, kept open for exactly that activity. The CLI prints everything on stderr
// (subcommands/db.rb, db:tunnel): "Connect at postgresql://…" and, once ssh forwards, "Connected. Ctrl-C to
// close connection.". SIGINT closes it cleanly ("Closing tunnel", exit 0); SIGTERM would leave its ssh
// child holding the port, so stops go to the process group.

export interface TunnelOptions {
  /** How long the tunnel may take to come up; default 2 min. */
  startTimeoutMs?: number;
  signal?: AbortSignal;
}

const DEFAULT_START_TIMEOUT_MS = 2 * 60 * 1000;
const STOP_GRACE_MS = 6_000;

// A worker killed outright (SIGKILL, the OOM killer) runs no exit handler, and a tunnel left behind keeps a
// local port forwarding to a production database for up to a day. So the CLI runs under a small watchdog:
// the shell holds our end of a pipe on fd 3 and becomes the CLI (exec, so the CLI leads the process group
// and gets SIGINT like in a terminal); a background reader waits for that pipe to close — which happens
// when the worker dies, however it dies — then closes the tunnel as the CLI expects (SIGINT to the group),
// and kills what is left after the grace period. (An asynchronous list of a non-interactive shell ignores
// SIGINT, so the reader survives the SIGINT it sends. Debian's sh, dash, takes no "--" in kill.)
const WATCHDOG = `exec 3<&0
( while read -r _ <&3; do :; done; kill -INT -$$ 2>/dev/null; sleep ${STOP_GRACE_MS / 1000}; kill -KILL -$$ 2>/dev/null ) >/dev/null 2>&1 &
exec "$@" </dev/null 3<&-`;

// Tunnels must not outlive the worker: a worker that exits (even on a crash) takes its tunnels along.
const open = new Set<number>();
process.once('exit', () => {
  for (const pid of open) signalGroup(pid, 'SIGKILL');
});

/** Starts `aptible db:tunnel HANDLE --environment ENV` and resolves once it accepts connections. SECRET. */
export async function openTunnel(
  cli: AptibleCli,
  handle: string,
  environment: string,
  options: TunnelOptions = {},
): Promise<DatabaseConnection> {
  const child = execa(
    '/bin/sh',
    ['-c', WATCHDOG, 'pgshift-tunnel', cli.bin, 'db:tunnel', handle, '--environment', environment],
    {
      env: cli.childEnv('text'),
      extendEnv: false,
      // Our end stays open for the tunnel's life: its closing is the watchdog's signal.
      stdin: 'pipe',
      stdout: 'ignore',
      reject: false,
      detached: true,
    },
  );
  const pid = child.pid;
  if (pid) open.add(pid);
  let stderr = '';
  let endpoint: TunnelEndpoint | undefined;
  const exited = child.then((r) => r);

  const close = async (): Promise<void> => {
    if (!pid || !open.has(pid)) return;
    signalGroup(pid, 'SIGINT');
    const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
    // ssh (same group) may outlast the CLI by a moment; nothing of the group may keep the port.
    signalGroup(pid, 'SIGKILL');
    open.delete(pid);
  };

  const ready = new Promise<TunnelEndpoint>((resolve, reject) => {
    if (!child.stderr) return reject(new PlatformError('db:tunnel: no stderr to read'));
    const lines = createInterface({ input: child.stderr });
    lines.on('line', (line) => {
      // Kept (and scrubbed by the caller) only to explain a failure; the password line is never kept.
      if (!/Password:|Connect at /.test(line)) stderr += `${line}\n`;
      try {
        endpoint ??= parseConnectLine(line);
      } catch (err) {
        reject(err);
      }
      if (line.trim() === TUNNEL_READY) {
        if (endpoint) resolve(endpoint);
        else reject(new PlatformError('db:tunnel said it was connected without printing "Connect at"'));
      }
    });
    void exited.then((r) => {
      reject(
        classifyFailure({
          command: 'db:tunnel',
          exitCode: r.exitCode,
          stderr: stderr || `Tunnel did not come up: exited with ${r.exitCode ?? r.signal}`,
          spawnError: spawnFailure(r),
        }),
      );
    });
  });

  const signal = options.signal ?? activityCancellation();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    const ms = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    timer = setTimeout(
      () =>
        reject(
          new TransientPlatformError(
            `the tunnel to database "${handle}" (environment "${environment}") did not come up within ${Math.round(ms / 1000)}s; retrying`,
          ),
        ),
      ms,
    );
  });
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = () => reject(signal?.reason ?? new Error('cancelled'));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
  });

  try {
    const at = await Promise.race([ready, timeout, aborted]);
    // The CLI listens on 127.0.0.1 (helpers/tunnel.rb) and prints localhost.<stack domain>, a public name
    // that resolvers guarding against DNS rebinding refuse to answer with 127.0.0.1: connect to the address.
    const host = /^localhost(\.|$)/i.test(at.host) ? '127.0.0.1' : at.host;
    return { ...at, host, close };
  } catch (err) {
    await close();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
