// Names from input never lead a path out of its directory: `start --id ..` once removed a worker's whole
// work directory (every migration's dump), `--id .` its dumps directory.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MigrationInput } from '../src/activities/contract';
import { removeDump } from '../src/activities/cleanup';
import { dumpPathOf, type ActivityDeps } from '../src/activities/deps';
import { BadInputError } from '../src/errors';
import { pathWithin } from '../src/lib/path-component';
import { validatePlan } from '../src/plan/load';
import { HomeLayout } from '../src/platform/local/paths';

const plan = validatePlan({
  platform: 'local',
  source: { handle: 'a' },
  target: { handle: 'b', version: '17' },
});
const input = (migrationId: string): MigrationInput => ({ migrationId, plan });

const UNSAFE: Array<[string, string]> = [
  ['empty', ''],
  ['.', '.'],
  ['..', '..'],
  ['a/b', 'a/b'],
  ['../x', '../x'],
  ['/etc', '/etc'],
  ['a NUL', 'a\0b'],
  ['256 bytes', 'x'.repeat(256)],
];
// Unsafe also as the end of a file name ("db-<handle>.password"), where "." and ".." are harmless.
const UNSAFE_INSIDE_A_NAME = UNSAFE.filter(([, name]) => /[/\0]/.test(name) || name.length > 250);

describe('dump paths', () => {
  let workDir: string;
  let deps: ActivityDeps;

  beforeEach(() => {
    workDir = mkdtempSync(join(tmpdir(), 'pgshift-paths-'));
    deps = {
      workDir,
      platformFor: () => {
        throw new Error('no platform in this test');
      },
    };
    // Another migration's dump, which no other id may reach.
    mkdirSync(join(workDir, 'dumps', 'other'), { recursive: true });
    writeFileSync(join(workDir, 'dumps', 'other', 'dump.sql'), 'every row');
  });
  afterEach(() => rmSync(workDir, { recursive: true, force: true }));

  test('a migration id names its own directory under dumps/', () => {
    expect(dumpPathOf(deps, input('pgshift-local-local-a'))).toBe(
      join(workDir, 'dumps', 'pgshift-local-local-a', 'dump.sql'),
    );
  });

  test.each(['..', '.', ''])('the id %j is refused, non-retryably, and removes nothing', async (id) => {
    expect(() => dumpPathOf(deps, input(id))).toThrow(BadInputError);
    expect(() => dumpPathOf(deps, input(id))).toThrow(/migration id .* cannot be used in a file name.*--id/);
    await expect(removeDump(deps, input(id))).rejects.toThrow(BadInputError);
    expect(existsSync(join(workDir, 'dumps', 'other', 'dump.sql'))).toBe(true);
  });

  test('separators in an id stay inside its directory', () => {
    expect(dumpPathOf(deps, input('../other'))).toBe(join(workDir, 'dumps', '.._other', 'dump.sql'));
  });
});

describe('pathWithin', () => {
  test.each(UNSAFE)('refuses the component: %s', (_, part) => {
    expect(() => pathWithin('/base', 'name', part)).toThrow(BadInputError);
  });

  test('accepts plain components, including ones that start with dots', () => {
    expect(pathWithin('/base/', 'name', 'a', '..b', '.c')).toBe('/base/a/..b/.c');
  });
});

describe("the local platform's files", () => {
  const layout = new HomeLayout('/home/h');

  test.each(UNSAFE)('refuse a directory name: %s', (_, name) => {
    expect(() => layout.databasePasswordFile(name, 'db')).toThrow(BadInputError);
    expect(() => layout.appConfigFile(name, 'app')).toThrow(BadInputError);
    expect(() => layout.serviceLogFile('local', name, 'web')).toThrow(BadInputError);
  });

  test.each(UNSAFE_INSIDE_A_NAME)('refuse a file name: %s', (_, name) => {
    expect(() => layout.databasePasswordFile('local', name)).toThrow(BadInputError);
    expect(() => layout.appConfigFile('local', name)).toThrow(BadInputError);
    expect(() => layout.serviceLogFile('local', 'app', name)).toThrow(BadInputError);
  });

  test('stay under the home for valid names', () => {
    expect(layout.databasePasswordFile('local', 'db')).toBe('/home/h/secrets/local/db-db.password');
    expect(layout.serviceLogFile('local', 'app', 'web')).toBe('/home/h/logs/local/app/web.log');
  });
});
