// The fake `aptible` (test/fake-aptible) against the real CLI's contract (/tmp/aptible-cli-contract.md,
// aptible/aptible-cli@04255732): run as a subprocess, found on PATH, with real clusters behind it.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { type FakeAptible, createFakeAptible, fakeToken, trailingJson } from './fake-aptible/fixture';

const run = promisify(execFile);
const ENV = 'prod';
const NOT_LOGGED_IN = 'Could not read token: please run aptible login or set APTIBLE_ACCESS_TOKEN\n';
const TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/;

let fake: FakeAptible;
let scratch: string;

beforeAll(async () => {
  fake = await createFakeAptible();
  scratch = await mkdtemp(join(tmpdir(), 'fake-aptible-test-'));
  await fake.addEnvironment(ENV);
  await fake.addEnvironment('staging', { retainFinalBackups: false });
  await fake.addApp(
    ENV,
    'web',
    { web: { containerCount: 2 }, worker: { containerCount: 1, containerSize: 512 } },
    { DB_URL: 'postgresql://aptible:old-secret@db.example:5432/db', GREETING: 'two words' },
  );
});

afterAll(async () => {
  await fake?.destroy();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function query<T extends Record<string, unknown>>(url: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

/** pg_dumpall as pgshift runs it: the password only in PGPASSWORD (pg_dumpall does not pass a URL's to pg_dump). */
function pgDumpall(url: string, file: string) {
  const u = new URL(url);
  const conn = `host=${u.hostname} port=${u.port} user=${decodeURIComponent(u.username)} dbname=${u.pathname.slice(1)}`;
  return run('pg_dumpall', ['-w', '-d', conn, '-f', file], {
    env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) },
    timeout: 120_000,
  });
}

describe('authentication, arguments and errors', () => {
  test('not logged in: the exact message on stderr, exit 1', async () => {
    const r = await fake.run(['db:list'], { env: { APTIBLE_ACCESS_TOKEN: undefined } });
    expect(r).toMatchObject({ exitCode: 1, stdout: '', stderr: NOT_LOGGED_IN });
  });

  test('a token in tokens.json logs in; an expired token is refused by the "API"', async () => {
    const configDir = join(scratch, 'config');
    const other = fakeToken('other@example.com');
    await run('mkdir', ['-p', configDir]);
    await writeFile(join(configDir, 'tokens.json'), JSON.stringify({ 'https://auth.aptible.com': other }));
    const env = { APTIBLE_ACCESS_TOKEN: undefined, APTIBLE_CONFIG_PATH: configDir };
    expect((await fake.run(['apps'], { env })).exitCode).toBe(0);
    await fake.expireToken(other);
    const r = await fake.run(['apps'], { env });
    expect(r).toMatchObject({
      exitCode: 1,
      stdout: '',
      stderr: 'API authentication error: please run aptible login\n',
    });
  });

  test('version needs no token', async () => {
    // CI unset: like the real one (agent.rb), the fake names the CI it runs under.
    const r = await fake.run(['version'], { env: { APTIBLE_ACCESS_TOKEN: undefined, CI: undefined } });
    expect(r).toMatchObject({ exitCode: 0, stdout: 'aptible-cli v0.26.6\n', stderr: '' });
    const json = await fake.run(['version'], { format: 'json', env: { CI: undefined } });
    expect(JSON.parse(json.stdout)).toEqual({ version: 'aptible-cli v0.26.6' });
    const inCi = await fake.run(['version'], { env: { CI: 'true' } });
    expect(inCi.stdout).toMatch(/^aptible-cli v0\.26\.6 \(.+\)\n$/);
  });

  test("Thor's errors: unknown command, wrong arity, bad number", async () => {
    expect(await fake.run(['foo'])).toMatchObject({ exitCode: 1, stderr: 'Could not find command "foo".\n' });
    expect(await fake.run(['db:url'])).toMatchObject({
      exitCode: 1,
      stderr: 'ERROR: "aptible db:url" was called with no arguments\nUsage: "aptible db:url HANDLE"\n',
    });
    expect(await fake.run(['db:url', 'a', '--bogus'])).toMatchObject({
      exitCode: 1,
      stderr:
        'ERROR: "aptible db:url" was called with arguments ["a", "--bogus"]\nUsage: "aptible db:url HANDLE"\n',
    });
    expect(
      await fake.run(['apps:scale', 'web', '--app', 'web', '--environment', ENV, '--container-count', 'abc']),
    ).toMatchObject({ exitCode: 1, stderr: `Expected numeric value for '--container-count'; got "abc"\n` });
  });

  test('resolution errors have the real texts', async () => {
    expect(await fake.run(['db:url', 'nope', '--environment', ENV])).toMatchObject({
      exitCode: 1,
      stdout: '',
      stderr: 'Could not find database nope\n',
    });
    expect(await fake.run(['db:url', 'nope', '--env=elsewhere'])).toMatchObject({
      exitCode: 1,
      stderr: 'Could not find environment elsewhere\n',
    });
    expect(await fake.run(['db:list', '--environment', 'elsewhere'])).toMatchObject({
      exitCode: 1,
      stderr: 'Specified account does not exist\n',
    });
    expect(await fake.run(['config', '--app', 'nope', '--environment', ENV])).toMatchObject({
      exitCode: 1,
      stderr: `Could not find app nope in environment ${ENV} (options provided via CLI arguments)\n`,
    });
    expect(
      await fake.run(['db:create', 'x', '--type', 'postgresql', '--version', '9.4', '--env', ENV]),
    ).toMatchObject({
      exitCode: 1,
      stderr: expect.stringMatching(
        /^No Database Image of type postgresql with version 9\.4, valid versions: \d+( \d+)*\n$/,
      ),
    });
  });

  test('without FAKE_APTIBLE_HOME the fake refuses to run', async () => {
    const r = await fake.run(['version'], { env: { FAKE_APTIBLE_HOME: undefined } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/FAKE_APTIBLE_HOME/);
  });
});

describe('apps and configuration', () => {
  test('apps: JSON and text shapes', async () => {
    const r = await fake.run(['apps', '--environment', ENV], { format: 'json' });
    expect(r.exitCode).toBe(0);
    const apps = JSON.parse(r.stdout) as unknown[];
    expect(apps).toEqual([
      {
        id: expect.any(Number),
        handle: 'web',
        created_at: expect.stringMatching(TIME),
        status: 'provisioned',
        git_remote: `git@beta.aptible.com:${ENV}/web.git`,
        services: [
          {
            id: expect.any(Number),
            service: 'web',
            created_at: expect.stringMatching(TIME),
            command: 'CMD',
            container_count: 2,
            container_size: 1024,
            container_profile: 'm',
          },
          expect.objectContaining({ service: 'worker', container_count: 1, container_size: 512 }),
        ],
        environment: { id: expect.any(Number), handle: ENV, created_at: expect.stringMatching(TIME) },
      },
    ]);
    expect((await fake.run(['apps'])).stdout).toBe(`=== ${ENV}\nweb\n`);
    expect((await fake.run(['apps', '--env', 'staging'])).stdout).toBe('\n');
  });

  test('apps:scale changes the count; an unknown service is refused with the valid types', async () => {
    const r = await fake.run(
      ['apps:scale', '--app', 'web', 'web', '--environment', ENV, '--container-count', '0'],
      {
        format: 'json',
      },
    );
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    expect(fake.app(ENV, 'web').services.web.containerCount).toBe(0);
    expect(
      await fake.run(['apps:scale', 'cmd', '--app', 'web', '--environment', ENV, '--container-count', '1']),
    ).toMatchObject({
      exitCode: 1,
      stderr: 'Service with type cmd does not exist for app web. Valid types: web, worker.\n',
    });
    expect(await fake.run(['apps:scale', 'web', '--app', 'web', '--environment', ENV])).toMatchObject({
      exitCode: 1,
      stderr: 'Provide at least --container-count, --container-size, or --container-profile\n',
    });
  });

  test('config and config:set', async () => {
    const before = await fake.run(['config', '--app', 'web', '--environment', ENV], { format: 'json' });
    expect(JSON.parse(before.stdout)).toEqual([
      {
        key: 'DB_URL',
        value: 'postgresql://aptible:old-secret@db.example:5432/db',
        shell_export: 'DB_URL=postgresql://aptible:old-secret@db.example:5432/db',
      },
      { key: 'GREETING', value: 'two words', shell_export: 'GREETING=two\\ words' },
    ]);
    const set = await fake.run(
      ['config:set', '--app', 'web', '--environment', ENV, 'DB_URL=postgresql://aptible:new-secret@h:1/db'],
      { format: 'json' },
    );
    expect(set.exitCode).toBe(0);
    expect(set.stderr).toBe('Updating configuration and restarting app...\n');
    expect(fake.app(ENV, 'web').config.DB_URL).toBe('postgresql://aptible:new-secret@h:1/db');
    const text = await fake.run(['config', '--app', 'web', '--environment', ENV]);
    expect(text.stdout).toBe('DB_URL=postgresql://aptible:new-secret@h:1/db\nGREETING=two\\ words\n');
    expect(await fake.run(['config:set', '--app', 'web', '--environment', ENV, '--bogus'])).toMatchObject({
      exitCode: 1,
      stderr: 'Invalid argument: --bogus\n',
    });
  });
});

describe('databases, tunnels and backups (real clusters)', () => {
  const handle = 'src';
  let version: string;
  let url: string;

  beforeAll(async () => {
    const versions = JSON.parse((await fake.run(['db:versions'], { format: 'json' })).stdout) as Array<{
      version: string;
    }>;
    // The system client tools (pg_dumpall, psql) are Debian's 15: the source must not be newer.
    version = versions.map((v) => v.version).find((v) => Number(v) <= 15) as string;
  });

  test('db:versions: a flat JSON list; text groups by type', async () => {
    const r = await fake.run(['db:versions'], { format: 'json' });
    const images = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) {
      expect(image).toEqual({
        type: 'postgresql',
        version: expect.stringMatching(/^\d+$/),
        default: expect.any(Boolean),
        description: `PostgreSQL ${image.version as string}`,
        docker_repo: `aptible/postgresql:${image.version as string}`,
      });
    }
    const text = await fake.run(['db:versions']);
    expect(text.stdout).toBe(`=== postgresql\n${images.map((i) => `${i.version as string}\n`).join('')}`);
  });

  test('db:create: operation logs, then the database as the trailing JSON document', async () => {
    const r = await fake.run(
      [
        'db:create',
        handle,
        '--type',
        'postgresql',
        '--version',
        version,
        '--environment',
        ENV,
        '--disk-size',
        '1',
        '--container-size=512',
      ],
      { format: 'json' },
    );
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^INFO -- : Starting Database provision operation with ID: \d+\n/);
    expect(() => JSON.parse(r.stdout)).toThrow();
    const db = trailingJson<Record<string, unknown>>(r.stdout);
    url = db.connection_url as string;
    expect(url).toMatch(/^postgresql:\/\/aptible:[^@]+@127\.0\.0\.1:\d+\/db$/);
    expect(db).toEqual({
      id: expect.any(Number),
      handle,
      created_at: expect.stringMatching(TIME),
      type: 'postgresql',
      version,
      status: 'provisioned',
      connection_url: url,
      credentials: [{ type: 'postgresql', connection_url: url, default: true }],
      environment: { id: expect.any(Number), handle: ENV, created_at: expect.stringMatching(TIME) },
      disk_type: 'gp3',
      disk_size: 1,
      disk_modification_progress: null,
      disk_modification_status: null,
      disk_provisioned_iops: 3000,
      container_size: 512,
      container_profile: 'm',
    });
    await query(
      url,
      'CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 20000) g',
    );

    const again = await fake.run(['db:create', handle, '--environment', ENV], { format: 'json' });
    expect(again).toMatchObject({
      exitCode: 1,
      stdout: '',
      stderr: 'An error occurred: Handle has already been taken\n',
    });
  });

  test('db:list and db:url', async () => {
    const list = JSON.parse(
      (await fake.run(['db:list', '--environment', ENV], { format: 'json' })).stdout,
    ) as Array<Record<string, unknown>>;
    expect(list).toEqual([
      expect.objectContaining({ handle, version, status: 'provisioned', connection_url: url }),
    ]);
    expect((await fake.run(['db:list'])).stdout).toBe(`=== ${ENV}\n${handle}\n`);
    expect(await fake.run(['db:url', handle, '--environment', ENV])).toMatchObject({
      exitCode: 0,
      stdout: `${url}\n`,
      stderr: '',
    });
    const json = await fake.run(['db:url', handle], { format: 'json' });
    expect(JSON.parse(json.stdout)).toEqual({ connection_url: url });
  });

  test('db:tunnel prints the real lines, proxies psql, and closes on SIGINT', async () => {
    const tunnel = await fake.tunnel(handle, ENV);
    const password = new URL(url).password;
    expect(tunnel.stderr().split('\n')).toEqual([
      `Creating postgresql tunnel to ${handle}...`,
      'Use --type TYPE to specify a tunnel type',
      `Valid types for ${handle}: postgresql`,
      `Connect at postgresql://aptible:${password}@localhost:${tunnel.port}/db`,
      'Or, use the following arguments:',
      '* Host: localhost',
      `* Port: ${tunnel.port}`,
      '* Username: aptible',
      `* Password: ${password}`,
      '* Database: db',
      'Connected. Ctrl-C to close connection.',
      '',
    ]);
    const { stdout } = await run('psql', [tunnel.url, '-Atc', 'SELECT count(*) FROM big']);
    expect(stdout).toBe('20000\n');
    expect(await tunnel.close()).toEqual({ exitCode: 0, signal: null });
    expect(tunnel.stderr().endsWith('Connected. Ctrl-C to close connection.\nClosing tunnel\n')).toBe(true);
    expect(tunnel.stdout()).toBe('');
  });

  test('a dieAfterBytes fault cuts a running pg_dumpall through the tunnel', async () => {
    await fake.setFaults([
      { command: 'db:tunnel', handle, times: 1, action: { type: 'dieAfterBytes', bytes: 200_000 } },
    ]);
    const tunnel = await fake.tunnel(handle, ENV);
    const dumpFile = join(scratch, 'cut.sql');
    const dump = await pgDumpall(tunnel.url, dumpFile).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(dump.code).not.toBe(0);
    expect(dump.stderr).toMatch(/connection|closed|terminated/i);
    expect(await tunnel.exited).toEqual({ exitCode: 1, signal: null });
    expect(tunnel.stderr().endsWith('Connected. Ctrl-C to close connection.\nTunnel crashed (255)\n')).toBe(
      true,
    );
    expect((await readFile(dumpFile)).length).toBeLessThanOrEqual(200_000);

    // times: 1 — the next tunnel is healthy and the whole dump goes through.
    const second = await fake.tunnel(handle, ENV);
    try {
      await pgDumpall(second.url, dumpFile);
      expect((await readFile(dumpFile, 'utf8')).length).toBeGreaterThan(1_000_000);
    } finally {
      await second.close();
      await fake.setFaults([]);
    }
  });

  test('a fail fault fails the command before it does anything; skip lets invocations through', async () => {
    await fake.setFaults([
      { command: 'db:url', skip: 1, times: 1, action: { type: 'fail', stderr: 'boom', exitCode: 3 } },
    ]);
    expect((await fake.run(['db:url', handle])).exitCode).toBe(0);
    expect(await fake.run(['db:url', handle])).toMatchObject({ exitCode: 3, stdout: '', stderr: 'boom\n' });
    expect((await fake.run(['db:url', handle])).exitCode).toBe(0);
    await fake.setFaults([]);
  });

  let restoredUrl: string;

  test('db:backup, backup:list, backup:restore: a connectable database with the data', async () => {
    const backup = await fake.run(['db:backup', handle, '--environment', ENV], { format: 'json' });
    expect(backup).toMatchObject({ exitCode: 0, stderr: `Backing up ${handle}...\n` });
    expect(() => trailingJson(backup.stdout)).toThrow();

    const list = await fake.run(['backup:list', handle, '--environment', ENV], { format: 'json' });
    const backups = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    expect(backups).toEqual([
      {
        id: expect.any(Number),
        description: expect.stringMatching(
          /^\d+: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, us-east-1, manual, deploy@example\.com$/,
        ),
        created_at: expect.stringMatching(TIME),
        region: 'us-east-1',
        size: 1,
        manual: true,
        created_from_operation: {
          id: expect.any(Number),
          status: 'succeeded',
          user_email: 'deploy@example.com',
          created_at: expect.stringMatching(TIME),
        },
      },
    ]);
    const id = String(backups[0].id);
    expect((await fake.run(['backup:list', handle])).stdout).toBe(`${backups[0].description as string}\n`);

    const restore = await fake.run(
      ['backup:restore', id, '--handle', 'restored', '--container-size', '512', '--environment', ENV],
      { format: 'json' },
    );
    expect(restore.stderr).toBe('Restoring backup into restored\n');
    expect(restore.exitCode).toBe(0);
    const db = trailingJson<Record<string, unknown>>(restore.stdout);
    expect(db).toMatchObject({ handle: 'restored', version, status: 'provisioned', container_size: 512 });
    restoredUrl = db.connection_url as string;
    expect(restoredUrl).not.toBe(url);
    expect(await query(restoredUrl, 'SELECT count(*)::int AS n FROM big')).toEqual([{ n: 20000 }]);

    expect(await fake.run(['backup:restore', '999999', '--handle', 'x'])).toMatchObject({
      exitCode: 1,
      stderr: 'Backup #999999 not found\n',
    });
    expect(await fake.run(['backup:restore', id, '--handle', 'restored'])).toMatchObject({
      exitCode: 1,
      stderr: 'An error occurred: Handle has already been taken\n',
    });
  });

  test('db:deprovision keeps a final backup (orphaned); backup:purge removes it', async () => {
    const gone = await fake.run(['db:deprovision', 'restored', '--environment', ENV]);
    expect(gone).toMatchObject({ exitCode: 0, stderr: 'Deprovisioning restored...\n' });
    expect(await fake.run(['db:url', 'restored', '--environment', ENV])).toMatchObject({
      exitCode: 1,
      stderr: 'Could not find database restored\n',
    });
    await expect(query(restoredUrl, 'SELECT 1')).rejects.toThrow();

    const orphaned = JSON.parse((await fake.run(['backup:orphaned'], { format: 'json' })).stdout) as Array<
      Record<string, unknown>
    >;
    expect(orphaned).toEqual([
      {
        database: {
          id: expect.any(Number),
          handle: 'restored',
          type: 'postgresql',
          deleted_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
          environment: { id: expect.any(Number), handle: ENV, created_at: expect.stringMatching(TIME) },
        },
        id: expect.any(Number),
        description: expect.stringMatching(
          /^\d+: .* UTC, us-east-1, automatic, restored deleted at \d{4}-.*Z$/,
        ),
        created_at: expect.stringMatching(TIME),
        region: 'us-east-1',
        size: 1,
        manual: false,
      },
    ]);
    expect(fake.orphaned().map((b) => b.id)).toEqual([orphaned[0].id]);

    const purge = await fake.run(['backup:purge', String(orphaned[0].id)]);
    expect(purge).toMatchObject({ exitCode: 0, stderr: `Purging backup ${String(orphaned[0].id)}\n` });
    expect(fake.orphaned()).toEqual([]);
    expect((await fake.run(['backup:orphaned'])).stdout).toBe('\n');
    expect(await fake.run(['backup:purge', String(orphaned[0].id)])).toMatchObject({
      exitCode: 1,
      stderr: `Backup #${String(orphaned[0].id)} not found\n`,
    });
  });

  test('an environment that does not retain final backups leaves none', async () => {
    const created = await fake.run([
      'db:create',
      'tmp',
      '--env',
      'staging',
      '--type',
      'postgresql',
      '--version',
      version,
    ]);
    expect(created.exitCode).toBe(0);
    expect((await fake.run(['db:deprovision', 'tmp', '--env', 'staging'])).exitCode).toBe(0);
    expect(fake.orphaned()).toEqual([]);
  });

  test('the invocation log holds every command, with secrets masked', async () => {
    const log = await readFile(join(fake.home, 'invocations.jsonl'), 'utf8');
    for (const secret of [new URL(url).password, new URL(restoredUrl).password, 'new-secret', fake.token]) {
      expect(log).not.toContain(secret);
    }
    expect(fake.commands()).toContain(
      `config:set --app web --environment ${ENV} DB_URL=postgresql://aptible:***@h:1/db`,
    );
    const tunnels = fake.invocations().filter((i) => i.argv[0] === 'db:tunnel');
    expect(tunnels.map((t) => t.exitCode)).toEqual([0, 1, 0]);
    expect(
      fake
        .invocations()
        .every((i) => i.env.APTIBLE_ACCESS_TOKEN === undefined || i.env.APTIBLE_ACCESS_TOKEN === '***'),
    ).toBe(true);
  });
});
