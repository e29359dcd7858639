import { PlatformError } from '../../errors';
import { runProgram } from './exec';

/**
 * The OS user PostgreSQL runs as. PostgreSQL refuses to run as root, so when pgshift runs as root the
 * servers run as an unprivileged user (PGSHIFT_PG_OS_USER, default "pgshift"), created if missing;
 * otherwise they run as the current user and this is undefined.
 */
export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

export const DEFAULT_PG_OS_USER = 'pgshift';

export async function resolveServerUser(): Promise<ServerUser | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const name = process.env.PGSHIFT_PG_OS_USER ?? DEFAULT_PG_OS_USER;
  let user = await lookupUser(name);
  if (!user) {
    const created = await runProgram('useradd', [
      '--system',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      '--user-group',
      name,
    ]);
    // Another process may have created it at the same moment; only the lookup decides.
    user = await lookupUser(name);
    if (!user) {
      throw new PlatformError(
        `PostgreSQL cannot run as root and the OS user "${name}" could not be created ` +
          `(useradd: ${created.stderr.trim() || `exit ${created.exitCode}`}); ` +
          'create an unprivileged user and name it in PGSHIFT_PG_OS_USER',
      );
    }
  }
  if (user.uid === 0) {
    throw new PlatformError(`PGSHIFT_PG_OS_USER "${name}" is root; PostgreSQL needs an unprivileged user`);
  }
  return user;
}

async function lookupUser(name: string): Promise<ServerUser | undefined> {
  const uid = await runProgram('id', ['-u', name]);
  const gid = await runProgram('id', ['-g', name]);
  if (uid.exitCode !== 0 || gid.exitCode !== 0) return undefined;
  return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Options that make runProgram run a command as the server user, with a predictable environment. */
export function asServerUser(user: ServerUser | undefined, cwd: string) {
  return {
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', HOME: cwd },
  };
}

/** Whether the server user can reach a directory (search permission on it and every parent). */
export async function canReach(user: ServerUser | undefined, dir: string): Promise<boolean> {
  if (!user) return true;
  const probe = await runProgram('/bin/sh', ['-c', 'cd -- "$1"', 'sh', dir], {
    ...asServerUser(user, '/'),
  });
  return probe.exitCode === 0;
}
