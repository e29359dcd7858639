// The local platform against real PostgreSQL clusters and real processes. Clusters are created once and
// shared by the cases below (each costs seconds and the machine has two cores).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { BadInputError, NotFoundError, PlatformError, TargetExistsError } from '../src/errors';
import { createLocalPlatform, type LocalPlatform } from '../src/platform/local';

const run = promisify(execFile);
const ENV = 'local';
const SYSTEM_CLIENT_BIN = '/usr/lib/postgresql/15/bin';
const REPO = join(__dirname, '..');

let home: string;
let platform: LocalPlatform;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-local-test-'));
  platform = createLocalPlatform({ home, stopGraceMs: 3_000 });
});

afterAll(async () => {
  await platform?.destroy();
  if (home) await rm(home, { recursive: true, force: true });
});

async function query<T extends Record<string, unknown>>(
  url: string,
  sql: string,
  database?: string,
): Promise<T[]> {
  const client = new Client({ connectionString: url, ...(database ? { database } : {}) });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

/** The pid of a backend serving an open connection (its parent is the postmaster). */
async function withBackend<T>(url: string, fn: (backendPid: number) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return await fn(rows[0].pid);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, ...]. */
async function procStat(pid: number): Promise<string[] | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

async function postmasterOf(backendPid: number): Promise<number> {
  return Number((await procStat(backendPid))?.[1]);
}

async function isAlive(pid: number): Promise<boolean> {
  const fields = await procStat(pid);
  return fields !== undefined && fields[0] !== 'Z';
}

async function procUid(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
}

/** Live processes (not zombies) whose environment holds `entry`, e.g. "PGSHIFT_APP=writer". */
async function processesWithEnv(entry: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const environ = await readFile(`/proc/${name}/environ`, 'latin1').catch(() => '');
    if (environ.split('\0').includes(entry) && (await isAlive(Number(name)))) found.push(Number(name));
  }
  return found.sort((a, b) => a - b);
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every file and directory under dir with its permission bits. */
async function modesUnder(dir: string): Promise<Array<{ path: string; mode: number; dir: boolean }>> {
  const found: Array<{ path: string; mode: number; dir: boolean }> = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    found.push({ path, mode: (await stat(path)).mode & 0o777, dir: entry.isDirectory() });
    if (entry.isDirectory()) found.push(...(await modesUnder(path)));
  }
  return found;
}

describe('local databases', () => {
  const createdBy = 'migration-test-1';

  beforeAll(async () => {
    await Promise.all([
      platform.createDatabase({
        handle: 'src14',
        environment: ENV,
        version: '14',
        diskSizeGb: 1,
        containerSizeMb: 512,
        createdBy,
      }),
      platform.createDatabase({
        handle: 'dst17',
        environment: ENV,
        version: '17',
        diskSizeGb: 1,
        containerSizeMb: 512,
        createdBy,
      }),
    ]);
  });

  test('lists the versions installed for the project and on the system', async () => {
    const versions = await platform.listVersions();
    expect(versions).toEqual(expect.arrayContaining(['14', '17']));
    expect(versions).toEqual([...versions].sort((a, b) => Number(a) - Number(b)));
    if (existsSync(join(SYSTEM_CLIENT_BIN, 'initdb'))) expect(versions).toContain('15');
  });

  test.each([
    ['src14', 14],
    ['dst17', 17],
  ])('%s is a real PostgreSQL %i cluster shaped like an Aptible database', async (handle, major) => {
    const conn = await platform.connect(handle, ENV);
    expect(conn).toMatchObject({ host: '127.0.0.1', user: 'aptible', database: 'db' });
    expect(conn.url).toBe(
      `postgresql://aptible:${encodeURIComponent(conn.password)}@127.0.0.1:${conn.port}/db`,
    );
    expect(await platform.databaseUrl(handle, ENV)).toBe(conn.url);

    const [server] = await query<{ num: string; db: string; me: string; superuser: boolean }>(
      conn.url,
      "SELECT current_setting('server_version_num') AS num, current_database() AS db, current_user AS me, " +
        '(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser',
    );
    expect(Math.floor(Number(server.num) / 10000)).toBe(major);
    expect(server).toMatchObject({ db: 'db', me: 'aptible', superuser: true });
    const roles = await query<{ rolname: string }>(conn.url, 'SELECT rolname FROM pg_roles');
    expect(roles.map((r) => r.rolname)).toEqual(expect.arrayContaining(['aptible', 'postgres']));
    const dbs = await query<{ datname: string }>(conn.url, 'SELECT datname FROM pg_database');
    expect(dbs.map((d) => d.datname)).toContain('db');
    const [{ listen }] = await query<{ listen: string }>(
      conn.url,
      "SELECT current_setting('listen_addresses') AS listen",
    );
    expect(listen).toBe('127.0.0.1');

    // Password authentication over TCP, as on Aptible.
    const wrong = conn.url.replace(encodeURIComponent(conn.password), 'wrong-password');
    await expect(query(wrong, 'SELECT 1')).rejects.toThrow(/password authentication failed/);

    // PostgreSQL refuses root: when the tests run as root, the server runs as the unprivileged user.
    if (process.getuid?.() === 0) {
      const uids = await withBackend(conn.url, async (pid) => [
        await procUid(pid),
        await procUid(await postmasterOf(pid)),
      ]);
      expect(Math.min(...uids)).toBeGreaterThan(0);
    }
    await conn.close();
  });

  test('records who created a database and refuses to hand it to anyone else', async () => {
    const info = await platform.getDatabase('src14', ENV);
    expect(info).toMatchObject({ handle: 'src14', environment: ENV, version: 14, createdBy });
    expect(info?.sizeBytes).toBeGreaterThan(1_000_000);

    const again = await platform.createDatabase({
      handle: 'src14',
      environment: ENV,
      version: '14',
      diskSizeGb: 1,
      containerSizeMb: 512,
      createdBy,
    });
    expect(again.port).toBe(info?.port);

    const other = platform.createDatabase({
      handle: 'src14',
      environment: ENV,
      version: '14',
      diskSizeGb: 1,
      containerSizeMb: 512,
      createdBy: 'migration-test-2',
    });
    await expect(other).rejects.toThrow(TargetExistsError);
    await expect(other).rejects.toThrow(/created by migration-test-1/);

    const badVersion = platform.createDatabase({
      handle: 'nine',
      environment: ENV,
      version: '9',
      diskSizeGb: 1,
      containerSizeMb: 512,
      createdBy,
    });
    await expect(badVersion).rejects.toThrow(PlatformError);
    await expect(badVersion).rejects.toThrow(/available versions: .*14.*17/);
    await expect(
      platform.createDatabase({
        handle: '../x',
        environment: ENV,
        version: '14',
        diskSizeGb: 1,
        containerSizeMb: 1,
        createdBy,
      }),
    ).rejects.toThrow(BadInputError);

    expect(await platform.getDatabase('missing', ENV)).toBeUndefined();
    expect(await platform.getDatabase('src14', 'other-env')).toBeUndefined();
    await expect(platform.connect('missing', ENV)).rejects.toThrow(NotFoundError);
    await expect(platform.connect('missing', ENV)).rejects.toThrow(
      /database "missing" not found in environment "local"/,
    );
  });

  test('keeps passwords and state in files only their owner can read', async () => {
    const entries = await modesUnder(home);
    const secrets = entries.filter((e) => e.path.startsWith(join(home, 'secrets')));
    expect(secrets.filter((e) => !e.dir).length).toBeGreaterThanOrEqual(2);
    for (const e of secrets)
      expect({ path: e.path, mode: e.mode }).toEqual({ path: e.path, mode: e.dir ? 0o700 : 0o600 });
    const password = (await platform.connect('src14', ENV)).password;
    const state = await readFile(join(home, 'local-state.json'), 'utf8');
    expect(state).not.toContain(password);
  });

  test("a dump of one local database restored into another gives exactly the guide's expected errors", async () => {
    const source = await platform.connect('src14', ENV);
    const target = await platform.connect('dst17', ENV);
    await query(source.url, "CREATE ROLE reader LOGIN PASSWORD 'reader-secret'");
    await query(source.url, 'CREATE DATABASE shop');
    await query(
      source.url,

      "CREATE TABLE items (id serial PRIMARY KEY, doc jsonb); INSERT INTO items (doc) SELECT jsonb_build_object('n', g) FROM generate_series(1, 500) g;",
    );
    await query(
      source.url,
      'CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 42);',
      'shop',
    );

    // The guide's commands: pg_dumpall | grep -E -i -v 'ALTER ROLE aptible .*PASSWORD', then psql.
    const dumped = await run(join(SYSTEM_CLIENT_BIN, 'pg_dumpall'), ['-d', source.url, '--no-password'], {
      env: { ...process.env, PGPASSWORD: source.password },
      maxBuffer: 64 * 1024 * 1024,
    });
    const filtered = dumped.stdout
      .split('\n')
      .filter((line) => !/ALTER ROLE aptible .*PASSWORD/i.test(line))
      .join('\n');
    const dumpFile = join(home, 'dump.sql');
    await writeFile(dumpFile, filtered);
    const restored = await run(
      join(SYSTEM_CLIENT_BIN, 'psql'),
      ['-X', '-q', '-d', target.url, '-f', dumpFile],
      {
        env: { ...process.env, PGPASSWORD: target.password },
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    const errors = restored.stderr
      .split('\n')
      .filter((line) => line.includes('ERROR:'))
      .map((line) => line.slice(line.indexOf('ERROR:') + 'ERROR:'.length).trim());
    expect(errors.sort()).toEqual([...platform.expectedRestoreErrors].sort());

    expect(await query(target.url, 'SELECT count(*)::int AS n FROM items')).toEqual([{ n: 500 }]);
    expect(await query(target.url, 'SELECT count(*)::int AS n FROM orders', 'shop')).toEqual([{ n: 42 }]);
    // The filter kept the target's own admin password: the platform's URL still works.
    expect(await query(target.url, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
  });

  test('connect starts a cluster whose postmaster died, despite its stale postmaster.pid', async () => {
    const before = await platform.connect('src14', ENV);
    const [{ started }] = await query<{ started: Date }>(
      before.url,
      'SELECT pg_postmaster_start_time() AS started',
    );
    const postmaster = await withBackend(before.url, postmasterOf);
    const info = await platform.getDatabase('src14', ENV);
    process.kill(postmaster, 'SIGKILL');
    await waitFor('the postmaster to die', async () => !(await isAlive(postmaster)));
    expect(existsSync(join(info!.dataDir, 'postmaster.pid'))).toBe(true);
    expect((await platform.getDatabase('src14', ENV))?.running).toBe(false);

    const after = await platform.connect('src14', ENV);
    expect(after.url).toBe(before.url);
    const [{ restarted }] = await query<{ restarted: Date }>(
      after.url,
      'SELECT pg_postmaster_start_time() AS restarted',
    );
    expect(restarted.getTime()).toBeGreaterThan(started.getTime());
    expect(await query(after.url, 'SELECT count(*)::int AS n FROM items')).toEqual([{ n: 500 }]);
  });

  test('deprovisioning stops the server and removes its data; doing it again succeeds', async () => {
    const conn = await platform.connect('dst17', ENV);
    const postmaster = await withBackend(conn.url, postmasterOf);
    expect(await isAlive(postmaster)).toBe(true);
    const { dataDir } = (await platform.getDatabase('dst17', ENV))!;
    expect(existsSync(dataDir)).toBe(true);

    await platform.deprovisionDatabase('dst17', ENV);
    expect(existsSync(dataDir)).toBe(false);
    expect(await isAlive(postmaster)).toBe(false);
    expect(await platform.getDatabase('dst17', ENV)).toBeUndefined();
    await expect(platform.connect('dst17', ENV)).rejects.toThrow(NotFoundError);
    await expect(platform.deprovisionDatabase('dst17', ENV)).resolves.toBeUndefined();
  });
});

describe('local apps', () => {
  let outDir: string;
  // Each container writes the DB_URL it sees to a file named after its container index.
  const command = 'while true; do printf "%s" "$DB_URL" > "out/$PGSHIFT_CONTAINER.url"; sleep 0.2; done';

  beforeAll(async () => {
    outDir = join(home, 'app-cwd');
    await rm(outDir, { recursive: true, force: true });
    await mkdir(join(outDir, 'out'), { recursive: true });
    await platform.createApp('writer', { cmd: command }, ENV, { cwd: outDir });
    await platform.setConfig('writer', { DB_URL: 'postgresql://first' }, ENV);
  });

  async function pids(): Promise<number[]> {
    const app = (await platform.listApps(ENV)).find((a) => a.app === 'writer');
    return app?.services.find((s) => s.service === 'cmd')?.pids ?? [];
  }

  test('a service scales 0 → 2 → 0 with real, detached processes', async () => {
    expect(await platform.listServices(ENV)).toEqual([{ app: 'writer', service: 'cmd', containerCount: 0 }]);

    await platform.scaleService('writer', 'cmd', 2, ENV);
    expect(await platform.listServices(ENV)).toEqual([{ app: 'writer', service: 'cmd', containerCount: 2 }]);
    const running = await pids();
    expect(running).toHaveLength(2);
    for (const pid of running) {
      expect(await isAlive(pid)).toBe(true);
      // Its own process group (and session): it outlives whoever started it.
      expect(Number((await procStat(pid))?.[2])).toBe(pid);
      const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
      expect(environ).toEqual(
        expect.arrayContaining(['PGSHIFT_APP=writer', 'PGSHIFT_SERVICE=cmd', 'DB_URL=postgresql://first']),
      );
    }
    await waitFor('both containers to write', async () =>
      ['0', '1'].every((i) => existsSync(join(outDir, 'out', `${i}.url`))),
    );

    // Scaling to the same count changes nothing.
    await platform.scaleService('writer', 'cmd', 2, ENV);
    expect((await pids()).sort()).toEqual([...running].sort());

    await platform.scaleService('writer', 'cmd', 0, ENV);
    expect(await pids()).toEqual([]);
    for (const pid of running) expect(await isAlive(pid)).toBe(false);
    expect(await platform.listServices(ENV)).toEqual([{ app: 'writer', service: 'cmd', containerCount: 0 }]);
  });

  test('config:set restarts running containers with the new values', async () => {
    await platform.scaleService('writer', 'cmd', 1, ENV);
    const [old] = await pids();
    await rm(join(outDir, 'out', '0.url'), { force: true });

    await platform.setConfig('writer', { DB_URL: 'postgresql://second' }, ENV);
    const [fresh] = await pids();
    expect(fresh).not.toBe(old);
    expect(await isAlive(old)).toBe(false);
    expect(await isAlive(fresh)).toBe(true);
    await waitFor(
      'the restarted container to write',
      async () =>
        (await readFile(join(outDir, 'out', '0.url'), 'utf8').catch(() => '')) === 'postgresql://second',
    );
    expect(await platform.getConfig('writer', ENV)).toEqual({ DB_URL: 'postgresql://second' });
    await platform.scaleService('writer', 'cmd', 0, ENV);
  });

  test('a container that died counts as not running and is replaced by the next scale', async () => {
    await platform.scaleService('writer', 'cmd', 1, ENV);
    const [dead] = await pids();
    process.kill(-dead, 'SIGKILL');
    await waitFor('the container to die', async () => !(await isAlive(dead)));
    expect(await pids()).toEqual([]);
    expect(await platform.listServices(ENV)).toEqual([{ app: 'writer', service: 'cmd', containerCount: 1 }]);

    await platform.scaleService('writer', 'cmd', 1, ENV);
    const [replacement] = await pids();
    expect(replacement).not.toBe(dead);
    expect(await isAlive(replacement)).toBe(true);
    await platform.scaleService('writer', 'cmd', 0, ENV);
  });

  test('a container whose shell exited while what it started runs on is still stopped by a scale to 0', async () => {
    // `sh -c 'worker & server'`: the server (here the shell itself) ends, the worker lives on in the group.
    const seconds = `3217.${process.pid}`;
    const marker = `sleep\0${seconds}\0`;
    await platform.createApp('forker', { cmd: `sleep ${seconds} & sleep 1` }, ENV, { cwd: outDir });
    await platform.scaleService('forker', 'cmd', 1, ENV);
    const app = (await platform.listApps(ENV)).find((a) => a.app === 'forker');
    const [leader] = app?.services.find((s) => s.service === 'cmd')?.pids ?? [];
    expect(leader).toBeGreaterThan(0);
    await waitFor('the shell to exit', async () => !(await isAlive(leader)));
    const orphans = async () =>
      (await readdir('/proc'))
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            return readFileSync(`/proc/${d}/cmdline`, 'utf8').startsWith(marker);
          } catch {
            return false;
          }
        });
    expect(await orphans()).toHaveLength(1);
    expect(await platform.listServices(ENV)).toEqual(
      expect.arrayContaining([{ app: 'forker', service: 'cmd', containerCount: 1 }]),
    );
    await platform.scaleService('forker', 'cmd', 0, ENV);
    await waitFor('the orphaned worker to be stopped', async () => (await orphans()).length === 0);
  });

  test('unknown apps and services, and bad counts, are refused clearly', async () => {
    await expect(platform.scaleService('nope', 'cmd', 1, ENV)).rejects.toThrow(NotFoundError);
    await expect(platform.scaleService('writer', 'web', 1, ENV)).rejects.toThrow(
      /service "web" not found in app "writer"/,
    );
    await expect(platform.scaleService('writer', 'cmd', -1, ENV)).rejects.toThrow(BadInputError);
    await expect(platform.scaleService('writer', 'cmd', 33, ENV)).rejects.toThrow(
      /more than the local platform runs per service \(32\)/,
    );
    await expect(
      platform.createApp('nowhere', { web: 'true' }, ENV, { cwd: join(home, 'no-such-dir') }),
    ).rejects.toThrow(/working directory .* is not a directory/);
    await expect(platform.setConfig('nope', { A: '1' }, ENV)).rejects.toThrow(NotFoundError);
    await expect(platform.setConfig('writer', { 'NOT-A-NAME': '1' }, ENV)).rejects.toThrow(BadInputError);
  });
});

describe('a home that already exists', () => {
  test('a PGSHIFT_HOME made beforehand with mode 0755 serves the first db:create, and keeps its mode', async () => {
    const own = await mkdtemp(join(tmpdir(), 'pgshift-home-0755-'));
    await chmod(own, 0o755);
    const local = createLocalPlatform({ home: own });
    try {
      const db = await local.createDatabase({
        handle: 'first',
        environment: ENV,
        version: '14',
        diskSizeGb: 1,
        containerSizeMb: 256,
        createdBy: 'test',
      });
      expect(db.running).toBe(true);
      expect((await stat(own)).mode & 0o777).toBe(0o755);
      expect(await query(await local.databaseUrl('first', ENV), 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await local.destroy();
      await rm(own, { recursive: true, force: true });
    }
  });
});

describe('pgshift local (the CLI)', () => {
  // Through tsx, as `pgshift local ...` runs it; each call is a process of its own.
  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(
        join(REPO, 'node_modules', '.bin', 'tsx'),
        [join(REPO, 'src', 'client', 'local-command.ts'), ...args],
        { env: { ...process.env, PGSHIFT_HOME: home, APTIBLE_OUTPUT_FORMAT: '' }, cwd: REPO },
      );
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  test('db:create, db:list --json and db:url', async () => {
    const created = await cli('db:create', 'cli15', '--version', '15');
    expect(created).toMatchObject({ code: 0 });
    expect(created.stdout).toMatch(/Handle: cli15\nType: postgresql\nVersion: 15\n/);

    const listed = await cli('db:list', '--json');
    expect(listed.code).toBe(0);
    const dbs = JSON.parse(listed.stdout) as Array<{ handle: string; version: string; status: string }>;
    expect(dbs.find((d) => d.handle === 'cli15')).toMatchObject({
      version: '15',
      status: 'running',
      type: 'postgresql',
    });
    const password = (await platform.connect('cli15', ENV)).password;
    expect(listed.stdout).not.toContain(password);

    const url = await cli('db:url', 'cli15');
    expect(url.stdout.trim()).toBe(await platform.databaseUrl('cli15', ENV));
    const [{ num }] = await query<{ num: string }>(
      url.stdout.trim(),
      "SELECT current_setting('server_version_num') AS num",
    );
    expect(num).toMatch(/^15/);

    const taken = await cli('db:create', 'cli15', '--version', '15');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/database "cli15" already exists/);
  });

  test('apps:create, apps:scale (processes outlive the CLI), apps --json and config:set', async () => {
    expect(
      (await cli('apps:create', 'cliapp', '--service', 'web=while true; do sleep 1; done', '--cwd', home))
        .code,
    ).toBe(0);
    expect((await cli('apps:scale', 'web', '--app', 'cliapp', '--container-count', '2')).code).toBe(0);

    const listed = await cli('apps', '--json');
    const apps = JSON.parse(listed.stdout) as Array<{
      handle: string;
      services: Array<{ service: string; container_count: number; running_count: number; pids: number[] }>;
    }>;
    const web = apps.find((a) => a.handle === 'cliapp')?.services.find((s) => s.service === 'web');
    expect(web).toMatchObject({ container_count: 2, running_count: 2 });
    for (const pid of web!.pids) expect(await isAlive(pid)).toBe(true);

    const text = await cli('apps');
    expect(text.stdout).toMatch(
      /=== local\n[\s\S]*Handle: cliapp[\s\S]*Service: web\n[\s\S]*Container Count: 2/,
    );

    expect((await cli('config:set', '--app', 'cliapp', 'GREETING=hello=world')).code).toBe(0);
    expect(await platform.getConfig('cliapp', ENV)).toEqual({ GREETING: 'hello=world' });
    const restarted = (await platform.listApps(ENV)).find((a) => a.app === 'cliapp')!.services[0].pids;
    expect(restarted).toHaveLength(2);
    expect(restarted.some((p) => web!.pids.includes(p))).toBe(false);
  });

  test('bad input and unknown resources exit 2 with one line on stderr', async () => {
    const unknown = await cli('db:url', 'nope');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toMatch(/database "nope" not found/);
    expect((await cli('apps:scale', 'web', '--app', 'nope', '--container-count', '1')).code).toBe(2);
    expect((await cli('apps:scale', 'web', '--app', 'cliapp', '--container-count', 'many')).code).toBe(2);
  });

  test('db:create takes the handles a plan takes, and only versions it has; nothing is made otherwise', async () => {
    const before = await platform.listDatabases();
    const refused: Array<[string[], RegExp]> = [
      [['db:create', 'Upper', '--version', '14'], /argument 'handle'\. It must be 1-63 characters of a-z/],
      [['db:create', 'a'.repeat(64), '--version', '14'], /argument 'handle'\. It must be 1-63 characters/],
      [
        ['db:create', 'ok-name', '--version', 'abc'],
        /option '--version <version>' argument 'abc' is invalid/,
      ],
      [
        ['db:create', 'ok-name', '--version', '99'],
        /'--version 99': PostgreSQL 99 is not available .*14.*17/,
      ],
      [['db:create', 'ok-name', '--version', '14', '--environment', '../up'], /option '--environment/],
      [['db:url', '..'], /argument 'handle'/],
      [['backup:purge', '../1'], /A backup id is a number/],
      [['apps:scale', 'web', '--app', 'Cliapp', '--container-count', '1'], /option '--app <app>'/],
    ];
    for (const [args, message] of refused) {
      const res = await cli(...args);
      expect({ args, code: res.code }).toEqual({ args, code: 2 });
      expect(res.stderr).toMatch(message);
    }
    expect(await platform.listDatabases()).toEqual(before);
  });

  test('apps:scale refuses more containers than the local maximum, starting none', async () => {
    const res = await cli('apps:scale', 'web', '--app', 'cliapp', '--container-count', '100000');
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/'--container-count <n>' argument '100000' is invalid\. .*at most 32/);
    expect((await platform.listServices(ENV)).find((s) => s.app === 'cliapp')?.containerCount).toBe(2);
  });

  test('deprovisioning what does not exist says so on stderr and succeeds', async () => {
    const db = await cli('db:deprovision', 'never-was');
    expect(db.code).toBe(0);
    expect(db.stderr).toMatch(/database never-was not found in environment local: nothing to deprovision/);
    const app = await cli('apps:deprovision', '--app', 'never-was');
    expect(app.code).toBe(0);
    expect(app.stderr).toMatch(/app never-was not found in environment local: nothing to deprovision/);
    const backup = await cli('backup:purge', '999999');
    expect(backup.code).toBe(0);
    expect(backup.stderr).toMatch(/backup 999999 not found: nothing to purge/);
  });

  test('a scale killed right after starting a container leaves none untracked: the next scale finds it', async () => {
    const cwd = join(home, 'killed-scale');
    await mkdir(cwd, { recursive: true });
    // The first container kills the CLI that starts it ($PPID) before that CLI can record its pid.
    const command = '[ -e killed ] || { touch killed; kill -KILL $PPID; }; exec sleep 300';
    expect((await cli('apps:create', 'killed', '--service', `web=${command}`, '--cwd', cwd)).code).toBe(0);
    const killed = await cli('apps:scale', 'web', '--app', 'killed', '--container-count', '3');
    expect(killed.code).not.toBe(0);
    // On a busy machine the CLI may start more containers before the first one's kill lands: one orphan or
    // more, none recorded.
    await waitFor(
      'the orphaned container',
      async () => (await processesWithEnv('PGSHIFT_APP=killed')).length >= 1,
    );
    const orphans = await processesWithEnv('PGSHIFT_APP=killed');

    expect((await cli('apps:scale', 'web', '--app', 'killed', '--container-count', '2')).code).toBe(0);
    const service = (await platform.listApps(ENV)).find((a) => a.app === 'killed')!.services[0];
    // Found: kept as one of the two, or (a third) stopped — none left running untracked.
    expect(orphans.filter((pid) => service.pids.includes(pid)).length).toBe(Math.min(orphans.length, 2));
    const running = await processesWithEnv('PGSHIFT_APP=killed');
    expect(orphans.filter((pid) => running.includes(pid) && !service.pids.includes(pid))).toEqual([]);
    expect(await processesWithEnv('PGSHIFT_APP=killed')).toEqual([...service.pids].sort((a, b) => a - b));

    expect((await cli('apps:deprovision', '--app', 'killed')).code).toBe(0);
    await waitFor(
      'no process of the app',
      async () => (await processesWithEnv('PGSHIFT_APP=killed')).length === 0,
    );
  });

  test('down stops every cluster and process of the home', async () => {
    const pidsBefore = (await platform.listApps(ENV)).flatMap((a) => a.services.flatMap((s) => s.pids));
    expect(pidsBefore.length).toBeGreaterThan(0);
    expect((await cli('down')).code).toBe(0);
    for (const pid of pidsBefore) expect(await isAlive(pid)).toBe(false);
    for (const db of await platform.listDatabases()) expect(db.running).toBe(false);
    // Desired counts stay recorded, as after a reboot.
    expect((await platform.listServices(ENV)).find((s) => s.app === 'cliapp')?.containerCount).toBe(2);
  });
});
