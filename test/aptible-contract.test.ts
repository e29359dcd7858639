// The Aptible platform, command by command: the real workflow, activities and worker drive the `aptible` CLI
// through PATH, and a faithful fake (test/fake-aptible) answers with the real CLI's shapes while real
// PostgreSQL clusters stand behind its databases and tunnels, so the real pg_dumpall/psql run end to end.
// Each test asserts the exact commands, in order, that a migration typed.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { createAptiblePlatform, type AptiblePlatform } from '../src/platform/aptible';
import { startMigration } from '../src/client/start';
import { startRehearsal } from '../src/client/rehearse';
import type { RehearsalReport } from '../src/workflows/rehearsal-definitions';
import { validatePlan } from '../src/plan/load';
import type { Plan, PlanInput } from '../src/plan/schema';
import { loadSampleData } from '../src/demo/sample-data';
import { withClient } from '../src/pg/connection';
import { redact } from '../src/lib/redact';
import type { MigrationSummary } from '../src/workflows/definitions';
import { createFakeAptible, type FakeAptible } from './fake-aptible/fixture';
import { historyText } from './helpers/history';
import { connectTestClient, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';
import { type RunningWorker, startProjectWorker } from './helpers/worker';

const ENV = 'test-environment';

let fake: FakeAptible;
let platform: AptiblePlatform;
let client: Client;
let worker: RunningWorker;
let workDir: string;
let taskQueue: string;

beforeAll(async () => {
  fake = await createFakeAptible();
  await fake.addEnvironment(ENV);
  // The worker finds `aptible` on PATH, logged in through APTIBLE_ACCESS_TOKEN, as a user's would.
  platform = createAptiblePlatform({ env: { ...process.env, ...fake.env } });
  workDir = await mkdtemp(join(tmpdir(), 'pgshift-aptible-work-'));
  client = await connectTestClient();
  taskQueue = uniqueTaskQueue('aptible');
  worker = await startProjectWorker({ taskQueue, platforms: { aptible: platform }, workDir });
});

afterAll(async () => {
  await worker?.stop();
  await client?.connection.close();
  await fake?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function createSource(handle: string, sql?: string): Promise<void> {
  const res = await fake.run(
    ['db:create', handle, '--type', 'postgresql', '--version', '14', '--environment', ENV],
    { format: 'json' },
  );
  expect(res.exitCode).toBe(0);
  const conn = await platform.connect(handle, ENV);
  try {
    if (sql) await withClient(conn, conn.database, (c) => c.query(sql));
    else await loadSampleData(conn);
  } finally {
    await conn.close();
  }
}

function plan(source: string, target: string, app: string, extra: Partial<PlanInput> = {}): Plan {
  return validatePlan({
    platform: 'aptible',
    source: { handle: source, environment: ENV },
    target: { handle: target, version: '17', environment: ENV, diskSize: 100 },
    services: [{ app, service: 'cmd' }],
    config: [{ app, variable: 'DB_URL' }],
    cutover: { confirm: false },
    cleanup: { vacuumAnalyze: true, deprovisionSource: { mode: 'never' } },
    ...extra,
  });
}

/** Runs a migration and returns its outcome and the commands it typed (those after `since`). */
async function migrate(
  p: Plan,
): Promise<{ id: string; result?: MigrationSummary; error?: Error; commands: string[] }> {
  const since = fake.invocations().length;
  const id = uniqueWorkflowId('aptible');
  await startMigration(client, p, { id, taskQueue });
  let result: MigrationSummary | undefined;
  let error: Error | undefined;
  try {
    result = await client.workflow.getHandle(id).result();
  } catch (err) {
    error = err as Error;
  }
  return { id, result, error, commands: fake.commands().slice(since) };
}

const e = `--environment ${ENV}`;
const tunnel = (h: string) => `db:tunnel ${h} ${e}`;
const lookup = `db:list ${e}`;

/**
 * The guide's first steps, identical in every migration of `source` to `target` for `app`: preflight,
 * then the schema test and the target's creation, which run side by side (their commands interleave),
 * then the scale-down.
 */
function guideStart(source: string, target: string, app: string) {
  const scratch = `${target}-schema-test`;
  return {
    // Preflight: the source exists, can be reached and dumped; the version exists; the target is free;
    // the services and config exist (the guide: `APTIBLE_OUTPUT_FORMAT=json aptible apps`).
    preflight: [
      lookup,
      tunnel(source),
      'db:versions',
      lookup,
      `apps ${e}`,
      `db:url ${source} ${e}`,
      `config --app ${app} ${e}`,
    ],
    // Test the schema: a scratch database of the target version, removed at once.
    schemaTest: [
      tunnel(source),
      lookup,
      `db:create ${scratch} --type postgresql --version 17 ${e} --disk-size 100 --container-size 4096`,
      tunnel(scratch),
      `db:deprovision ${scratch} ${e}`,
    ],
    // Create the target, exactly the guide's command.
    createTarget: [
      lookup,
      `db:create ${target} --type postgresql --version 17 ${e} --disk-size 100 --container-size 4096`,
    ],
    scaleDown: `apps:scale --app ${app} ${e} cmd --container-count 0`,
  };
}

/** Whether `seq` is `a` and `b` merged, each in its own order. */
function isInterleaving(seq: string[], a: string[], b: string[]): boolean {
  if (seq.length !== a.length + b.length) return false;
  const memo = new Map<string, boolean>();
  const from = (i: number, j: number): boolean => {
    if (i + j === seq.length) return true;
    const key = `${i},${j}`;
    if (!memo.has(key)) {
      const next = seq[i + j];
      memo.set(
        key,
        (i < a.length && a[i] === next && from(i + 1, j)) ||
          (j < b.length && b[j] === next && from(i, j + 1)),
      );
    }
    return memo.get(key) as boolean;
  };
  return from(0, 0);
}

/** `commands` are the guide's first steps (the side-by-side ones in any interleaving), then `rest`. */
function expectGuideCommands(
  commands: string[],
  [source, target, app]: [string, string, string],
  rest: string[],
): void {
  const g = guideStart(source, target, app);
  const side = commands.slice(
    g.preflight.length,
    g.preflight.length + g.schemaTest.length + g.createTarget.length,
  );
  // On a mismatch, the sequential order is what the diff shows.
  const merged = isInterleaving(side, g.schemaTest, g.createTarget)
    ? side
    : [...g.schemaTest, ...g.createTarget];
  expect(commands).toEqual([...g.preflight, ...merged, g.scaleDown, ...rest]);
}

test('a successful migration types every command of the guide, in order, with its flags', async () => {
  await createSource('source-db');
  const sourceUrl = await platform.databaseUrl('source-db', ENV);
  await fake.addApp(ENV, 'my-app', { cmd: { containerCount: 2 } }, { DB_URL: sourceUrl });

  const { id, result, error, commands } = await migrate(
    plan('source-db', 'dump-test', 'my-app', {
      cleanup: { vacuumAnalyze: true, deprovisionSource: { mode: 'delay', delay: '1s' } },
    }),
  );
  expect(error).toBeUndefined();
  expect(result?.phase).toBe('completed');
  expect(result?.verification?.ok).toBe(true);

  expectGuideCommands(
    commands,
    ['source-db', 'dump-test', 'my-app'],
    [
      tunnel('source-db'), // dump
      tunnel('dump-test'), // restore
      tunnel('source-db'), // ...then the properties of postgres and template1, read from the source
      tunnel('source-db'), // verify
      tunnel('dump-test'),
      `db:url dump-test ${e}`, // update services: the target's own URL...
      `config:set --app my-app ${e} DB_URL=${redact(await platform.databaseUrl('dump-test', ENV))}`,
      `apps:scale --app my-app ${e} cmd --container-count 2`, // scale back up to the recorded count
      tunnel('dump-test'), // vacuum analyze
      `db:deprovision source-db ${e}`, // the guide's "Deprovision", here after a durable 1s delay
    ],
  );

  // ...never a tunnel's localhost URL.
  const targetUrl = await platform.databaseUrl('dump-test', ENV);
  expect(fake.app(ENV, 'my-app').config.DB_URL).toBe(targetUrl);
  expect(fake.app(ENV, 'my-app').services.cmd.containerCount).toBe(2);
  // Every tunnel was closed with its step.
  expect(fake.invocations().filter((i) => i.argv[0] === 'db:tunnel' && i.exitCode === undefined)).toEqual([]);
  // The source is gone, as the plan asked, and so is the scratch database; their final backups are kept,
  // as Aptible keeps them (the guide purges only a failed target's).
  expect(fake.databases().map((d) => d.handle)).toEqual(['dump-test']);
  expect(await readdir(join(workDir, 'dumps')).catch(() => [])).toEqual([]);

  // Nothing the CLI printed with a password (tunnel lines, db:url, db:list, db:create) is in the history.
  const history = historyText(await client.workflow.getHandle(id).fetchHistory());
  expect(history).toContain('"handle":"dump-test"'); // decoded payloads: the search below sees them
  for (const url of [sourceUrl, targetUrl]) expect(history).not.toContain(new URL(url).password);
  expect(history).not.toMatch(/postgres(ql)?:\/\/[^\s"@]*:[^\s"@*]+@/);
});

test('a failure before the point of no return scales back up, deprovisions the target and purges only its backups', async () => {
  await createSource(
    'bad-db',
    `-- The target rejects rows the source accepted; the schema alone restores, so only the real restore fails.
     CREATE FUNCTION accepts_qty(q int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
     BEGIN RETURN current_setting('server_version_num')::int < 170000 OR q <= 100; END $$;
     CREATE TABLE stock (sku text PRIMARY KEY, qty int CHECK (accepts_qty(qty)));
     INSERT INTO stock VALUES ('small', 5), ('large', 500);`,
  );
  await fake.addApp(
    ENV,
    'bad-app',
    { cmd: { containerCount: 3 } },
    {
      DB_URL: await platform.databaseUrl('bad-db', ENV),
    },
  );
  // Someone else's final backup in the same environment: never ours to purge.
  expect((await fake.run(['db:create', 'old-db', '--environment', ENV], { format: 'json' })).exitCode).toBe(
    0,
  );
  expect((await fake.run(['db:deprovision', 'old-db', '--environment', ENV])).exitCode).toBe(0);
  const othersBackup = fake.orphaned().find((b) => b.databaseHandle === 'old-db');
  expect(othersBackup).toBeDefined();

  const { error, commands } = await migrate(plan('bad-db', 'bad-target', 'bad-app'));
  expect(error).toBeInstanceOf(WorkflowFailedError);
  expect(String((error as WorkflowFailedError).cause?.message)).toMatch(/rolled back.*restore/i);

  const targetsBackup = fake.orphaned().find((b) => b.databaseHandle === 'bad-target');
  expect(targetsBackup).toBeUndefined(); // purged
  expectGuideCommands(
    commands.slice(0, -2),
    ['bad-db', 'bad-target', 'bad-app'],
    [
      tunnel('bad-db'), // dump
      tunnel('bad-target'), // restore: unexpected errors, not retried
      // Compensation: services back at their recorded count, the target deprovisioned...
      `apps:scale --app bad-app ${e} cmd --container-count 3`,
      lookup,
      `db:deprovision bad-target ${e}`,
    ],
  );
  // ...and its final backup, found among the orphaned ones, purged: that one only.
  const [list, purge] = commands.slice(-2);
  expect(list).toBe(`backup:orphaned ${e}`);
  expect(purge).toMatch(/^backup:purge \d+$/);
  expect(purge).not.toBe(`backup:purge ${othersBackup?.id}`);
  expect(fake.orphaned().map((b) => b.databaseHandle)).toContain('old-db');
  expect(fake.app(ENV, 'bad-app').services.cmd.containerCount).toBe(3);
  expect(fake.app(ENV, 'bad-app').config.DB_URL).toBe(await platform.databaseUrl('bad-db', ENV));
  expect(fake.databases().map((d) => d.handle)).not.toContain('bad-target');
});

test('a failure after the point of no return (vacuum) is reported: no deprovision, no purge', async () => {
  await createSource(
    'late-db',
    'CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000);',
  );
  await fake.addApp(
    ENV,
    'late-app',
    { cmd: { containerCount: 1 } },
    {
      DB_URL: await platform.databaseUrl('late-db', ENV),
    },
  );
  // The target's tunnels for the restore and the verification work; every later one crashes.
  await fake.setFaults([
    {
      command: 'db:tunnel',
      handle: 'late-target',
      skip: 2,
      action: { type: 'fail', stderr: 'Tunnel crashed (255)' },
    },
  ]);
  try {
    const { result, error, commands } = await migrate(plan('late-db', 'late-target', 'late-app'));
    expect(error).toBeUndefined();
    expect(result?.phase).toBe('completed-with-errors');
    expect(result?.errors.join('\n')).toMatch(
      /Vacuum and analyze.*failed.*Tunnel crashed.*VACUUM ANALYZE .*by hand/s,
    );
    expectGuideCommands(
      commands,
      ['late-db', 'late-target', 'late-app'],
      [
        tunnel('late-db'),
        tunnel('late-target'),
        tunnel('late-db'),
        tunnel('late-db'),
        tunnel('late-target'),
        `db:url late-target ${e}`,
        `config:set --app late-app ${e} DB_URL=${redact(await platform.databaseUrl('late-target', ENV))}`,
        `apps:scale --app late-app ${e} cmd --container-count 1`,
        // Vacuum: a crashed tunnel is retried (three attempts), then reported.
        tunnel('late-target'),
        tunnel('late-target'),
        tunnel('late-target'),
      ],
    );
    expect(fake.databases().map((d) => d.handle)).toContain('late-target');
  } finally {
    await fake.setFaults([]);
  }
});

test('a tunnel that dies mid-dump is replaced by a new one and the copy is still complete', async () => {
  await createSource('flaky-db');
  await fake.addApp(
    ENV,
    'flaky-app',
    { cmd: { containerCount: 1 } },
    {
      DB_URL: await platform.databaseUrl('flaky-db', ENV),
    },
  );
  // Preflight and the schema test each open one tunnel to the source; the third is the dump's.
  await fake.setFaults([
    {
      command: 'db:tunnel',
      handle: 'flaky-db',
      skip: 2,
      times: 1,
      action: { type: 'dieAfterBytes', bytes: 20_000 },
    },
  ]);
  try {
    const { result, error, commands } = await migrate(plan('flaky-db', 'flaky-target', 'flaky-app'));
    expect(error).toBeUndefined();
    expect(result?.phase).toBe('completed');
    expect(result?.dumpBytes).toBeGreaterThan(20_000);
    // Complete: every table and sequence of both databases agrees.
    expect(result?.verification?.ok).toBe(true);
    expect(result?.verification?.databases.map((d) => d.name).sort()).toEqual([
      'db',
      'inventory',
      'postgres',
      'template1',
    ]);
    expectGuideCommands(
      commands,
      ['flaky-db', 'flaky-target', 'flaky-app'],
      [
        tunnel('flaky-db'), // the dump's first tunnel: dies after 20 kB
        tunnel('flaky-db'), // the retry's
        tunnel('flaky-target'),
        tunnel('flaky-db'),
        tunnel('flaky-db'),
        tunnel('flaky-target'),
        `db:url flaky-target ${e}`,
        `config:set --app flaky-app ${e} DB_URL=${redact(await platform.databaseUrl('flaky-target', ENV))}`,
        `apps:scale --app flaky-app ${e} cmd --container-count 1`,
        tunnel('flaky-target'),
      ],
    );
  } finally {
    await fake.setFaults([]);
  }
});

test('a rehearsal restores the latest backup, dumps it twice, and removes all it made, command by command', async () => {
  expect((await fake.run(['db:backup', 'flaky-db', '--environment', ENV])).exitCode).toBe(0);
  const since = fake.invocations().length;
  const id = uniqueWorkflowId('aptible-rehearsal');
  await startRehearsal(client, plan('flaky-db', 'rh-target', 'flaky-app'), { id, taskQueue });
  const report = (await client.workflow.getHandle(id).result()) as RehearsalReport;
  const commands = fake.commands().slice(since);
  expect(report.ok).toBe(true);
  expect(report.dumps.timedMs).toBeGreaterThan(0);
  expect(report.estimate.totalMs).toBeGreaterThan(report.dumps.timedMs);
  expect(report.restore.unexpectedErrors).toEqual([]);

  const latest = Math.max(
    ...fake
      .backups()
      .filter((b) => b.databaseHandle === 'flaky-db')
      .map((b) => b.id),
  );
  const [copy, target] = ['flaky-db-rehearsal', 'rh-target-rehearsal'];
  const purges = commands.filter((c) => c.startsWith('backup:purge '));
  expect(commands).toEqual([
    `backup:list flaky-db ${e}`, // the latest backup of the source
    lookup, // production's container size
    lookup, // the copy's handle is free
    `backup:restore ${latest} --handle ${copy} --container-size 1024 ${e}`, // the guide's command
    tunnel(copy), // the first dump only warms the restored disk...
    tunnel(copy), // ...the second is the estimate
    lookup,
    `db:create ${target} --type postgresql --version 17 ${e} --disk-size 100 --container-size 4096`,
    tunnel(target), // restore
    tunnel(copy), // ...and the properties of postgres and template1
    tunnel(copy), // verify
    tunnel(target),
    // Cleanup: both databases it made, and their final backups only.
    lookup,
    `db:deprovision ${target} ${e}`,
    `backup:orphaned ${e}`,
    purges[0],
    lookup,
    `db:deprovision ${copy} ${e}`,
    `backup:orphaned ${e}`,
    purges[1],
  ]);
  expect(purges).toHaveLength(2);
  const remaining = [
    ...fake.databases().map((d) => d.handle),
    ...fake.orphaned().map((b) => b.databaseHandle),
  ];
  expect(remaining).not.toContain(copy);
  expect(remaining).not.toContain(target);
  // Production's backup is kept; its services were never scaled (no apps:scale above).
  expect(fake.backups().some((b) => b.id === latest)).toBe(true);
});

// Last: the fixture's token stays expired.
test('not logged in: the migration stops in preflight, before any downtime, saying how to log in', async () => {
  await fake.addApp(ENV, 'idle-app', { cmd: { containerCount: 1 } });
  await fake.expireToken();
  const { error, commands } = await migrate(plan('flaky-db', 'never-made', 'idle-app', { config: [] }));
  expect(error).toBeInstanceOf(WorkflowFailedError);
  expect(String((error as WorkflowFailedError).cause?.message)).toMatch(
    /not logged in.*aptible login.*APTIBLE_ACCESS_TOKEN/,
  );
  expect(commands).toEqual([lookup]); // non-retryable: asked once
  expect(fake.app(ENV, 'idle-app').services.cmd.containerCount).toBe(1);
});
