import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PlatformError } from '../../errors';
import { ensureDir } from './files';
import type { ContainerRecord } from './state';
import {
  isProcessAlive,
  procInfo,
  processesWithEnvEntry,
  processGroupMembers,
  signalGroup,
  sleep,
} from './proc';

// A local "container" is one detached process group running the service command through /bin/sh.
// Detached (its own session) so it outlives the CLI invocation that scaled it up, and so a stop can
// signal the shell together with everything it started.

export interface ContainerLaunch {
  index: number;
  /** Unique to this container, in its environment: finds it when its pid could not be recorded. */
  tag: string;
  command: string;
  cwd: string;
  env: Record<string, string>;
  logFile: string;
}

// What a service inherits from pgshift's own environment: enough to find programs, nothing else
// (Aptible containers only see their app's configuration).
const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'USER'];

const TAG_VARIABLE = 'PGSHIFT_CONTAINER_TAG';

export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

export async function startContainer(launch: ContainerLaunch): Promise<ContainerRecord> {
  const cwdOk = await stat(launch.cwd).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!cwdOk) {
    throw new PlatformError(
      `the app's working directory ${launch.cwd} is gone; recreate the app (apps:deprovision, then apps:create)`,
    );
  }
  await ensureDir(dirname(launch.logFile));
  const log = openSync(launch.logFile, 'a', 0o600);
  try {
    const child = spawn('/bin/sh', ['-c', launch.command], {
      cwd: launch.cwd,
      env: { ...launch.env, [TAG_VARIABLE]: launch.tag },
      detached: true,
      stdio: ['ignore', log, log],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    const pid = child.pid as number;
    const info = await procInfo(pid);
    return {
      index: launch.index,
      pid,
      startTime: info?.startTime,
      startedAt: new Date().toISOString(),
      tag: launch.tag,
    };
  } finally {
    closeSync(log);
  }
}

/**
 * The container started with `tag`, if it runs: the leader of its process group (the shell), which every
 * process it started inherits the tag from. Finds a container whose starter was killed before it could
 * record the pid.
 */
export async function findTaggedContainer(
  tag: string,
): Promise<{ pid: number; startTime: string } | undefined> {
  const members = await processesWithEnvEntry(`${TAG_VARIABLE}=${tag}`);
  const leader = members.find((p) => p.pgrp === p.pid);
  return leader && { pid: leader.pid, startTime: leader.startTime };
}

export async function isContainerAlive(container: ContainerRecord): Promise<boolean> {
  if (await isProcessAlive(container.pid, container.startTime)) return true;
  // The shell may be gone while what it started runs on in its group (`sh -c 'worker & server'` after the
  // server exited): Linux hands out no pid that is still a group's id, so such a group is still ours —
  // unless its id now leads a group of its own, i.e. the pid was reused after the group emptied.
  const members = await processGroupMembers(container.pid);
  return members.length > 0 && !members.includes(container.pid);
}

/** SIGTERM to the container's process group, SIGKILL after the grace period. Done when none is left. */
export async function stopContainer(container: ContainerRecord, graceMs: number): Promise<void> {
  if (!(await isContainerAlive(container))) return;
  const pgid = container.pid;
  signalGroup(pgid, 'SIGTERM');
  if (await waitGroupGone(pgid, graceMs)) return;
  signalGroup(pgid, 'SIGKILL');
  if (await waitGroupGone(pgid, 10_000)) return;
  throw new PlatformError(`container process group ${pgid} did not exit after SIGKILL`);
}

async function waitGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await processGroupMembers(pgid)).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}
