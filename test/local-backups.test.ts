// Backups of local databases: physical base backups of real clusters, restored into new clusters.
// Few clusters (each costs a second or two): a 14 source and its restore, a 17 source and its restore.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { BadInputError, NotFoundError, PlatformError, TargetExistsError } from '../src/errors';
import { createLocalPlatform, type LocalBackupInfo, type LocalPlatform } from '../src/platform/local';

const ENV = 'local';
const BIN = join(__dirname, '..', 'bin', 'pgshift.js');

let home: string;
let platform: LocalPlatform;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-backup-test-'));
  platform = createLocalPlatform({ home, stopGraceMs: 3_000 });
});

afterAll(async () => {
  // Stops every cluster of the home and deletes them, backups included.
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

/** What a database holds, compared between a source and its restore. */
async function snapshot(url: string) {
  const [items] = await query<{ n: number; digest: string }>(
    url,
    "SELECT count(*)::int AS n, md5(string_agg(id || ':' || doc::text, ',' ORDER BY id)) AS digest FROM items",
  );
  const [seq] = await query<{ last: string }>(url, 'SELECT last_value::text AS last FROM items_id_seq');
  const [orders] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM orders', 'shop');
  const roles = await query<{ rolname: string }>(
    url,
    "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY rolname",
  );
  return { items, seq: seq.last, orders: orders.n, roles: roles.map((r) => r.rolname) };
}

describe('backups of a PostgreSQL 14 database', () => {
  const createdBy = 'backup-test-source';
  let backup: LocalBackupInfo;
  let before: Awaited<ReturnType<typeof snapshot>>;

  beforeAll(async () => {
    await platform.createDatabase({
      handle: 'prod14',
      environment: ENV,
      version: '14',
      diskSizeGb: 2,
      containerSizeMb: 512,
      createdBy,
    });
    const conn = await platform.connect('prod14', ENV);
    await query(conn.url, "CREATE ROLE reader LOGIN PASSWORD 'reader-secret'");
    await query(conn.url, 'CREATE DATABASE shop');
    await query(
      conn.url,
      'CREATE TABLE items (id serial PRIMARY KEY, doc jsonb); CREATE INDEX ON items USING gin (doc); ' +
        "INSERT INTO items (doc) SELECT jsonb_build_object('n', g, 's', md5(g::text)) FROM generate_series(1, 5000) g;",
    );
    await query(
      conn.url,
      'CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 42);',
      'shop',
    );
    before = await snapshot(conn.url);
  });

  test('createBackup takes a physical backup and records it', async () => {
    // A cluster whose pg_hba.conf allows no replication (as one edited by hand): pg_basebackup needs it,
    // so the backup adds the line and reloads the server.
    const { dataDir } = (await platform.getDatabase('prod14', ENV))!;
    const hba = join(dataDir, 'pg_hba.conf');
    const rules = await readFile(hba, 'utf8');
    await writeFile(hba, rules.replace(/^host\s+replication.*$/gm, ''));
    await query((await platform.connect('prod14', ENV)).url, 'SELECT pg_reload_conf()');

    const requestedAt = Date.now();
    backup = await platform.createBackup('prod14', ENV);
    if (backup.method === 'pg_basebackup') {
      expect(await readFile(hba, 'utf8')).toMatch(
        /^host\s+replication\s+aptible\s+127\.0\.0\.1\/32\s+scram-sha-256$/m,
      );
    }
    expect(backup).toMatchObject({
      databaseHandle: 'prod14',
      environment: ENV,
      version: 14,
      containerSizeMb: 512,
      diskSizeGb: 2,
    });
    expect(backup.id).toMatch(/^[1-9]\d*$/);
    // Stamped by this call, however long a loaded machine took over it.
    expect(Date.parse(backup.createdAt)).toBeGreaterThanOrEqual(requestedAt);
    expect(Date.parse(backup.createdAt)).toBeLessThanOrEqual(Date.now());
    expect(backup.sizeBytes).toBeGreaterThan(1_000_000);
    expect(['pg_basebackup', 'low-level']).toContain(backup.method);
    // A data directory PostgreSQL 14 can start from.
    expect((await readFile(join(backup.dir, 'data', 'PG_VERSION'), 'utf8')).trim()).toBe('14');
    expect(existsSync(join(backup.dir, 'data', 'backup_label'))).toBe(true);
    // Its password is a secret file only the owner reads; the state file holds no password.
    const secret = join(home, 'secrets', '_backups', `backup-${backup.id}.password`);
    expect((await stat(secret)).mode & 0o777).toBe(0o600);
    const password = (await platform.connect('prod14', ENV)).password;
    expect((await readFile(secret, 'utf8')).trim()).toBe(password);
    expect(await readFile(join(home, 'local-state.json'), 'utf8')).not.toContain(password);

    // Data written after the backup is not in it (checked by the restore below).
    await query((await platform.connect('prod14', ENV)).url, "INSERT INTO items (doc) VALUES ('{}')");
  });

  test('listBackups: newest first, and unknown databases are refused', async () => {
    const second = await platform.createBackup('prod14', ENV);
    expect(Number(second.id)).toBeGreaterThan(Number(backup.id));
    const listed = await platform.listBackups('prod14', ENV);
    expect(listed.map((b) => b.id)).toEqual([second.id, backup.id]);
    expect(listed[1]).toEqual(backup);
    await platform.purgeBackup(second.id);
    expect((await platform.listBackups('prod14', ENV)).map((b) => b.id)).toEqual([backup.id]);

    await expect(platform.listBackups('nope', ENV)).rejects.toThrow(NotFoundError);
    await expect(platform.createBackup('nope', ENV)).rejects.toThrow(/database "nope" not found/);
  });

  test('restoreBackup makes a new, connectable database holding the data as it was', async () => {
    const restored = await platform.restoreBackup({
      backupId: backup.id,
      handle: 'rehearsal14',
      environment: ENV,
      containerSizeMb: 1024,
      createdBy: 'rehearsal-1',
    });
    const source = await platform.getDatabase('prod14', ENV);
    expect(restored).toMatchObject({
      handle: 'rehearsal14',
      environment: ENV,
      version: 14,
      createdBy: 'rehearsal-1',
      containerSizeMb: 1024,
      running: true,
    });
    expect(restored.port).not.toBe(source?.port);
    expect(restored.dataDir).not.toBe(source?.dataDir);
    expect(await platform.getDatabase('rehearsal14', ENV)).toMatchObject({ containerSizeMb: 1024 });

    const conn = await platform.connect('rehearsal14', ENV);
    expect(conn).toMatchObject({ host: '127.0.0.1', port: restored.port, user: 'aptible', database: 'db' });
    expect(await snapshot(conn.url)).toEqual(before);
    // Its own password: the restored database's URL does not open the source, nor the reverse.
    const prod = await platform.connect('prod14', ENV);
    expect(conn.password).not.toBe(prod.password);
    await expect(query(prod.url.replace(`:${prod.port}/`, `:${conn.port}/`), 'SELECT 1')).rejects.toThrow(
      /password authentication failed/,
    );
    // The source's roles came along, with their passwords.
    const reader = conn.url.replace(/\/\/aptible:[^@]*@/, '//reader:reader-secret@');
    expect(await query(reader, 'SELECT current_user AS me')).toEqual([{ me: 'reader' }]);
    // Two independent servers.
    await query(conn.url, 'DELETE FROM items');
    expect((await snapshot(prod.url)).items.n).toBe(before.items.n + 1);
  });

  test('restoreBackup is idempotent for its creator and refuses anyone else', async () => {
    const first = await platform.getDatabase('rehearsal14', ENV);
    const again = await platform.restoreBackup({
      backupId: backup.id,
      handle: 'rehearsal14',
      environment: ENV,
      createdBy: 'rehearsal-1',
    });
    expect(again).toMatchObject({ port: first?.port, createdAt: first?.createdAt, dataDir: first?.dataDir });

    const other = platform.restoreBackup({
      backupId: backup.id,
      handle: 'rehearsal14',
      environment: ENV,
      createdBy: 'rehearsal-2',
    });
    await expect(other).rejects.toThrow(TargetExistsError);
    await expect(other).rejects.toThrow(/created by rehearsal-1/);
    await expect(
      platform.restoreBackup({ backupId: backup.id, handle: 'prod14', environment: ENV, createdBy: 'x' }),
    ).rejects.toThrow(TargetExistsError);
  });

  test('unknown and malformed backup ids are refused without leaving anything behind', async () => {
    const unknown = platform.restoreBackup({
      backupId: '98765',
      handle: 'ghost',
      environment: ENV,
      createdBy: 'x',
    });
    await expect(unknown).rejects.toThrow(NotFoundError);
    await expect(unknown).rejects.toThrow(/backup "98765" not found.*backup:list/);
    await expect(
      platform.restoreBackup({ backupId: '../1', handle: 'ghost', environment: ENV, createdBy: 'x' }),
    ).rejects.toThrow(BadInputError);
    expect(await platform.getDatabase('ghost', ENV)).toBeUndefined();
    const state = JSON.parse(await readFile(join(home, 'local-state.json'), 'utf8'));
    expect(Object.keys(state.databases)).not.toContain(`${ENV}/ghost`);
  });

  test('a restore that fails leaves nothing behind; a half-made one is redone', async () => {
    // A backup whose server cannot start: an unknown setting in its configuration.
    const broken = await platform.createBackup('prod14', ENV);
    const auto = join(broken.dir, 'data', 'postgresql.auto.conf');
    const original = await readFile(auto, 'utf8');
    await writeFile(auto, `${original}\nno_such_setting = 1\n`);
    await expect(
      platform.restoreBackup({ backupId: broken.id, handle: 'broken14', environment: ENV, createdBy: 'r' }),
    ).rejects.toThrow(PlatformError);
    expect(await platform.getDatabase('broken14', ENV)).toBeUndefined();
    const state = JSON.parse(await readFile(join(home, 'local-state.json'), 'utf8'));
    expect(Object.keys(state.databases)).not.toContain(`${ENV}/broken14`);
    expect(existsSync(join(home, 'secrets', ENV, 'db-broken14.password'))).toBe(false);
    expect(existsSync(join(backup.dir, '..', '..', ENV, 'broken14'))).toBe(false);

    // A crash mid-restore leaves a "creating" record and a cluster: the next restore starts over.
    await writeFile(auto, original);
    const made = await platform.restoreBackup({
      backupId: broken.id,
      handle: 'broken14',
      environment: ENV,
      createdBy: 'r',
    });
    const statePath = join(home, 'local-state.json');
    const crashed = JSON.parse(await readFile(statePath, 'utf8'));
    crashed.databases[`${ENV}/broken14`].status = 'creating';
    await writeFile(statePath, JSON.stringify(crashed));
    expect(await platform.getDatabase('broken14', ENV)).toBeUndefined();
    const redone = await platform.restoreBackup({
      backupId: broken.id,
      handle: 'broken14',
      environment: ENV,
      createdBy: 'r2',
    });
    expect(redone.createdBy).toBe('r2');
    expect(redone.createdAt).not.toBe(made.createdAt);
    expect((await snapshot((await platform.connect('broken14', ENV)).url)).items.n).toBe(before.items.n + 1);
    await platform.deprovisionDatabase('broken14', ENV);
    await platform.purgeBackup(broken.id);
  });

  test('a deprovisioned database leaves its backups orphaned; purge removes them, twice is fine', async () => {
    expect((await platform.listOrphanedBackups(ENV)).map((b) => b.id)).not.toContain(backup.id);
    await platform.deprovisionDatabase('prod14', ENV);

    const orphaned = await platform.listOrphanedBackups(ENV);
    expect(orphaned.map((b) => b.id)).toContain(backup.id);
    expect(orphaned.find((b) => b.id === backup.id)).toMatchObject({
      databaseHandle: 'prod14',
      environment: ENV,
      createdAt: backup.createdAt,
    });
    expect(orphaned.find((b) => b.id === backup.id)?.databaseDeletedAt).toEqual(expect.any(String));
    expect(await platform.listOrphanedBackups('elsewhere')).toEqual([]);
    await expect(platform.listBackups('prod14', ENV)).rejects.toThrow(NotFoundError);
    // The restore does not depend on its source.
    expect((await snapshot((await platform.connect('rehearsal14', ENV)).url)).orders).toBe(42);

    await platform.purgeBackup(backup.id);
    expect(existsSync(backup.dir)).toBe(false);
    expect(existsSync(join(home, 'secrets', '_backups', `backup-${backup.id}.password`))).toBe(false);
    expect((await platform.listOrphanedBackups(ENV)).map((b) => b.id)).not.toContain(backup.id);
    const state = JSON.parse(await readFile(join(home, 'local-state.json'), 'utf8'));
    expect(Object.keys(state.backups)).not.toContain(backup.id);
    await expect(platform.purgeBackup(backup.id)).resolves.toBeUndefined();
    await expect(platform.purgeBackup('424242')).resolves.toBeUndefined();
    await expect(platform.purgeBackup('not-an-id')).rejects.toThrow(BadInputError);
    await expect(
      platform.restoreBackup({ backupId: backup.id, handle: 'late', environment: ENV, createdBy: 'x' }),
    ).rejects.toThrow(NotFoundError);
    await platform.deprovisionDatabase('rehearsal14', ENV);
  });
});

test('a state file written before backups existed reads as one without backups', async () => {
  const oldHome = await mkdtemp(join(tmpdir(), 'pgshift-backup-old-state-'));
  try {
    await writeFile(
      join(oldHome, 'local-state.json'),
      JSON.stringify({ version: 1, databases: {}, apps: {} }),
      { mode: 0o600 },
    );
    const old = createLocalPlatform({ home: oldHome });
    expect(await old.listOrphanedBackups(ENV)).toEqual([]);
    await expect(old.purgeBackup('1')).resolves.toBeUndefined();
    await expect(old.getBackup('1')).rejects.toThrow(NotFoundError);
  } finally {
    await rm(oldHome, { recursive: true, force: true });
  }
});

describe('pgshift local backup:* (the CLI), on a PostgreSQL 17 database', () => {
  function pgshift(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [BIN, 'local', ...args],
        { env: { ...process.env, PGSHIFT_HOME: home, APTIBLE_OUTPUT_FORMAT: '' } },
        (err, stdout, stderr) => resolve({ code: err ? ((err.code as number) ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  test('db:backup / backup:create, backup:list, backup:restore, backup:orphaned, backup:purge', async () => {
    expect((await pgshift('db:create', 'app17', '--version', '17', '--container-size', '768')).code).toBe(0);
    const url = (await pgshift('db:url', 'app17')).stdout.trim();
    await query(url, 'CREATE TABLE notes (id int PRIMARY KEY, body text)');
    await query(url, "INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 300) g");

    const created = await pgshift('backup:create', 'app17');
    expect(created).toMatchObject({ code: 0 });
    expect(created.stderr).toMatch(/Backing up app17/);
    const id = /^Id: (\d+)$/m.exec(created.stdout)?.[1];
    expect(id).toBeDefined();
    expect(created.stdout).toMatch(/^Database: app17$/m);
    const second = await pgshift('db:backup', 'app17', '--environment', ENV);
    const secondId = /^Id: (\d+)$/m.exec(second.stdout)?.[1];
    expect(Number(secondId)).toBeGreaterThan(Number(id));

    const text = await pgshift('backup:list', 'app17');
    expect(text.code).toBe(0);
    expect(text.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^${secondId}: \\S+, local, manual$`)),
      expect.stringMatching(new RegExp(`^${id}: \\S+, local, manual$`)),
    ]);
    const listed = await pgshift('backup:list', 'app17', '--json');
    const backups = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    expect(backups.map((b) => b.id)).toEqual([Number(secondId), Number(id)]);
    expect(backups[1]).toMatchObject({
      version: '17',
      manual: true,
      container_size: 768,
      database: { handle: 'app17' },
      environment: { handle: ENV },
    });
    expect(backups[1].size_bytes).toEqual(expect.any(Number));
    expect(listed.stdout).not.toContain(new URL(url).password);

    const restored = await pgshift(
      'backup:restore',
      id!,
      '--handle',
      'app17-copy',
      '--container-size',
      '2048',
    );
    expect(restored).toMatchObject({ code: 0 });
    expect(restored.stdout).toMatch(
      /^Handle: app17-copy\n[\s\S]*^Version: 17\n[\s\S]*^Container Size: 2048$/m,
    );
    expect(await platform.getDatabase('app17-copy', ENV)).toMatchObject({
      version: 17,
      containerSizeMb: 2048,
    });
    const copyUrl = (await pgshift('db:url', 'app17-copy')).stdout.trim();
    expect(copyUrl).not.toBe(url);
    expect(await query(copyUrl, 'SELECT count(*)::int AS n, max(body) AS last FROM notes')).toEqual([
      { n: 300, last: 'note 99' },
    ]);

    const unknown = await pgshift('backup:restore', '99999', '--handle', 'nothing');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toMatch(/backup "99999" not found/);
    expect((await pgshift('backup:list', 'nope')).code).toBe(2);
    expect((await pgshift('backup:restore', id!, '--container-size', 'big')).code).toBe(2);
    expect((await pgshift('backup:purge', 'abc')).code).toBe(2);

    expect((await pgshift('db:deprovision', 'app17')).code).toBe(0);
    const orphaned = await pgshift('backup:orphaned', '--json');
    expect(orphaned.code).toBe(0);
    const orphans = JSON.parse(orphaned.stdout) as Array<{ id: number; database: { deleted_at?: string } }>;
    expect(orphans.map((b) => b.id)).toEqual([Number(secondId), Number(id)]);
    expect(orphans[0].database.deleted_at).toEqual(expect.any(String));
    expect((await pgshift('backup:orphaned', '--environment', ENV)).stdout).toMatch(
      new RegExp(`^${id}: \\S+, local, manual, app17 deleted at \\S+$`, 'm'),
    );

    for (const b of [id!, secondId!]) {
      const purged = await pgshift('backup:purge', b);
      expect(purged).toMatchObject({ code: 0 });
      expect(purged.stderr).toMatch(new RegExp(`Purging backup ${b}`));
    }
    expect((await pgshift('backup:purge', id!)).code).toBe(0);
    expect(JSON.parse((await pgshift('backup:orphaned', '--json')).stdout)).toEqual([]);
    // The restored database lives on without its source or its backup.
    expect(await query(copyUrl, 'SELECT count(*)::int AS n FROM notes')).toEqual([{ n: 300 }]);
    expect((await pgshift('db:deprovision', 'app17-copy')).code).toBe(0);
  });
});
