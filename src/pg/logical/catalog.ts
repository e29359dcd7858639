// What the logical method's files share: which tables are published, how objects are named in messages,
// and how the source's conninfo (a secret) is kept out of them.
import type { Client } from 'pg';
import { redact } from '../../lib/redact';
import { quoteIdent } from '../connection';
import { notExtensionMember, userSchema } from '../verify/sql';

/**
 * The tables a publication lists: every plain table and leaf partition of the user's schemas that is
 * logged, not temporary, and not an extension's (CREATE EXTENSION fills those on the target: copying them
 * again would conflict with its rows). Partitions are published on their own (publish_via_partition_root
 * stays false): the schema copy gave the target the same partitions.
 */
export const PUBLISHED_TABLES = `
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS ident, n.nspname AS schema, c.relname AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND ${userSchema('n')}
     AND ${notExtensionMember('pg_class', 'c.oid')}
   ORDER BY 1`;

export interface TableName {
  ident: string;
  schema: string;
  name: string;
}

export async function publishedTables(client: Client): Promise<TableName[]> {
  return (await client.query<TableName>(PUBLISHED_TABLES)).rows;
}

/** `"db"."schema"."table"`: how a table is named in a problem, so any name reads unambiguously. */
export function tableLabel(db: string, schema: string, name: string): string {
  return [db, schema, name].map(quoteIdent).join('.');
}

/** The major version of the server a client is connected to. */
export async function serverMajor(client: Client): Promise<number> {
  const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  return Math.floor(Number(rows[0].v) / 10000);
}

/** The secrets in a libpq key=value conninfo: the whole string and the password's value. */
function conninfoSecrets(conninfo: string): string[] {
  const password = /\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/i.exec(conninfo)?.[1];
  const unquoted = password?.startsWith("'") ? password.slice(1, -1).replace(/\\(.)/g, '$1') : password;
  return [conninfo, ...(password ? [password] : []), ...(unquoted ? [unquoted] : [])];
}

/**
 * An error whose text may echo the conninfo (CREATE SUBSCRIPTION's failure, say), made safe: a new Error
 * with only a redacted message, so no property of the driver's error (the query's text) travels on.
 */
export function redactConninfoError(conninfo: string, err: unknown, prefix = ''): Error {
  const message = err instanceof Error ? err.message : String(err);
  return new Error(redact(`${prefix}${message}`, conninfoSecrets(conninfo)));
}

/** The conninfo for one database: a `dbname` given by the caller stays, else the database is added. */
export function conninfoFor(conninfo: string, database: string): string {
  if (/(^|\s)dbname\s*=/.test(conninfo)) return conninfo;
  return `${conninfo} dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });

/** The publication's comment before the subscriber's system identifier (start.ts, drop.ts). */
export const SUBSCRIBER_NOTE = 'pgshift: subscribed from the server with system identifier ';

/** The server's system identifier (pg_control_system), or undefined when the role may not read it. */
export async function systemIdentifier(c: Client): Promise<string | undefined> {
  try {
    const { rows } = await c.query<{ id: string }>(
      'SELECT system_identifier::text AS id FROM pg_control_system()',
    );
    return rows[0]?.id;
  } catch {
    return undefined;
  }
}
