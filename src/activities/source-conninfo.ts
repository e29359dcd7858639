// How the TARGET server reaches the source for a subscription: a libpq key=value conninfo built from the
// URL the platform gives apps. SECRET: it holds the source's password; it goes into CREATE SUBSCRIPTION and
// nowhere else (never a log, an error or a returned value).
import { BadInputError } from '../errors';

/** libpq keys a connection URL's query may carry; anything else is left out rather than passed blindly. */
const URL_PARAMETERS = new Set([
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'sslcrl',
  'sslcompression',
  'connect_timeout',
  'target_session_attrs',
  'channel_binding',
  'gssencmode',
  'keepalives',
  'keepalives_idle',
  'keepalives_interval',
  'keepalives_count',
  'options',
]);

/**
 * `postgresql://user:password@host:port/anything?sslmode=…` → `host='…' port='…' user='…' password='…'
 * dbname='<database>' sslmode='…'`. Every value is quoted as libpq reads it: in single quotes, with `\` and
 * `'` escaped by a backslash. The error for an unreadable URL does not repeat it.
 */
export function sourceConninfo(url: string, database: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BadInputError("the platform's URL of the source database is not a URL pgshift can read");
  }
  if (parsed.protocol !== 'postgresql:' && parsed.protocol !== 'postgres:') {
    throw new BadInputError(
      `the platform's URL of the source database is not a postgresql:// URL (it starts ${parsed.protocol})`,
    );
  }
  const pairs: [string, string][] = [];
  // An IPv6 address is bracketed in a URL, bare in a conninfo.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host) pairs.push(['host', decodeURIComponent(host)]);
  if (parsed.port) pairs.push(['port', parsed.port]);
  if (parsed.username) pairs.push(['user', decodeURIComponent(parsed.username)]);
  if (parsed.password) pairs.push(['password', decodeURIComponent(parsed.password)]);
  pairs.push(['dbname', database]);
  for (const [key, value] of parsed.searchParams) {
    if (URL_PARAMETERS.has(key)) pairs.push([key, value]);
  }
  return pairs.map(([key, value]) => `${key}=${quoteConninfoValue(value)}`).join(' ');
}

/** The password a URL holds, decoded, for the scrubbing of errors (undefined when none or unreadable). */
export function urlPassword(url: string): string | undefined {
  try {
    const { password } = new URL(url);
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}

export function quoteConninfoValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
