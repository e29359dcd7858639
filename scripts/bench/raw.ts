// What people would run instead of pgshift, on the same data: the guide's seed commands (a file), a
// streaming pipe, and pgcopydb. The passwords reach the tools through a password file (never argv).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PgTarget } from '../../src/pg/connection';
import { withClient } from '../../src/pg/connection';
import { type BenchEnv, BenchError, tailOf } from './env';

/** The databases the bench fills; pgcopydb copies one database per run. */
export const FILLED_DATABASES = ['db', 'pgbench', 'orders'];

export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = process.hrtime.bigint();
  const value = await fn();
  return [value, Number(process.hrtime.bigint() - started) / 1e9];
}

const passfileField = (s: string) => s.replace(/[\\:]/g, (c) => `\\${c}`);

/** A libpq password file for both servers (0600), so no password is on a command line. */
function writePassfile(path: string, servers: PgTarget[]): void {
  const lines = servers.map((t) =>
    [t.host, String(t.port), '*', t.user, t.password].map(passfileField).join(':'),
  );
  writeFileSync(path, lines.join('\n') + '\n', { mode: 0o600 });
}

/** Runs a program in its own process group (ended by cleanup on Ctrl-C); rejects unless it exits 0. */
function run(
  env: BenchEnv,
  file: string,
  args: string[],
  vars: NodeJS.ProcessEnv,
  log: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { ...process.env, ...vars },
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const forget = env.track(child);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.length > 1_000_000) stderr = stderr.slice(-100_000);
    });
    child.on('error', (err) => {
      forget();
      reject(err);
    });
    child.on('close', (code, signal) => {
      forget();
      writeFileSync(log, stderr);
      if (code === 0) resolve();
      else reject(new BenchError(`${file} exited ${code ?? signal}: ${tailOf(log, 8)}`));
    });
  });
}

const conn = (prefix: string, t: PgTarget) => ({
  [`${prefix}_HOST`]: t.host,
  [`${prefix}_PORT`]: String(t.port),
  [`${prefix}_USER`]: t.user,
});

// The guide's commands with the local platform's admin role; psql's errors are expected (roles and the
// default database that already exist), as in the guide: only a failure of a command itself counts.
const DUMP = `pg_dumpall --no-password -h "$SRC_HOST" -p "$SRC_PORT" -U "$SRC_USER" -l db \
  | grep -v "ALTER ROLE $SRC_USER .*PASSWORD"`;
const PSQL = `psql -X -q --no-password -h "$DST_HOST" -p "$DST_PORT" -U "$DST_USER" -d db > /dev/null`;

export interface RawTimes {
  seconds: number;
  /** seed only: the dump to a file, and psql -f of it. */
  dumpSeconds?: number;
  restoreSeconds?: number;
  /** ERROR lines psql printed (the guide expects a few). */
  psqlErrors?: number;
}

function errorLines(path: string): number {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.includes('ERROR:')).length;
  } catch {
    return 0;
  }
}

/** `pg_dumpall | grep -v ... > file; psql -f file`: the two timed apart. */
export async function rawSeed(env: BenchEnv, src: PgTarget, dst: PgTarget, work: string): Promise<RawTimes> {
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const passfile = join(work, 'pgpass');
  writePassfile(passfile, [src, dst]);
  const file = join(work, 'dump.sql');
  const errs = join(work, 'psql.err');
  const vars = { PGPASSFILE: passfile, DUMP: file, ...conn('SRC', src), ...conn('DST', dst) };
  try {
    const [, dumpSeconds] = await timed(() =>
      run(env, 'bash', ['-o', 'pipefail', '-c', `${DUMP} > "$DUMP"`], vars, join(work, 'dump.err')),
    );
    const [, restoreSeconds] = await timed(() => run(env, 'bash', ['-c', `${PSQL} -f "$DUMP"`], vars, errs));
    return {
      seconds: dumpSeconds + restoreSeconds,
      dumpSeconds,
      restoreSeconds,
      psqlErrors: errorLines(errs),
    };
  } finally {
    rmSync(file, { force: true });
  }
}

/** `pg_dumpall | grep -v ... | psql`: no file, the two overlap. */
export async function rawPipe(env: BenchEnv, src: PgTarget, dst: PgTarget, work: string): Promise<RawTimes> {
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const passfile = join(work, 'pgpass');
  writePassfile(passfile, [src, dst]);
  const errs = join(work, 'psql.err');
  const vars = { PGPASSFILE: passfile, ...conn('SRC', src), ...conn('DST', dst) };
  const [, seconds] = await timed(() =>
    run(env, 'bash', ['-o', 'pipefail', '-c', `${DUMP} | ${PSQL}`], vars, errs),
  );
  return { seconds, psqlErrors: errorLines(errs) };
}

let pgcopydbPath: string | null | undefined;
/** pgcopydb on PATH, or undefined. */
export function findPgcopydb(): string | undefined {
  if (pgcopydbPath === undefined) {
    const found = spawnSync('bash', ['-c', 'command -v pgcopydb'], { encoding: 'utf8' });
    pgcopydbPath = found.status === 0 ? found.stdout.trim() : null;
  }
  return pgcopydbPath ?? undefined;
}

const uri = (t: PgTarget, db: string) =>
  `postgres://${encodeURIComponent(t.user)}@${t.host}:${t.port}/${encodeURIComponent(db)}`;

// pgcopydb 0.10 runs `pg_dumpall --roles-only`'s statements itself and fails on the `\restrict` line that
// pg_dumpall writes since 15.14 (and 13.22, 14.19, 16.10, 17.6): its --roles is of no use with current
// client tools, so the roles go the guide's way, as part of pgcopydb's run.
const ROLES = `pg_dumpall --no-password -h "$SRC_HOST" -p "$SRC_PORT" -U "$SRC_USER" -l db --roles-only \
  | grep -v "ALTER ROLE $SRC_USER .*PASSWORD" | ${PSQL}`;

/**
 * pgcopydb clone, one run per database (it copies one database at a time), each database created on the
 * target first (pgcopydb needs it to exist); its default jobs (4 table, 4 index).
 */
export async function pgcopydbClone(
  env: BenchEnv,
  src: PgTarget,
  dst: PgTarget,
  work: string,
): Promise<RawTimes> {
  const bin = findPgcopydb();
  if (!bin) throw new BenchError('pgcopydb: not installed (apt-get install pgcopydb)');
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const passfile = join(work, 'pgpass');
  writePassfile(passfile, [src, dst]);
  const vars = { PGPASSFILE: passfile, ...conn('SRC', src), ...conn('DST', dst) };
  const [, seconds] = await timed(async () => {
    await run(env, 'bash', ['-o', 'pipefail', '-c', ROLES], vars, join(work, 'roles.err'));
    const existing = await withClient(dst, dst.database, async (c) =>
      (await c.query<{ datname: string }>('SELECT datname FROM pg_database')).rows.map((r) => r.datname),
    );
    for (const db of FILLED_DATABASES.filter((d) => !existing.includes(d))) {
      await withClient(dst, dst.database, (c) => c.query(`CREATE DATABASE "${db}"`));
    }
    for (const db of FILLED_DATABASES) {
      const args = ['clone', '--source', uri(src, db), '--target', uri(dst, db), '--dir', join(work, db)];
      await run(env, bin, args, { PGPASSFILE: passfile }, join(work, `${db}.log`));
    }
  });
  return { seconds };
}
