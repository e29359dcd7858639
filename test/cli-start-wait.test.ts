// `pgshift start --wait` in a pipe (a CI log), as a user runs it, nothing stubbed: `pgshift dev` (its own
// dev server and worker, so no other test's workflows reach that worker), a real PostgreSQL 14 source and
// a migration to 17. Each step is a line as it starts and ends, printed as it happens; then the summary.
// Then `local destroy` with that dev server still running leaves its history and log, and says so.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGSHIFT_BIN as BIN, runPgshift } from './helpers/cli';

let home: string;
let address: string;
let dev: ChildProcess | undefined;
let devExited: Promise<number | null>;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A child's output as it arrives, and whether (and how) it exited. */
function follow(child: ChildProcess) {
  const state = { stdout: '', stderr: '', code: undefined as number | null | undefined };
  child.stdout?.on('data', (d) => (state.stdout += d));
  child.stderr?.on('data', (d) => (state.stderr += d));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      state.code = code;
      resolve(code);
    }),
  );
  return { state, exited };
}

async function waitUntil(what: string, check: () => boolean, timeoutMs: number, show: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output so far:\n${show()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const pgshift = (args: string[]) => runPgshift(args, home, { TEMPORAL_ADDRESS: address });

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-start-wait-'));
  const [port, uiPort] = [await freePort(), await freePort()];
  address = `127.0.0.1:${port}`;
  dev = spawn(process.execPath, [BIN, 'dev', '--port', String(port), '--ui-port', String(uiPort)], {
    env: { ...process.env, PGSHIFT_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const followed = follow(dev);
  devExited = followed.exited;
  await waitUntil(
    'pgshift dev to run its worker',
    () => followed.state.stdout.includes('Worker running') || followed.state.code !== undefined,
    120_000,
    () => followed.state.stdout + followed.state.stderr,
  );
  expect(followed.state.code).toBeUndefined();
});

afterAll(async () => {
  dev?.kill('SIGINT');
  await devExited;
  await runPgshift(['local', 'destroy', '--yes'], home);
  await rm(home, { recursive: true, force: true });
});

test('start --wait without a terminal prints each step as it starts and ends, then the summary', async () => {
  const created = await pgshift(['local', 'db:create', 'wait-src', '--version', '14']);
  expect({ code: created.code, stderr: created.stderr }).toMatchObject({ code: 0 });
  const plan = join(home, 'plan.yaml');
  await writeFile(
    plan,
    "platform: local\nsource: { handle: wait-src }\ntarget: { handle: wait-dst, version: '17' }\n" +
      'cutover: { confirm: true, timeout: 30m }\n',
  );
  const id = 'pgshift-local-local-wait-src';

  const start = spawn(process.execPath, [BIN, 'start', '-f', plan, '--wait'], {
    env: { ...process.env, PGSHIFT_HOME: home, TEMPORAL_ADDRESS: address },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { state, exited } = follow(start);
  const show = () => `stdout:\n${state.stdout}\nstderr:\n${state.stderr}`;
  try {
    // The migration waits at the cutover gate until told: what is printed by then was printed as it happened.
    await waitUntil(
      'the cutover gate',
      () =>
        state.stdout.includes(`Waiting for cutover confirmation: pgshift cutover ${id}`) ||
        state.code !== undefined,
      300_000,
      show,
    );
    expect(state.code).toBeUndefined();
    for (const title of [
      'Preflight checks',
      'Create the target database',
      'Dump the data',
      'Restore the data',
    ]) {
      expect(state.stdout).toContain(`\n${title}: started\n`);
      expect(state.stdout).toMatch(new RegExp(`\\n${title}: done in \\S+`));
    }
    expect(state.stdout).toContain('\nWait for cutover confirmation: started\n');
    expect(state.stdout).not.toContain(`Migration ${id}:`);

    const cutover = await pgshift(['cutover', id]);
    expect({ code: cutover.code, stderr: cutover.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await exited).toBe(0);
  } finally {
    if (state.code === undefined) start.kill('SIGKILL');
  }
  const lines = state.stdout.split('\n');
  const summary = lines.indexOf(`Migration ${id}: COMPLETED`);
  expect(summary).toBeGreaterThan(0);
  for (const title of ['Wait for cutover confirmation', 'Vacuum and analyze']) {
    const ended = lines.findIndex((l) => l.startsWith(`${title}: done`));
    expect(ended).toBeGreaterThan(0);
    expect(ended).toBeLessThan(summary);
  }
  // One line as it starts and one as it ends: never repeated by the next poll.
  expect(lines.filter((l) => l === 'Preflight checks: started')).toHaveLength(1);
  expect(lines.filter((l) => l.startsWith('Preflight checks: done'))).toHaveLength(1);
  expect(lines.filter((l) => l.includes('\u001b'))).toEqual([]);
});

test("local destroy leaves the running dev server's history and log, and says so", async () => {
  const destroyed = await pgshift(['local', 'destroy', '--yes']);
  expect(destroyed.code).toBe(0);
  expect(destroyed.stderr).toMatch(/Kept in .*temporal\.db \(the dev server's history\)/);
  expect(destroyed.stderr).toMatch(/temporal\.log \(the dev server's log\)/);
  expect(existsSync(join(home, 'temporal.db'))).toBe(true);
  expect(existsSync(join(home, 'temporal.log'))).toBe(true);
  expect(existsSync(join(home, 'local-state.json'))).toBe(false);
  const list = await pgshift(['list', '--json']);
  expect(list.code).toBe(0);
  expect((JSON.parse(list.stdout) as { id: string }[]).map((m) => m.id)).toContain(
    'pgshift-local-local-wait-src',
  );
});
