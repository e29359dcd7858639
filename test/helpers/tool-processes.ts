// The client tools pgshift starts (pg_restore, psql, pg_dumpall), found and killed from a test the way the
// OOM killer or an operator would: by pid, from /proc.
import { readFile, readdir } from 'node:fs/promises';

/**
 * The process whose command line runs `program` with the argument `needle` and that leads its process
 * group: pgshift starts each tool as a group leader, and the workers pg_restore forks share its command line.
 */
export async function findProcess(program: string, needle: string): Promise<number | undefined> {
  return (await findProcesses(program, needle))[0];
}

/** Every such process (group leaders only), as findProcess finds one. */
export async function findProcesses(program: string, needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const args = cmdline.split('\0');
    if (!args[0]?.endsWith(`/${program}`) || !args.includes(needle)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    if (pgrp === Number(pid)) found.push(pgrp);
  }
  return found;
}

/** SIGKILL to one process (not its group); false when it is already gone. */
export function tryKill(pid: number): boolean {
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/** Kills (SIGKILL, the leader only) the first `program` run with `needle` while `running` has not settled. */
export async function killWhileRunning(
  running: Promise<unknown>,
  program: string,
  needle: string,
): Promise<boolean> {
  let settled = false;
  void running.then(
    () => (settled = true),
    () => (settled = true),
  );
  const deadline = Date.now() + 120_000;
  while (!settled && Date.now() < deadline) {
    const pid = await findProcess(program, needle);
    if (pid && tryKill(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
