import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TransientPlatformError } from '../../errors';
import { ensureDir } from './files';
import { isProcessAlive, sleep } from './proc';

// The CLI, a worker and tests may touch the same home at once. mkdir is atomic on every local file
// system, so the directory itself is the lock; its owner file lets a later process break the lock of one
// that died while holding it.

const OWNER_FILE = 'owner.json';
// A lock directory without an owner file is only legitimate for the instant between mkdir and writeFile.
const OWNERLESS_STALE_MS = 10_000;

export interface LockOptions {
  timeoutMs?: number;
}

export async function withLock<T>(
  lockDir: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const token = await acquire(lockDir, options.timeoutMs ?? 180_000);
  try {
    return await fn();
  } finally {
    await release(lockDir, token);
  }
}

async function acquire(lockDir: string, timeoutMs: number): Promise<string> {
  await ensureDir(dirname(lockDir));
  const token = randomBytes(8).toString('hex');
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  for (;;) {
    try {
      await mkdir(lockDir, { mode: 0o700 });
      await writeFile(join(lockDir, OWNER_FILE), JSON.stringify({ pid: process.pid, token, at: Date.now() }));
      return token;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readOwner(lockDir);
    if (await isStale(lockDir, holder)) {
      await breakLock(lockDir, holder?.token);
      continue;
    }
    if (Date.now() > deadline) {
      throw new TransientPlatformError(
        `timed out after ${Math.round(timeoutMs / 1000)}s waiting for the lock ${lockDir}` +
          (holder ? ` held by process ${holder.pid}` : '') +
          '; if no pgshift process is still running, remove that directory',
      );
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 250);
  }
}

interface Owner {
  pid: number;
  token: string;
  at: number;
}

async function readOwner(lockDir: string): Promise<Owner | undefined> {
  try {
    return JSON.parse(await readFile(join(lockDir, OWNER_FILE), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

async function isStale(lockDir: string, holder: Owner | undefined): Promise<boolean> {
  if (holder) return !(await isProcessAlive(holder.pid));
  try {
    return Date.now() - (await stat(lockDir)).mtimeMs > OWNERLESS_STALE_MS;
  } catch {
    return false; // released meanwhile: the next mkdir decides
  }
}

async function breakLock(lockDir: string, staleToken: string | undefined): Promise<void> {
  // Renaming first means only one of several waiters breaks it; the others see it gone and race on mkdir.
  const grave = `${lockDir}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(lockDir, grave);
  } catch {
    return;
  }
  // Another waiter may have broken the stale lock and taken a fresh one between our read and the rename:
  // hand that live lock back.
  const moved = await readOwner(grave);
  if (moved && moved.token !== staleToken) {
    try {
      await rename(grave, lockDir);
      return;
    } catch {
      // lockDir was taken again meanwhile; the moved lock's holder will find its lock gone on release
    }
  }
  await rm(grave, { recursive: true, force: true });
}

async function release(lockDir: string, token: string): Promise<void> {
  const holder = await readOwner(lockDir);
  if (holder?.token === token) await rm(lockDir, { recursive: true, force: true });
}
