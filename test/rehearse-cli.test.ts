// `pgshift rehearse` as a user runs it: bad input exits 2 before Temporal is contacted; a started
// rehearsal prints its id, cannot be started twice at once, and `status` and the signals know it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { type CliResult, runPgshift } from './helpers/cli';
import { connectTestClient, uniqueWorkflowId } from './helpers/temporal';

// A Temporal address where nothing listens: reaching it would be exit 1, not 2.
const NOWHERE = { TEMPORAL_ADDRESS: '127.0.0.1:1' };
let dir: string;
let client: Client;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgshift-rehearse-cli-'));
  client = await connectTestClient();
});

afterAll(async () => {
  await client?.connection.close();
  await rm(dir, { recursive: true, force: true });
});

function pgshift(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runPgshift(args, dir, env);
}

async function planFile(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

test('an invalid plan exits 2 naming the fields, before contacting Temporal', async () => {
  const plan = await planFile(
    'bad.yaml',
    'platform: local\nsource: {}\ntarget: { handle: x, version: abc }\n',
  );
  const res = await pgshift(['rehearse', '-f', plan, '--wait'], NOWHERE);
  expect(res.code).toBe(2);
  expect(res.stderr).toMatch(/source\.handle/);
  expect(res.stderr).toMatch(/target\.version/);
});

test('a missing plan file and a missing -f exit 2', async () => {
  expect((await pgshift(['rehearse', '-f', join(dir, 'nope.yaml')], NOWHERE)).code).toBe(2);
  expect((await pgshift(['rehearse'], NOWHERE)).code).toBe(2);
});

test("handles that leave no room for the rehearsal's own databases exit 2", async () => {
  // 63 characters ending in "-rehearsal": the copy would be named like the source itself.
  const handle = `${'a'.repeat(53)}-rehearsal`;
  const plan = await planFile(
    'long.yaml',
    `platform: local\nsource: { handle: ${handle} }\ntarget: { handle: b, version: '17' }\n`,
  );
  const res = await pgshift(['rehearse', '-f', plan], NOWHERE);
  expect(res.code).toBe(2);
  expect(res.stderr).toMatch(/cannot be rehearsed: .*like the plan's source/);
});

test('a started rehearsal prints its id; a second one is refused while it runs; status, list and signals know it', async () => {
  // No worker polls the `pgshift` queue of the test server: the rehearsal stays at its start.
  const id = uniqueWorkflowId('cli-rehearsal');
  const plan = await planFile(
    'ok.yaml',
    "platform: local\nsource: { handle: shop-pg14 }\ntarget: { handle: shop-pg17, version: '17' }\n",
  );
  const started = await pgshift(['rehearse', '-f', plan, '--id', id, '--json']);
  try {
    expect(started.code).toBe(0);
    expect(JSON.parse(started.stdout)).toMatchObject({ rehearsalId: id });
    expect(started.stderr).toContain(`Started rehearsal ${id}`);
    const description = await client.workflow.getHandle(id).describe();
    expect(description.type).toBe('rehearsalWorkflow');

    const again = await pgshift(['rehearse', '-f', plan, '--id', id]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already running/);

    const status = await pgshift(['status', id, '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ workflowId: id, execution: 'RUNNING' });

    // `list` names it a rehearsal (the server's list is eventually consistent: it may take a moment).
    let listed: { id: string; kind: string } | undefined;
    for (let i = 0; i < 40 && !listed; i++) {
      const list = await pgshift(['list', '--json']);
      expect(list.code).toBe(0);
      listed = (JSON.parse(list.stdout) as { id: string; kind: string }[]).find((r) => r.id === id);
      if (!listed) await new Promise((r) => setTimeout(r, 250));
    }
    expect(listed?.kind).toBe('rehearsal');

    const abort = await pgshift(['abort', id]);
    expect(abort.code).toBe(2);
    expect(abort.stderr).toMatch(/it is a rehearsal/);
    const history = await client.workflow.getHandle(id).fetchHistory();
    expect(history.events?.some((e) => e.workflowExecutionSignaledEventAttributes)).toBe(false);
  } finally {
    await client.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => undefined);
  }
});
