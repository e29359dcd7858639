// Copy strategy parallel through the real dumpSource and restoreTarget activities (outside Temporal), on a
// PostgreSQL 14 source holding the rich fixture and a 17 target: the target must be what the guide's
// strategy yields (judged by the independent snapshot and by the verification), and the strategy must keep
// every promise of the guide's: admin password kept, only expected errors, a retry from a reset target, a
// dump found missing rather than restored from the wrong place.
import { readFile, readdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { removeDump } from '../src/activities/cleanup';
import { dumpSource, restoreTarget } from '../src/activities/copy';
import { parallelDumpDir } from '../src/activities/copy-parallel';
import type { DumpResult, MigrationInput } from '../src/activities/contract';
import type { ActivityDeps } from '../src/activities/deps';
import { DumpMissingError, RestoreInterruptedError } from '../src/errors';
import type { PlanInput } from '../src/plan/schema';
import type { DatabaseConnection } from '../src/platform/platform';
import type { LocalPlatform } from '../src/platform/local';
import { withClient } from '../src/pg/connection';
import { type ParallelDumpProgress, dumpParallel } from '../src/pg/parallel/dump';
import { type Manifest, databaseDirName, readVerifiedManifest } from '../src/pg/parallel/manifest';
import { type ParallelRestoreProgress, restoreParallel } from '../src/pg/parallel/restore';
import { BULK_LOAD_SETTINGS } from '../src/pg/parallel/session-settings';
import { resetTarget } from '../src/pg/reset';
import { parsePgRestoreErrors } from '../src/pg/parallel/pg-restore-errors';
import { classifyRestoreErrors, errorMessageText } from '../src/pg/restore-errors';
import { compareServers } from '../src/pg/verify';
import {
  type RichCopyPair,
  copyInput,
  failureOf,
  passwordHashOf,
  startRichCopyPair,
} from './helpers/copy-strategy';
import { CLOSED_DB, ODD_DB, SHOP_DB } from './helpers/rich-source';
import { type Snapshot, snapshotDiff, snapshotServer } from './helpers/server-snapshot';
import { killWhileRunning } from './helpers/tool-processes';

const ENV = 'parallel-copy';
const MIGRATION = 'pgshift-parallel-copy-test';

let home: string;
let work: string;
let platform: LocalPlatform;
let source: DatabaseConnection;
let target: DatabaseConnection;
let deps: ActivityDeps;
let dump: DumpResult;
let sourceSnapshot: Snapshot;

function input(plan: Partial<PlanInput> = {}): MigrationInput {
  return copyInput(MIGRATION, ENV, {
    // Two jobs, though the fixture's tables are small (the worker's own choice would be one): the
    // parallel paths of pg_dump and pg_restore must run.
    copy: { strategy: 'parallel', jobs: 2 },
    accept: { skipDatabases: [CLOSED_DB] },
    ...plan,
  });
}

const snapshot = (t: DatabaseConnection) => snapshotServer(t, { adminRole: platform.adminRole });
const adminPassword = (t: DatabaseConnection) => passwordHashOf(t, platform.adminRole);

let pair: RichCopyPair;

beforeAll(async () => {
  pair = await startRichCopyPair(ENV, MIGRATION);
  ({ home, work, platform, source, target, deps, sourceSnapshot } = pair);
});

afterAll(() => pair?.close());

describe('strategy parallel', () => {
  it("dumps the roles through the filter and each database pg_dumpall would, under names of pgshift's own", async () => {
    dump = await dumpSource(deps, input());
    expect(dump.path).toBe(parallelDumpDir(deps, input()));
    expect(dump.droppedStatements).toBe(1);
    const manifest = JSON.parse(await readFile(join(dump.path, 'manifest.json'), 'utf8')) as Manifest;
    // pg_dumpall's order and choice: template1 first; the database that allows no connections left out.
    expect(manifest.databases.map((d) => d.name)).toEqual(['template1', 'db', ODD_DB, 'postgres', SHOP_DB]);
    expect(manifest.databases.map((d) => d.restore)).toEqual(['into', 'create', 'create', 'into', 'create']);
    manifest.databases.forEach((d, i) => expect(d.dir).toBe(databaseDirName(i, d.name)));
    expect((await readdir(dump.path)).sort()).toEqual(
      ['globals.sql', 'manifest.json', ...manifest.databases.map((d) => d.dir)].sort(),
    );
    expect(dump.bytes).toBe(manifest.files.reduce((sum, f) => sum + f.size, 0));
    const globals = await readFile(join(dump.path, 'globals.sql'), 'utf8');
    // The admin's own statement is gone; the fixture's lookalikes (a role comment, a role name) stay.
    expect(globals).toMatch(new RegExp(`^CREATE ROLE ${platform.adminRole};$`, 'm'));
    expect(globals).not.toMatch(new RegExp(`^ALTER ROLE ${platform.adminRole} WITH SUPERUSER`, 'm'));
    expect(globals).toContain(`\nALTER ROLE ${platform.adminRole} WITH LOGIN PASSWORD ''not-a-real-one'';\n`);
    expect(globals).toMatch(/^ALTER ROLE app_owner .*PASSWORD 'SCRAM-SHA-256/m);
    expect((await stat(dirnameOf(dump.path))).mode & 0o777).toBe(0o700);
  });

  it('restores a target the snapshot cannot tell from the source, the admin password kept', async () => {
    const password = await adminPassword(target);
    const result = await restoreTarget(deps, input(), dump);
    // Exactly the guide's expected errors: the two roles the target has, and the platform's database.
    expect(result.expectedErrors.map(errorMessageText).sort()).toEqual(
      [...platform.expectedRestoreErrors].sort(),
    );
    expect(snapshotDiff(sourceSnapshot, await snapshot(target))).toEqual([]);
    const report = await compareServers(source, target, {
      adminRole: platform.adminRole,
      skipDatabases: [CLOSED_DB],
    });
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
    expect(await adminPassword(target)).toBe(password);
    await withClient({ ...target, user: 'app_owner', password: 'owner-fixture-pw' }, SHOP_DB, async (c) =>
      expect((await c.query('SELECT count(*) FROM sales.orders')).rows[0].count).toBe('120000'),
    );
    // Nothing of the bulk-load session settings stayed behind.
    await withClient(target, SHOP_DB, async (c) => {
      expect((await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit).toBe('on');
    });
  });

  it('a retry after a killed pg_restore gives the same target as the first attempt', async () => {
    const first = await snapshot(target);
    const shopDir = join(dump.path, databaseDirName(4, SHOP_DB));
    const restoring = restoreTarget(deps, input(), dump);
    // The OOM killer's way: the leader only, by SIGKILL, while it restores the largest database.
    expect(await killWhileRunning(restoring, 'pg_restore', shopDir)).toBe(true);
    const err = await failureOf(restoring);
    expect(err).toBeInstanceOf(RestoreInterruptedError);
    expect(err.message).toMatch(/pg_restore was killed by SIGKILL while restoring database "shop"/);

    await restoreTarget(deps, input(), dump);
    expect(snapshotDiff(first, await snapshot(target))).toEqual([]);
  });

  it('fails with only the lines the plan does not expect, pg_restore errors judged like psql errors', async () => {
    const strict = input({
      restore: {
        expectedErrors: [`role "${platform.adminRole}" already exists`, 'role "postgres" already exists'],
      },
    });
    const err = await failureOf(restoreTarget(deps, strict, dump));
    expect(err.type).toBe('UnexpectedRestoreErrors');
    expect(err.nonRetryable).toBe(true);
    const [unexpected, expected] = err.details as [string[], string[]];
    expect(unexpected).toHaveLength(1);
    expect(unexpected[0]).toMatch(/^ERROR: {2}database "db" already exists\n/);
    expect(unexpected[0]).toContain('Command was: CREATE DATABASE db');
    expect(unexpected[0]).toContain('(pg_restore, database "db")');
    expect(expected.map(errorMessageText).sort()).toEqual(
      [`role "${platform.adminRole}" already exists`, 'role "postgres" already exists'].sort(),
    );
  });

  it('tells a dump that is not on this worker, not this one or incomplete, before touching the target', async () => {
    const elsewhere = { ...deps, workDir: join(home, 'other-worker') };
    expect(await failureOf(restoreTarget(elsewhere, input(), dump))).toBeInstanceOf(DumpMissingError);
    const other = await failureOf(restoreTarget(deps, input(), { ...dump, sha256: '0'.repeat(64) }));
    expect(other).toBeInstanceOf(DumpMissingError);
    expect(other.message).toMatch(/not the one the dump step wrote/);

    const shopDir = join(dump.path, databaseDirName(4, SHOP_DB));
    const data = (await readdir(shopDir)).filter((n) => n.endsWith('.dat') && n !== 'toc.dat');
    const largest = (
      await Promise.all(data.map(async (n) => [n, (await stat(join(shopDir, n))).size] as const))
    ).sort((a, b) => b[1] - a[1])[0][0];
    const before = await snapshot(target);
    await truncate(join(shopDir, largest), 100);
    const incomplete = await failureOf(restoreTarget(deps, input(), dump));
    expect(incomplete).toBeInstanceOf(DumpMissingError);
    expect(incomplete.message).toContain(`${databaseDirName(4, SHOP_DB)}/${largest} differs`);
    expect(snapshotDiff(before, await snapshot(target))).toEqual([]);

    await removeDump(deps, input());
    await expect(stat(dirnameOf(dump.path))).rejects.toThrow(/ENOENT/);
    const gone = await failureOf(restoreTarget(deps, input(), dump));
    expect(gone).toBeInstanceOf(DumpMissingError);
    expect(gone.message).toMatch(/is not on this worker/);
  });
});

describe('progress', () => {
  it('counts the bytes dumped and restored, database by database, up to the total', async () => {
    const dir = join(work, 'progress', 'parallel');
    const dumped: ParallelDumpProgress[] = [];
    const outcome = await dumpParallel(source, dir, {
      adminRole: platform.adminRole,
      skipDatabases: [CLOSED_DB],
      onProgress: (p) => dumped.push(p),
    });
    expect(dumped.at(-1)?.bytes).toBe(outcome.bytes);
    expect(new Set(dumped.map((p) => p.index).filter((i) => i !== undefined))).toEqual(
      new Set([0, 1, 2, 3, 4]),
    );
    expect(dumped.every((p) => p.total === 5)).toBe(true);
    expect(isNondecreasing(dumped.map((p) => p.bytes))).toBe(true);

    await resetTarget(target, { adminRole: platform.adminRole });
    const restored: ParallelRestoreProgress[] = [];
    const manifest = await readVerifiedManifest(dir, outcome.sha256);
    const result = await restoreParallel(target, dir, manifest, {
      expected: [...platform.expectedRestoreErrors],
      sessionSettings: BULK_LOAD_SETTINGS,
      onProgress: (p) => restored.push(p),
    });
    expect(result.unexpected).toEqual([]);
    expect(restored.at(-1)).toMatchObject({ bytesRead: outcome.bytes, totalBytes: outcome.bytes, index: 4 });
    expect(restored.every((p) => p.bytesRead <= p.totalBytes)).toBe(true);
    expect(isNondecreasing(restored.map((p) => p.bytesRead))).toBe(true);
  });
});

const isNondecreasing = (xs: number[]) => xs.every((x, i) => i === 0 || x >= xs[i - 1]);

describe("pg_restore's errors", () => {
  const stderr = [
    'pg_restore: error: could not execute query: ERROR:  database "db" already exists',
    "Command was: CREATE DATABASE db WITH TEMPLATE = template0 ENCODING = 'UTF8';",
    '',
    '',
    'pg_restore: error: COPY failed for table "t": ERROR:  invalid input syntax for type integer: "x"',
    'CONTEXT:  COPY t, line 1, column s: "x"',
    'pg_restore: error: could not execute query: ERROR:  function "f" already exists with same argument types',
    'Command was: CREATE FUNCTION public.f() RETURNS integer',
    ...Array.from({ length: 20 }, (_, i) => `    line ${i}`),
    'pg_restore: error: connection to server at "10.0.0.1", port 5432 failed: FATAL:  database "x" does not exist',
    'pg_restore: warning: errors ignored on restore: 3',
  ].join('\n');

  it('reads each as psql prints a server error, so the plan expects it the same way', () => {
    const errors = parsePgRestoreErrors(stderr, 'db');
    expect(errors).toHaveLength(4);
    expect(errors.map(errorMessageText)).toEqual([
      'database "db" already exists',
      'invalid input syntax for type integer: "x"',
      'function "f" already exists with same argument types',
      undefined,
    ]);
    expect(errors[1]).toContain('CONTEXT:  COPY t, line 1');
    expect(errors[1]).toContain('pg_restore: COPY failed for table "t"');
    // A long statement is cut, not carried whole into the history.
    expect(errors[2]).toContain('    line 6\n...\n');
    expect(errors[2]).not.toContain('line 7');
    const { expected, unexpected } = classifyRestoreErrors(errors, ['database "db" already exists']);
    expect(expected).toEqual([errors[0]]);
    expect(unexpected).toHaveLength(3);
  });
});

function dirnameOf(path: string): string {
  return join(path, '..');
}
