// The pgshift command as a user runs it: exit codes 0 / 1 / 2, clear refusals, validation before any contact.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm, truncate, writeFile } from 'node:fs/promises';
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

test('a workflow id that is not one plain word exits 2 naming --id, before contacting Temporal', async () => {
  const plan = join(dir, 'ok.yaml');
  await writeFile(plan, 'platform: local\nsource: { handle: a }\ntarget: { handle: b, version: 17 }\n');
  for (const id of ['..', '.', 'a/b', '-x', 'x'.repeat(201)]) {
    for (const command of ['start', 'rehearse']) {
      const res = await pgshift([command, '-f', plan, '--id', id], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
      expect({ command, id, code: res.code }).toEqual({ command, id, code: 2 });
      expect(res.stderr).toMatch(
        /option '--id <id>' argument .* is invalid\. a workflow id must be 1-200 characters/,
      );
    }
  }
  const status = await pgshift(['status', '../x'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  expect(status.code).toBe(2);
  expect(status.stderr).toMatch(/argument 'id'\. a workflow id must be/);
});

test('a plan file over 1 MiB exits 2 naming its size and the cap, without parsing it', async () => {
  const plan = join(dir, 'huge.yaml');
  await writeFile(plan, 'platform: local\n#');
  await truncate(plan, 50 * 1024 * 1024);
  const res = await pgshift(['start', '-f', plan], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  expect(res.code).toBe(2);
  expect(res.stderr).toContain(`plan file ${plan} is 52428800 bytes, more than the 1048576 bytes (1 MiB)`);
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
    // A dev server and a worker bundling the workflows: minutes on a loaded machine, seconds on an idle one.
    for (const deadline = Date.now() + 180_000; !output.includes('Worker running') && Date.now() < deadline;)
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

test("local destroy asks for --yes, then removes every database of the home and keeps the dev server's files", async () => {
  const home = join(dir, 'destroy-home');
  const local = (args: string[]) => runPgshift(['local', ...args], home);
  expect((await local(['db:create', 'doomed', '--version', '14'])).code).toBe(0);
  // What `pgshift dev` keeps in the home: not the local platform's to delete.
  await writeFile(join(home, 'temporal.db'), 'history');
  await writeFile(join(home, 'temporal.log'), 'log');
  const { stdout } = await local(['db:list', '--json']);
  const [db] = JSON.parse(stdout) as { handle: string; port: number }[];
  expect(db.handle).toBe('doomed');

  const refused = await local(['destroy']);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toMatch(/--yes/);
  expect(JSON.parse((await local(['db:list', '--json'])).stdout)).toHaveLength(1);

  const destroyed = await local(['destroy', '--yes']);
  expect(destroyed.code).toBe(0);
  expect(destroyed.stderr).toContain(
    `Kept in ${home}, as they are not the local platform's: temporal.db (the dev server's history), temporal.log (the dev server's log)`,
  );
  expect((await readdir(home)).sort()).toEqual(['temporal.db', 'temporal.log']);
  expect(JSON.parse((await local(['db:list', '--json'])).stdout)).toEqual([]);

  // A home holding nothing else goes entirely.
  await rm(join(home, 'temporal.db'));
  await rm(join(home, 'temporal.log'));
  expect((await local(['db:create', 'doomed', '--version', '14'])).code).toBe(0);
  expect((await local(['destroy', '--yes'])).code).toBe(0);
  expect(existsSync(home)).toBe(false);
});
