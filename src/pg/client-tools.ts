import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { runShort } from './process';
import { PreflightError } from '../errors';

export interface ClientTools {
  pgDumpall: string;
  psql: string;
  pgDump: string;
  /** Major version of pg_dumpall, e.g. 15 (9.6 for a 9.6 client). */
  version: number;
}

const INSTALL_HINT =
  'install the PostgreSQL client tools (package postgresql-client-N on Debian/Ubuntu, N at least the source ' +
  "server's major version) or set PGSHIFT_PG_BIN to the directory that holds pg_dumpall, pg_dump and psql";

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function locate(name: string, dirs: string[]): Promise<string | undefined> {
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** "pg_dumpall (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)" → 15; "... 9.6.24" → 9.6. */
export function parseMajorVersion(versionOutput: string): number | undefined {
  const match =
    /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(versionOutput) ?? /\b(\d+)(?:\.(\d+))?/.exec(versionOutput);
  if (!match) return undefined;
  const first = Number(match[1]);
  return first < 10 && match[2] !== undefined ? Number(`${first}.${match[2]}`) : first;
}

/**
 * The pg_dumpall, pg_dump and psql this worker will run: from PGSHIFT_PG_BIN when set (so an operator can pick
 * a client version newer than the distribution's default), else from PATH.
 */
export async function findClientTools(): Promise<ClientTools> {
  const binDir = process.env.PGSHIFT_PG_BIN;
  const dirs = binDir ? [binDir] : (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  const where = binDir ? `PGSHIFT_PG_BIN (${binDir})` : 'PATH';
  const [pgDumpall, psql, pgDump] = await Promise.all(
    ['pg_dumpall', 'psql', 'pg_dump'].map((name) => locate(name, dirs)),
  );
  const missing = [
    ['pg_dumpall', pgDumpall],
    ['psql', psql],
    ['pg_dump', pgDump],
  ]
    .filter(([, path]) => !path)
    .map(([name]) => name);
  if (!pgDumpall || !psql || !pgDump) {
    throw new PreflightError(`${missing.join(', ')} not found in ${where}: ${INSTALL_HINT}`);
  }
  let output: string;
  try {
    output = await runShort(pgDumpall, ['--version'], 30_000);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new PreflightError(`${pgDumpall} --version failed (${reason}): ${INSTALL_HINT}`);
  }
  const version = parseMajorVersion(output);
  if (version === undefined) {
    throw new PreflightError(
      `cannot read the version of ${pgDumpall} (it printed "${output.trim()}"): ${INSTALL_HINT}`,
    );
  }
  return { pgDumpall, psql, pgDump, version };
}

/**
 * pg_dumpall refuses servers newer than itself, and from version 15 on it no longer reads servers
 * older than 9.2; both are checked before any downtime.
 */
export function assertCanDump(clientMajor: number, serverMajor: number): void {
  if (clientMajor < serverMajor) {
    throw new PreflightError(
      `pg_dumpall ${clientMajor} cannot dump a PostgreSQL ${serverMajor} server (it only dumps its own major ` +
        `version or older): install the PostgreSQL ${serverMajor} client tools or newer (postgresql-client-${serverMajor}) ` +
        'and put them first in PATH or set PGSHIFT_PG_BIN to their directory',
    );
  }
  if (clientMajor >= 15 && serverMajor < 9.2) {
    throw new PreflightError(
      `pg_dumpall ${clientMajor} cannot dump a PostgreSQL ${serverMajor} server (versions 15 and later read servers ` +
        'from 9.2 on): install PostgreSQL 14 client tools and set PGSHIFT_PG_BIN to their directory',
    );
  }
}
