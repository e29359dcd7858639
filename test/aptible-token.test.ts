// The login's end, read the way the aptible CLI finds its token (helpers/token.rb), and preflight's warning.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AptiblePlatform } from '../src/platform/aptible';
import { tokenExpiry } from '../src/platform/aptible/token';

const HOUR = 3_600_000;
const jwt = (payload: object) =>
  ['{"alg":"RS256"}', JSON.stringify(payload)].map((p) => Buffer.from(p).toString('base64url')).join('.') +
  '.c2ln';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgshift-token-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('APTIBLE_ACCESS_TOKEN first, else tokens.json under APTIBLE_CONFIG_PATH for the auth server', async () => {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  expect(await tokenExpiry({ APTIBLE_ACCESS_TOKEN: jwt({ exp }) })).toEqual(new Date(exp * 1000));
  await writeFile(
    join(dir, 'tokens.json'),
    JSON.stringify({ 'https://auth.aptible.com': jwt({ exp: exp + 60 }) }),
  );
  expect(await tokenExpiry({ APTIBLE_CONFIG_PATH: dir })).toEqual(new Date((exp + 60) * 1000));
  expect(await tokenExpiry({ APTIBLE_CONFIG_PATH: dir, APTIBLE_AUTH_ROOT_URL: 'https://auth.example' })).toBe(
    undefined,
  );
  expect(await tokenExpiry({ APTIBLE_CONFIG_PATH: join(dir, 'none') })).toBeUndefined();
  expect(await tokenExpiry({ APTIBLE_ACCESS_TOKEN: 'not-a-jwt' })).toBeUndefined();
  expect(await tokenExpiry({ APTIBLE_ACCESS_TOKEN: jwt({ sub: 'x' }) })).toBeUndefined();
});

test('preflight is warned of a login that ends before the migration may, and told how to get a longer one', async () => {
  const token = jwt({ exp: Math.floor((Date.now() + 10 * HOUR) / 1000) });
  const platform = new AptiblePlatform({ env: { APTIBLE_ACCESS_TOKEN: token } });
  expect(await platform.sessionWarnings(6 * HOUR)).toEqual([]);
  const [warning] = await platform.sessionWarnings(36 * HOUR);
  expect(warning).toMatch(/login of this worker ends at .*aptible login --lifetime.*APTIBLE_ACCESS_TOKEN/);
  expect(warning).not.toContain(token);
});
