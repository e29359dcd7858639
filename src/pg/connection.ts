import { Client, type ClientConfig } from 'pg';
import { redact } from '../lib/redact';

/**
 * How this layer reaches a PostgreSQL server. SECRET (holds the password): never log it, never pass it
 * to Temporal. The platform's DatabaseConnection is structurally compatible.
 */
export interface PgTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The database the platform creates on every server ("db" on Aptible). */
  database: string;
}

/** What redact() must hide in anything that mentions this target. */
export function secretsOf(t: PgTarget): string[] {
  return [t.password];
}

export function redactFor(t: PgTarget, text: string): string {
  return redact(text, secretsOf(t));
}

/**
 * The environment for libpq tools: the password travels only in PGPASSWORD (never argv, where `ps` shows
 * it to every user of the machine). A connect timeout keeps a dead tunnel from hanging an activity.
 */
export function libpqEnv(t: PgTarget): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PGPASSWORD: t.password,
    PGCONNECT_TIMEOUT: process.env.PGCONNECT_TIMEOUT ?? '20',
    PGAPPNAME: 'pgshift',
  };
}

/** Connection arguments for pg_dumpall/psql; `--no-password` makes a wrong password fail instead of prompting. */
export function libpqArgs(t: PgTarget): string[] {
  return ['--no-password', '-h', t.host, '-p', String(t.port), '-U', t.user];
}

/**
 * libpq's default is sslmode=prefer (TLS when the server offers it); node-postgres has no such mode, so it is
 * emulated: TLS first, plain if the server refuses it. PGSSLMODE is honoured as the libpq tools honour it.
 */
type SslChoice = false | { rejectUnauthorized: boolean };
const plainServers = new Set<string>();

function sslChoices(t: PgTarget): SslChoice[] {
  const mode = process.env.PGSSLMODE ?? 'prefer';
  if (mode === 'disable') return [false];
  if (mode === 'verify-full' || mode === 'verify-ca') return [{ rejectUnauthorized: true }];
  if (mode === 'require') return [{ rejectUnauthorized: false }];
  if (plainServers.has(`${t.host}:${t.port}`)) return [false];
  return [{ rejectUnauthorized: false }, false];
}

/** Opens a `pg` client on one database of the target's server. Errors are redacted. */
export async function openClient(t: PgTarget, database = t.database): Promise<Client> {
  const choices = sslChoices(t);
  for (let i = 0; ; i++) {
    const config: ClientConfig = {
      host: t.host,
      port: t.port,
      user: t.user,
      password: t.password,
      database,
      ssl: choices[i],
      connectionTimeoutMillis: 20_000,
      application_name: 'pgshift',
    };
    const client = new Client(config);
    // An idle client whose server goes away emits 'error'; unhandled, that would crash the worker.
    client.on('error', () => undefined);
    try {
      await client.connect();
      if (choices[i] === false && choices.length > 1) plainServers.add(`${t.host}:${t.port}`);
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      const message = err instanceof Error ? err.message : String(err);
      if (i + 1 < choices.length && /does not support SSL/i.test(message)) continue;
      throw new Error(
        redactFor(
          t,
          `cannot connect to database "${database}" on ${t.host}:${t.port} as ${t.user}: ${message}`,
        ),
      );
    }
  }
}

/** Runs `body` with a client on `database`, always closing it; errors that escape are redacted. */
export async function withClient<T>(
  t: PgTarget,
  database: string,
  body: (client: Client) => Promise<T>,
): Promise<T> {
  const client = await openClient(t, database);
  try {
    return await body(client);
  } catch (err) {
    throw redactError(t, err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function redactError(t: PgTarget, err: unknown): Error {
  if (!(err instanceof Error)) return new Error(redactFor(t, String(err)));
  err.message = redactFor(t, err.message);
  if (err.stack) err.stack = redactFor(t, err.stack);
  return err;
}

/** Quotes an identifier as PostgreSQL's quote_ident does, so any name (mixed case, spaces, quotes) is safe. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
