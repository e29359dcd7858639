// The pgshift command as a user runs it: exit codes 0 / 1 / 2, clear refusals, validation before any contact.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { type CliResult, PGSHIFT_BIN as BIN, runPgshift } from './helpers/cli';
import { connectTestClient, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';
import { validatePlan } from '../src/plan/load';

let dir: string;
let client: Client;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgshift-cli-'));
  client = await connectTestClient();
});

afterAll(async () => {
  await client?.connection.close();
  await rm(dir, { recursive: true, force: true });
});

function pgshift(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runPgshift(args, dir, env);
}

test('an invalid plan exits 2 naming the fields, before contacting Temporal', async () => {
  const plan = join(dir, 'bad.yaml');
  await writeFile(plan, 'platform: local\nsource: {}\ntarget: { handle: x, version: abc }\n');
  // A Temporal address where nothing listens: reaching it would be exit 1, not 2.
  const res = await pgshift(['start', '-f', plan], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  expect(res.code).toBe(2);
  expect(res.stderr).toMatch(/source\.handle/);
  expect(res.stderr).toMatch(/target\.version/);
});

test('a missing plan file and an unknown command exit 2', async () => {
  expect((await pgshift(['start', '-f', join(dir, 'nope.yaml')])).code).toBe(2);
  expect((await pgshift(['migrate-everything'])).code).toBe(2);
});

test('an Aptible plan without source.environment is refused with exit 2 before any contact', async () => {
  const file = join(dir, 'aptible-no-env.yaml');
  await writeFile(file, 'platform: aptible\nsource: { handle: src }\ntarget: { handle: dst, version: 17 }\n');
  const res = await pgshift(['start', '-f', file], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  expect(res.code).toBe(2);
  expect(res.stderr).toMatch(/source\.environment: is required for platform "aptible"/);
});

test('cutover and abort of an unknown migration exit 2', async () => {
  const res = await pgshift(['cutover', 'pgshift-local-nowhere-nothing']);
  expect(res.code).toBe(2);
  expect(res.stderr).toMatch(/no migration/);
  expect((await pgshift(['abort', 'pgshift-local-nowhere-nothing'])).code).toBe(2);
});

test('cutover is refused while the migration is not waiting for it; status answers', async () => {
  // A migration whose task queue has no worker stays at its start: running, not waiting for cutover.
  const id = uniqueWorkflowId('cli');
  const plan = validatePlan({
    platform: 'local',
    source: { handle: 'a' },
    target: { handle: 'b', version: '17' },
  });
  const handle = await client.workflow.start('migrationWorkflow', {
    workflowId: id,
    taskQueue: uniqueTaskQueue('cli-idle'),
    args: [{ migrationId: id, plan }, { searchAttributes: false }],
  });
  try {
    const res = await pgshift(['cutover', id]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/not waiting for cutover/);
    const status = await pgshift(['status', id, '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ workflowId: id, execution: 'RUNNING' });
    expect(JSON.parse(status.stdout).note).toMatch(/no worker answered/);
  } finally {
    await handle.terminate('test over');
  }
});

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

test('dev runs a dev server with its UI and a worker until Ctrl-C, keeping history under the home', async () => {
  const [port, uiPort] = [await freePort(), await freePort()];
  const home = join(dir, 'dev-home');
  const dev = spawn(process.execPath, [BIN, 'dev', '--port', String(port), '--ui-port', String(uiPort)], {
    env: { ...process.env, PGSHIFT_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  dev.stdout.on('data', (d) => (output += d));
  dev.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => dev.once('exit', (code) => resolve(code)));
  try {
    for (let i = 0; i < 240 && !output.includes('Worker running'); i++)
      await new Promise((r) => setTimeout(r, 250));
    expect(output).toContain(`Web UI http://localhost:${uiPort}`);
    // A server this fresh may still be opening its visibility store on a loaded machine: a few tries.
    let list = await pgshift(['list', '--json'], { TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    for (let i = 0; i < 4 && list.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 2_000));
      list = await pgshift(['list', '--json'], { TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    }
    expect({ code: list.code, stderr: list.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(list.stdout)).toEqual([]);
    expect(existsSync(join(home, 'temporal.db'))).toBe(true);
  } finally {
    dev.kill('SIGINT');
  }
  expect(await exited).toBe(0);
});

test('local destroy asks for --yes, then removes every database of the home', async () => {
  const home = join(dir, 'destroy-home');
  const local = (args: string[]) => runPgshift(['local', ...args], home);
  expect((await local(['db:create', 'doomed', '--version', '14'])).code).toBe(0);
  const { stdout } = await local(['db:list', '--json']);
  const [db] = JSON.parse(stdout) as { handle: string; port: number }[];
  expect(db.handle).toBe('doomed');

  const refused = await local(['destroy']);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toMatch(/--yes/);
  expect(JSON.parse((await local(['db:list', '--json'])).stdout)).toHaveLength(1);

  expect((await local(['destroy', '--yes'])).code).toBe(0);
  expect(existsSync(home)).toBe(false);
  expect(JSON.parse((await local(['db:list', '--json'])).stdout)).toEqual([]);
});
