import { accessSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';

// Liveness checks read /proc rather than trusting kill(pid, 0): detached processes outlive their parent,
// and a container's pid 1 may never reap them, so a dead process can linger as a zombie; and after a
// reboot a recorded pid may belong to an unrelated process, which the start time tells apart.

export interface ProcInfo {
  pid: number;
  /** One-letter state: R, S, D, Z (zombie), T... */
  state: string;
  pgrp: number;
  /** Start time in clock ticks since boot: with the pid, identifies one process for good. */
  startTime: string;
}

export async function procInfo(pid: number): Promise<ProcInfo | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pid, state: fields[0], pgrp: Number(fields[2]), startTime: fields[19] };
}

/** True when the process exists, is not a zombie and (if given) started at startTime. */
export async function isProcessAlive(pid: number, startTime?: string): Promise<boolean> {
  if (!hasProc()) return signalZero(pid);
  const info = await procInfo(pid);
  if (!info || info.state === 'Z' || info.state === 'X') return false;
  return startTime === undefined || info.startTime === startTime;
}

/** Live (non-zombie) members of a process group. */
export async function processGroupMembers(pgid: number): Promise<number[]> {
  if (!hasProc()) return signalZero(-pgid) ? [pgid] : [];
  const members: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = await procInfo(Number(name));
    if (info && info.pgrp === pgid && info.state !== 'Z' && info.state !== 'X') members.push(info.pid);
  }
  return members;
}

/** Live processes whose environment holds `entry` ("NAME=value"), readable by this user. */
export async function processesWithEnvEntry(entry: string): Promise<ProcInfo[]> {
  if (!hasProc()) return [];
  const found: ProcInfo[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let environ: string;
    try {
      environ = await readFile(`/proc/${name}/environ`, 'latin1');
    } catch {
      continue; // gone, or another user's
    }
    if (!environ.split('\0').includes(entry)) continue;
    const info = await procInfo(Number(name));
    if (info && info.state !== 'Z' && info.state !== 'X') found.push(info);
  }
  return found;
}

export async function processCwd(pid: number): Promise<string | undefined> {
  try {
    return await readlink(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

let procAvailable: boolean | undefined;
function hasProc(): boolean {
  if (procAvailable === undefined) {
    try {
      accessSync('/proc/self/stat');
      procAvailable = true;
    } catch {
      procAvailable = false;
    }
  }
  return procAvailable;
}

function signalZero(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
