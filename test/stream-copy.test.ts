// Copy strategy stream through the real dumpSource and restoreTarget activities (outside Temporal), on a
// PostgreSQL 14 source holding the rich fixture and a 17 target: the roles through the filter and each
// database by pg_dump piped into psql, side by side, with no file, must yield what the guide's file yields
// (judged by the independent snapshot and by the verification), keep the admin password, allow only the
// expected errors, and never take a dump cut short for a whole one.
import { readdir } from 'node:fs/promises';
import { dumpSource, restoreTarget } from '../src/activities/copy';
import type { MigrationInput } from '../src/activities/contract';
import type { ActivityDeps } from '../src/activities/deps';
import { RestoreInterruptedError } from '../src/errors';
import type { PlanInput } from '../src/plan/schema';
import type { DatabaseConnection } from '../src/platform/platform';
import type { LocalPlatform } from '../src/platform/local';
import { openClient, withClient } from '../src/pg/connection';
import { resetTarget } from '../src/pg/reset';
import { errorMessageText } from '../src/pg/restore-errors';
import { type StreamProgress, streamAll } from '../src/pg/stream';
import { dbnameArg } from '../src/pg/parallel/tools';
import { compareServers } from '../src/pg/verify';
import { waitUntil } from './helpers/migration-waits';
import {
  type RichCopyPair,
  copyInput,
  failureOf,
  passwordHashOf,
  startRichCopyPair,
} from './helpers/copy-strategy';
import { CLOSED_DB, SHOP_DB } from './helpers/rich-source';
import { type Snapshot, snapshotDiff, snapshotServer } from './helpers/server-snapshot';
import { findProcess, findProcesses, killWhileRunning } from './helpers/tool-processes';

const ENV = 'stream-copy';
/** What the dump step of strategy stream returns. */
const NO_DUMP = { path: '', bytes: 0, sha256: '', droppedStatements: 0, streamed: true };
const MIGRATION = 'pgshift-stream-copy-test';

let work: string;
let platform: LocalPlatform;
let source: DatabaseConnection;
let target: DatabaseConnection;
let deps: ActivityDeps;
let sourceSnapshot: Snapshot;

function input(plan: Partial<PlanInput> = {}): MigrationInput {
  return copyInput(MIGRATION, ENV, {
    copy: { strategy: 'stream' },
    accept: { skipDatabases: [CLOSED_DB] },
    ...plan,
  });
}

const snapshot = (t: DatabaseConnection) => snapshotServer(t, { adminRole: platform.adminRole });
const adminPassword = (t: DatabaseConnection) => passwordHashOf(t, platform.adminRole);

let pair: RichCopyPair;

beforeAll(async () => {
  pair = await startRichCopyPair(ENV, MIGRATION);
  ({ work, platform, source, target, deps, sourceSnapshot } = pair);
});

afterAll(() => pair?.close());

describe('strategy stream', () => {
  it('dumps nothing ahead and restores a target the snapshot cannot tell from the source', async () => {
    const dump = await dumpSource(deps, input());
    expect(dump).toMatchObject({ streamed: true, bytes: 0 });
    const password = await adminPassword(target);

    // As the workflow sends it: the target was created by this run moments ago, so no reset.
    const result = await restoreTarget(deps, input(), dump, { freshTarget: true });
    // Exactly the guide's expected errors: the two roles the target has, and the platform's database.
    expect(result.expectedErrors.map(errorMessageText).sort()).toEqual(
      [...platform.expectedRestoreErrors].sort(),
    );
    expect(result.streamed?.droppedStatements).toBe(1);
    expect(result.streamed?.bytes).toBeGreaterThan(1_000_000);
    expect(snapshotDiff(sourceSnapshot, await snapshot(target))).toEqual([]);
    const report = await compareServers(source, target, {
      adminRole: platform.adminRole,
      skipDatabases: [CLOSED_DB],
    });
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
    expect(await adminPassword(target)).toBe(password);
    // Nothing was written on the worker.
    expect(await readdir(work).catch(() => [])).toEqual([]);
    // Nothing of the bulk-load session settings stayed behind.
    await withClient(target, SHOP_DB, async (c) => {
      expect((await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit).toBe('on');
    });
  });

  it('resets a target that is not as created, even when told it is fresh', async () => {
    const first = await snapshot(target);
    const again = await restoreTarget(deps, input(), NO_DUMP, { freshTarget: true });
    expect(again.expectedErrors.map(errorMessageText).sort()).toEqual(
      [...platform.expectedRestoreErrors].sort(),
    );
    expect(snapshotDiff(first, await snapshot(target))).toEqual([]);
  });

  it('a retry after a killed psql gives the same target as the first attempt', async () => {
    const first = await snapshot(target);
    const restoring = restoreTarget(deps, input(), NO_DUMP);
    expect(await killWhileRunning(restoring, 'psql', String(target.port))).toBe(true);
    const err = await failureOf(restoring);
    expect(err).toBeInstanceOf(RestoreInterruptedError);
    expect(err.message).toMatch(/^psql was killed by SIGKILL after \d+ bytes of the dump of /);

    await restoreTarget(deps, input(), NO_DUMP);
    expect(snapshotDiff(first, await snapshot(target))).toEqual([]);
  });

  it('a dump cut short (pg_dump killed) is a retry, never a restore that passes', async () => {
    const first = await snapshot(target);
    const restoring = restoreTarget(deps, input(), NO_DUMP);
    expect(await killWhileRunning(restoring, 'pg_dump', dbnameArg(SHOP_DB))).toBe(true);
    const err = await failureOf(restoring);
    expect(err).toBeInstanceOf(RestoreInterruptedError);
    expect(err.message).toMatch(
      /^pg_dump was killed by SIGKILL after \d+ bytes of the dump of database "shop"/,
    );
    expect(err.message).not.toContain(source.password);

    await restoreTarget(deps, input(), NO_DUMP);
    expect(snapshotDiff(first, await snapshot(target))).toEqual([]);
  });

  it('fails with only the lines the plan does not expect', async () => {
    const strict = input({
      restore: {
        expectedErrors: [`role "${platform.adminRole}" already exists`, 'role "postgres" already exists'],
      },
    });
    const err = await failureOf(restoreTarget(deps, strict, NO_DUMP));
    expect(err.type).toBe('UnexpectedRestoreErrors');
    expect(err.nonRetryable).toBe(true);
    const [unexpected] = err.details as [string[], string[]];
    expect(unexpected).toEqual([
      expect.stringMatching(
        /^psql:<stdin>:\d+: ERROR: {2}database "db" already exists[^]*\n\(database "db"\)$/,
      ),
    ]);
  });

  it('streams the databases side by side, reporting the bytes as they flow', async () => {
    await resetTarget(target, { adminRole: platform.adminRole });
    const seen: StreamProgress[] = [];
    let most = 0;
    let running = true;
    const watching = (async () => {
      while (running) {
        most = Math.max(most, (await findProcesses('pg_dump', String(source.port))).length);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const outcome = await streamAll(source, target, {
      adminRole: platform.adminRole,
      expected: platform.expectedRestoreErrors,
      skipDatabases: [CLOSED_DB],
      lanes: 2,
      onProgress: (p) => seen.push(p),
    }).finally(() => (running = false));
    await watching;
    expect(outcome.unexpected).toEqual([]);
    expect(outcome.databases).toBe(5);
    expect(most).toBe(2);
    expect(seen[0]).toMatchObject({ bytes: 0, databasesDone: 0, databasesTotal: 5 });
    expect(seen.at(-1)).toMatchObject({ bytes: outcome.bytes, databasesDone: 5, databasesTotal: 5 });
    expect(seen.every((p, i) => i === 0 || p.bytes >= seen[i - 1].bytes)).toBe(true);
  });

  it('a psql that ends early stops its pg_dump at once, even one waiting on a lock', async () => {
    await resetTarget(target, { adminRole: platform.adminRole });
    // pg_dump locks every table it dumps: held here, shop's pg_dump waits until the lock goes.
    const holder = await openClient(source, SHOP_DB);
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE sales.orders IN ACCESS EXCLUSIVE MODE');
      const streaming = failureOf(
        streamAll(source, target, {
          adminRole: platform.adminRole,
          expected: platform.expectedRestoreErrors,
          skipDatabases: [CLOSED_DB],
          lanes: 1, // the largest database first, alone: the psql running is shop's
        }),
      );
      await waitUntil('shop’s pg_dump waiting on the lock', () => findProcess('pg_dump', dbnameArg(SHOP_DB)));
      const psql = await waitUntil('shop’s psql', () => findProcess('psql', String(target.port)));
      process.kill(psql, 'SIGKILL');
      // With the lock still held: the stream must not wait for the pg_dump it no longer needs.
      const err = await Promise.race([
        streaming,
        new Promise<Error>((resolve) =>
          setTimeout(() => resolve(new Error('still waiting on pg_dump after 2 minutes')), 120_000),
        ),
      ]);
      expect(err).toBeInstanceOf(RestoreInterruptedError);
      expect(err.message).toMatch(
        /^psql was killed by SIGKILL after \d+ bytes of the dump of database "shop"/,
      );
      expect(await findProcesses('pg_dump', String(source.port))).toEqual([]);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
  });

  it('a psql that cannot connect says why, with no password in it', async () => {
    const wrong = { ...target, password: 'not-the-password-4711' };
    const err = await failureOf(
      streamAll(source, wrong, { adminRole: platform.adminRole, expected: platform.expectedRestoreErrors }),
    );
    expect(err).toBeInstanceOf(RestoreInterruptedError);
    expect(err.message).toMatch(
      new RegExp(`^psql cannot connect to \\S+ \\(database "${target.database}"\\): psql: error: `),
    );
    for (const secret of [wrong.password, target.password, source.password]) {
      expect(err.message).not.toContain(secret);
    }
    await waitUntil(
      'the dump to be stopped',
      async () => (await findProcesses('pg_dumpall', String(source.port))).length === 0,
    );
  });

  it('stops every program when cancelled', async () => {
    await resetTarget(target, { adminRole: platform.adminRole });
    const stop = new AbortController();
    const streaming = streamAll(source, target, {
      adminRole: platform.adminRole,
      expected: platform.expectedRestoreErrors,
      skipDatabases: [CLOSED_DB],
      signal: stop.signal,
    });
    const dumpingShop = async () => findProcess('pg_dump', dbnameArg(SHOP_DB));
    const deadline = Date.now() + 60_000;
    while ((await dumpingShop()) === undefined && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    stop.abort(new Error('cancelled by the test'));
    expect((await failureOf(streaming)).message).toBe('cancelled by the test');
    const left = async () =>
      [
        ...(await findProcesses('psql', String(target.port))),
        ...(await findProcesses('pg_dump', String(source.port))),
        ...(await findProcesses('pg_dumpall', String(source.port))),
      ].length;
    while ((await left()) > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await left()).toBe(0);
  });
});
