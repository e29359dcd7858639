// `aptible db:tunnel` as an activity holds it: open until the activity ends, then closed, whether the
// activity succeeded, failed, was cancelled or its worker exited; never left holding its port.
import { execFile, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { AptibleCli } from '../src/platform/aptible';
import { openTunnel } from '../src/platform/aptible/tunnel';
import { withClient } from '../src/pg/connection';
import { createFakeAptible, type FakeAptible } from './fake-aptible/fixture';

const ENV = 'tunnel-env';
let fake: FakeAptible;
let cli: AptibleCli;

beforeAll(async () => {
  fake = await createFakeAptible();
  await fake.addEnvironment(ENV);
  const res = await fake.run([
    'db:create',
    'tun-db',
    '--type',
    'postgresql',
    '--version',
    '14',
    '--environment',
    ENV,
  ]);
  expect(res.exitCode).toBe(0);
  cli = new AptibleCli({ env: { ...process.env, ...fake.env } });
});

afterAll(async () => {
  await fake?.setFaults([]);
  await fake?.destroy();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function eventually(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting until ${what}`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const lastTunnel = () =>
  fake
    .invocations()
    .filter((i) => i.argv[0] === 'db:tunnel')
    .at(-1)!;

test('opens where psql can connect, and close() stops the CLI with SIGINT and frees the port', async () => {
  const conn = await openTunnel(cli, 'tun-db', ENV);
  expect(conn.user).toBe('aptible');
  expect(conn.database).toBe('db');
  const one = await withClient(
    conn,
    conn.database,
    async (c) => (await c.query('SELECT 1 AS one')).rows[0].one,
  );
  expect(one).toBe(1);
  const { pid } = lastTunnel();
  await conn.close();
  await conn.close(); // safe twice
  expect(alive(pid)).toBe(false);
  expect(lastTunnel().exitCode).toBe(0); // "Closing tunnel": the clean way out
  expect(await accepts(conn.port)).toBe(false);
});

test('an unknown database fails at once, non-retryable, naming it', async () => {
  await expect(openTunnel(cli, 'no-such-db', ENV)).rejects.toMatchObject({
    name: 'NotFoundError',
    message: expect.stringMatching(/Could not find database no-such-db/),
  });
});

test('without the CLI installed, the error says how to install it', async () => {
  const nowhere = new AptibleCli({ bin: 'aptible-not-installed', env: { ...process.env, ...fake.env } });
  await expect(openTunnel(nowhere, 'tun-db', ENV)).rejects.toMatchObject({
    name: 'PlatformError',
    message: expect.stringMatching(/could not be run .*install it/),
  });
});

test('a tunnel that does not come up in time is stopped and reported as retryable', async () => {
  await fake.setFaults([{ command: 'db:tunnel', times: 1, action: { type: 'delayMs', ms: 20_000 } }]);
  await expect(openTunnel(cli, 'tun-db', ENV, { startTimeoutMs: 1_500 })).rejects.toMatchObject({
    name: 'TransientPlatformError',
    message: expect.stringMatching(/did not come up within 2s/),
  });
  const { pid } = lastTunnel();
  await eventually(() => !alive(pid), 'the stuck tunnel is gone');
});

test('a cancelled activity stops its tunnel, even one still starting', async () => {
  await fake.setFaults([{ command: 'db:tunnel', times: 1, action: { type: 'delayMs', ms: 20_000 } }]);
  const controller = new AbortController();
  const opening = openTunnel(cli, 'tun-db', ENV, { signal: controller.signal });
  await eventually(
    () => fake.invocations().some((i) => i.argv[0] === 'db:tunnel' && i.exitCode === undefined),
    'it started',
  );
  const { pid } = lastTunnel();
  controller.abort(new Error('activity cancelled'));
  await expect(opening).rejects.toThrow('activity cancelled');
  await eventually(() => !alive(pid), 'the cancelled tunnel is gone');
});

test('a cancelled activity stops a long CLI command too (e.g. a db:create waiting on its operation)', async () => {
  await fake.setFaults([{ command: 'db:list', times: 1, action: { type: 'delayMs', ms: 30_000 } }]);
  const controller = new AbortController();
  const listing = cli.run(['db:list', '--environment', ENV], { signal: controller.signal });
  await eventually(
    () => fake.invocations().some((i) => i.argv[0] === 'db:list' && i.exitCode === undefined),
    'it started',
  );
  const { pid } = fake
    .invocations()
    .filter((i) => i.argv[0] === 'db:list')
    .at(-1)!;
  controller.abort(new Error('activity cancelled'));
  await expect(listing).rejects.toThrow('activity cancelled');
  await eventually(() => !alive(pid), 'the command is gone');
  // Killed: it never reached the end of its 30 s wait, where the fake records its exit code.
  expect(fake.invocations().find((i) => i.pid === pid)?.exitCode).toBeUndefined();
  await fake.setFaults([]);
});

test('a worker that exits takes its open tunnels along', async () => {
  await fake.setFaults([]);
  const script = `
    const { AptibleCli } = require(${JSON.stringify(join(__dirname, '..', 'src', 'platform', 'aptible'))});
    const { openTunnel } = require(${JSON.stringify(join(__dirname, '..', 'src', 'platform', 'aptible', 'tunnel'))});
    openTunnel(new AptibleCli(), 'tun-db', ${JSON.stringify(ENV)}).then(() => process.exit(0));
  `;
  await new Promise<void>((resolve, reject) =>
    execFile(
      process.execPath,
      ['-r', require.resolve('tsx/cjs'), '-e', script],
      { env: { ...process.env, ...fake.env }, timeout: 60_000 },
      (err) => (err ? reject(err) : resolve()),
    ),
  );
  const { pid } = lastTunnel();
  await eventually(() => !alive(pid), "the exited worker's tunnel is gone");
});

test('a worker killed outright (SIGKILL: no exit handler runs) still takes its tunnels along', async () => {
  await fake.setFaults([]);
  const script = `
    const { AptibleCli } = require(${JSON.stringify(join(__dirname, '..', 'src', 'platform', 'aptible'))});
    const { openTunnel } = require(${JSON.stringify(join(__dirname, '..', 'src', 'platform', 'aptible', 'tunnel'))});
    openTunnel(new AptibleCli(), 'tun-db', ${JSON.stringify(ENV)}).then((c) => {
      console.log(c.port);
      setInterval(() => undefined, 1000);
    });
  `;
  const worker = spawn(process.execPath, ['-r', require.resolve('tsx/cjs'), '-e', script], {
    env: { ...process.env, ...fake.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    worker.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    worker.once('exit', () => reject(new Error('the worker exited before its tunnel came up')));
  });
  expect(await accepts(port)).toBe(true);
  const { pid } = lastTunnel();
  worker.kill('SIGKILL');
  await eventually(() => !alive(pid), "the killed worker's tunnel is gone");
  expect(await accepts(port)).toBe(false);
});
