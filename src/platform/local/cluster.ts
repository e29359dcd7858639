import { chown, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Client } from 'pg';
import { PlatformError } from '../../errors';
import { type RunResult, runProgram } from './exec';
import { redact } from '../../lib/redact';
import { readTextIfExists } from './files';
import type { PgInstall } from './pg-installs';
import { isProcessAlive, processCwd, sleep } from './proc';
import { asServerUser, type ServerUser } from './server-user';

// One local database = one PostgreSQL cluster, shaped like an Aptible database: superuser "aptible"
// with a password (scram-sha-256 on TCP), a "postgres" role and a "db" database, so a pg_dumpall of
// one local database restored into another gives exactly the errors the guide expects on Aptible.

export const ADMIN_ROLE = 'aptible';
export const DEFAULT_DATABASE = 'db';
export const EXTRA_ROLE = 'postgres';
export const HOST = '127.0.0.1';

export interface ClusterPaths {
  clusterDir: string;
  dataDir: string;
}

const CONF_FILE = 'pgshift.conf';

/** Besides wal_level = logical: room for a migration of many databases, both as source and as target. */
export const LOGICAL_REPLICATION_SETTINGS = {
  max_replication_slots: 20,
  max_wal_senders: 20,
  max_logical_replication_workers: 16,
  max_worker_processes: 24,
} as const;

export function serverLogOf(paths: ClusterPaths): string {
  return join(paths.clusterDir, 'server.log');
}

export async function initCluster(
  install: PgInstall,
  user: ServerUser | undefined,
  paths: ClusterPaths,
  port: number,
  password: string,
): Promise<void> {
  const pwfile = join(paths.clusterDir, '.initdb-password');
  await writeFile(pwfile, password + '\n', { mode: 0o600 });
  if (user) await chown(pwfile, user.uid, user.gid);
  try {
    const result = await runProgram(
      join(install.binDir, 'initdb'),
      [
        '-D',
        paths.dataDir,
        '-U',
        ADMIN_ROLE,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        // Its closing flush is left to the caller (fsyncTree), to overlap the server's start; the database
        // counts as made only once both are done.
        '--no-sync',
      ],
      { ...asServerUser(user, paths.clusterDir) },
    );
    if (result.exitCode !== 0) {
      throw new PlatformError(
        `initdb (PostgreSQL ${install.major}) failed for ${paths.dataDir}: ${tail(redact(result.all, [password]))}`,
      );
    }
  } finally {
    await rm(pwfile, { force: true });
  }
  const conf = join(paths.dataDir, 'postgresql.conf');
  await writeFile(conf, (await readFile(conf, 'utf8')) + `\ninclude '${CONF_FILE}'\n`);
  await writeClusterConf(user, paths, port);
  await ensureReplicationHba(paths);
}

/**
 * Lets the admin role open replication connections over TCP, which pg_basebackup needs (initdb's default
 * pg_hba.conf already does; clusters whose file was changed get the line added). Returns whether it changed
 * the file: a running server then needs a reload.
 */
export async function ensureReplicationHba(paths: ClusterPaths): Promise<boolean> {
  const file = join(paths.dataDir, 'pg_hba.conf');
  const text = (await readTextIfExists(file)) ?? '';
  const allowed = text.split('\n').some((line) => {
    const [type, database, role, address] = line.replace(/#.*/, '').trim().split(/\s+/);
    return (
      (type === 'host' || type === 'hostnossl') &&
      database?.split(',').includes('replication') &&
      ['all', ADMIN_ROLE].some((r) => role?.split(',').includes(r)) &&
      ['127.0.0.1/32', 'samehost', 'all', '0.0.0.0/0'].includes(address ?? '')
    );
  });
  if (allowed) return false;
  // Appending keeps the file's owner and mode.
  const line = `host    replication     ${ADMIN_ROLE}         127.0.0.1/32            scram-sha-256`;
  await writeFile(
    file,
    `${text.endsWith('\n') || !text ? text : `${text}\n`}# Added by pgshift (backups).\n${line}\n`,
  );
  return true;
}

/** Settings pgshift owns, kept in their own file so a port change rewrites only them. */
export async function writeClusterConf(
  user: ServerUser | undefined,
  paths: ClusterPaths,
  port: number,
): Promise<void> {
  const file = join(paths.dataDir, CONF_FILE);
  await writeFile(
    file,
    [
      '# Written by pgshift (local platform).',
      `listen_addresses = '${HOST}'`,
      `port = ${port}`,
      // No Unix socket: the default directory (/var/run/postgresql, /tmp) may not be writable by the
      // server user, and every client of a local database connects over TCP like on Aptible.
      "unix_socket_directories = ''",
      "password_encryption = 'scram-sha-256'",
      // Ready for method logical out of the box, as source or as target: a publication needs
      // wal_level logical, each replicated database a slot and a WAL sender on the source and an apply
      // worker (plus table-sync workers during the initial copy) on the target, all out of the pool of
      // background workers. These need a restart, so they are set before the server first starts.
      'wal_level = logical',
      ...Object.entries(LOGICAL_REPLICATION_SETTINGS).map(([name, value]) => `${name} = ${value}`),
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  if (user) await chown(file, user.uid, user.gid);
}

/**
 * Whether this cluster's postmaster runs. postmaster.pid alone is not enough: after a crash or reboot it
 * may name a dead process, or one that reused the pid; the postmaster's working directory is its data
 * directory, which identifies it.
 */
export async function isClusterRunning(paths: ClusterPaths): Promise<boolean> {
  const pid = await postmasterPid(paths);
  if (pid === undefined || !(await isProcessAlive(pid))) return false;
  const cwd = await processCwd(pid);
  if (cwd === undefined) return false;
  try {
    return cwd === (await realpath(paths.dataDir));
  } catch {
    return false;
  }
}

async function postmasterPid(paths: ClusterPaths): Promise<number | undefined> {
  const text = await readTextIfExists(join(paths.dataDir, 'postmaster.pid')).catch(() => undefined);
  const pid = Number(text?.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export async function startCluster(
  install: PgInstall,
  user: ServerUser | undefined,
  paths: ClusterPaths,
): Promise<void> {
  // Only called when isClusterRunning said no: a leftover pid file is stale, and PostgreSQL would refuse
  // to start if its pid now belongs to another process of the same user.
  await rm(join(paths.dataDir, 'postmaster.pid'), { force: true });
  let ended: RunResult | undefined;
  const ctl = runProgram(
    join(install.binDir, 'pg_ctl'),
    ['-D', paths.dataDir, '-l', serverLogOf(paths), '-w', '-t', '120', '-s', 'start'],
    { ...asServerUser(user, paths.clusterDir) },
  ).then((r) => (ended = r));
  // pg_ctl -w looks at the server's state every 100 ms, a small server is ready in a fraction of that:
  // the same state, read from the same pid file, is looked at here more often. pg_ctl's own outcome
  // (a failed start, a timeout) still decides when it comes first.
  while (ended === undefined) {
    if (await reportsReady(paths)) return;
    await Promise.race([ctl, sleep(POLL_MS)]);
  }
  const result = ended;
  if (result.exitCode !== 0) {
    const log = (await readTextIfExists(serverLogOf(paths)).catch(() => undefined)) ?? '';
    throw new PlatformError(
      `PostgreSQL ${install.major} in ${paths.dataDir} did not start: ${tail(redact(result.all))}` +
        (log ? `; server log (${serverLogOf(paths)}): ${tail(redact(log))}` : ''),
    );
  }
}

/** How often a start or a stop looks at the server's state. */
const POLL_MS = 10;

/** The postmaster's status line (line 8 of postmaster.pid, as pg_ctl -w reads it) says it accepts connections. */
async function reportsReady(paths: ClusterPaths): Promise<boolean> {
  const text = await readTextIfExists(join(paths.dataDir, 'postmaster.pid')).catch(() => undefined);
  const lines = text?.split('\n') ?? [];
  const pid = Number(lines[0]);
  return lines[7]?.trim() === 'ready' && Number.isInteger(pid) && pid > 0 && (await isProcessAlive(pid));
}

/**
 * Stops the cluster, and succeeds when it is not running. `fast` disconnects clients and writes a shutdown
 * checkpoint; `immediate` skips the checkpoint (the next start recovers from the WAL), for a cluster about
 * to be deleted. The postmaster is signalled directly, as pg_ctl would, and watched more often than pg_ctl
 * -w does; one that does not stop in time gets the next, harder signal.
 */
export async function stopCluster(paths: ClusterPaths, mode: 'fast' | 'immediate' = 'fast') {
  const signals: [NodeJS.Signals, number][] = [
    ['SIGINT', 60_000],
    ['SIGQUIT', 10_000],
    ['SIGKILL', 10_000],
  ];
  for (const [signal, patienceMs] of mode === 'fast' ? signals : signals.slice(1)) {
    const pid = await postmasterPid(paths);
    if (pid === undefined || !(await isClusterRunning(paths))) return;
    try {
      process.kill(pid, signal);
    } catch {
      // gone meanwhile
    }
    const deadline = Date.now() + patienceMs;
    while (Date.now() < deadline) {
      if (!(await isClusterRunning(paths))) return;
      await sleep(POLL_MS);
    }
  }
}

/** Creates what every Aptible PostgreSQL database has besides its superuser. Idempotent. */
export async function bootstrapCluster(port: number, password: string): Promise<void> {
  const client = new Client({
    host: HOST,
    port,
    user: ADMIN_ROLE,
    password,
    database: 'postgres',
    connectionTimeoutMillis: 30_000,
  });
  await client.connect();
  try {
    const role = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [EXTRA_ROLE]);
    if (role.rowCount === 0) await client.query(`CREATE ROLE ${EXTRA_ROLE}`);
    const db = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DEFAULT_DATABASE]);
    if (db.rowCount === 0) await client.query(`CREATE DATABASE ${DEFAULT_DATABASE} OWNER ${ADMIN_ROLE}`);
  } finally {
    await client.end();
  }
}

/** Makes a running server re-read its configuration files (pg_hba.conf included). */
export async function reloadServerConfig(port: number, password: string): Promise<void> {
  const client = new Client({
    host: HOST,
    port,
    user: ADMIN_ROLE,
    password,
    database: 'postgres',
    connectionTimeoutMillis: 30_000,
  });
  await client.connect();
  try {
    await client.query('SELECT pg_reload_conf()');
  } finally {
    await client.end();
  }
  // The postmaster reloads when it handles the signal, a moment after the call returned.
  await sleep(500);
}

/** Checks the server user can run these binaries (node_modules may sit where it cannot reach). */
export async function checkServerBinaries(install: PgInstall, user: ServerUser | undefined): Promise<void> {
  const result = await runProgram(join(install.binDir, 'postgres'), ['--version'], asServerUser(user, '/'));
  const major = /\(PostgreSQL\)\s+(\d+)/.exec(result.stdout)?.[1];
  if (result.exitCode !== 0) {
    throw new PlatformError(
      `the PostgreSQL ${install.major} binaries in ${install.binDir} cannot be run` +
        (user ? ` by the OS user "${user.name}"` : '') +
        `: ${tail(result.all)}; ` +
        'make the directory and every parent readable and searchable by that user (chmod o+rx), or install the project elsewhere',
    );
  }
  if (major !== install.major) {
    throw new PlatformError(
      `${install.binDir}/postgres reports version ${major ?? '?'}, expected ${install.major}`,
    );
  }
}

export async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port free right now on 127.0.0.1 and not remembered by another local database (which may be stopped). */
export async function pickFreePort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen({ port: 0, host: HOST, exclusive: true }, () => {
        const address = server.address();
        const chosen = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolve(chosen));
      });
    });
    if (port > 0 && !taken.has(port)) return port;
  }
  throw new PlatformError('could not find a free TCP port on 127.0.0.1 for a local database');
}

function tail(text: string, lines = 8): string {
  return text.trim().split('\n').slice(-lines).join(' | ');
}
