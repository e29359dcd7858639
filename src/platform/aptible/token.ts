// When the aptible CLI's login ends. The CLI reads APTIBLE_ACCESS_TOKEN, else the token stored for the auth
// server in $APTIBLE_CONFIG_PATH/tokens.json (lib/aptible/cli/helpers/token.rb); the token is a JWT whose
// `exp` says when Aptible stops accepting it. Only the expiry is read: the token itself never leaves here.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

const DEFAULT_AUTH_ROOT = 'https://auth.aptible.com';

async function currentToken(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (env.APTIBLE_ACCESS_TOKEN) return env.APTIBLE_ACCESS_TOKEN;
  const dir = env.APTIBLE_CONFIG_PATH ?? join(env.HOME ?? homedir(), '.aptible');
  try {
    const tokens = JSON.parse(await readFile(join(dir, 'tokens.json'), 'utf8')) as Record<string, unknown>;
    const token = tokens[env.APTIBLE_AUTH_ROOT_URL ?? DEFAULT_AUTH_ROOT];
    return typeof token === 'string' ? token : undefined;
  } catch {
    return undefined;
  }
}

/** The login's expiry, or undefined when there is no token or it carries no readable `exp`. */
export async function tokenExpiry(env: NodeJS.ProcessEnv): Promise<Date | undefined> {
  const token = await currentToken(env);
  const payload = token?.split('.')[1];
  if (!payload) return undefined;
  try {
    const { exp } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof exp === 'number' ? new Date(exp * 1000) : undefined;
  } catch {
    return undefined;
  }
}
