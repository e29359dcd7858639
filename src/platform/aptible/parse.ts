// Parsers for what the `aptible` CLI prints with APTIBLE_OUTPUT_FORMAT=json (and db:tunnel's text lines).
// Shapes come from aptible/aptible-cli: lib/aptible/cli/resource_formatter.rb (inject_*), the
// subcommands in lib/aptible/cli/subcommands/*.rb, and renderer/json.rb (JSON.pretty_generate of the tree).
// Unknown keys are ignored: newer CLIs add fields (e.g. docker_image on apps).
import { z } from 'zod';
import { PlatformError } from '../../errors';
import { redact } from '../../lib/redact';

/** The CLI printed something we cannot read: usually a CLI version this pgshift does not know. */
export class AptibleOutputError extends PlatformError {}

const id = z.union([z.number().int(), z.string().regex(/^\d+$/)]).transform(String);
const environmentRef = z.object({ handle: z.string() });

const versionsSchema = z.array(
  z.object({ type: z.string(), version: z.coerce.string(), default: z.boolean().nullish() }),
);

const serviceSchema = z.object({
  service: z.string(),
  container_count: z.number().int().nullable(),
  container_size: z.number().int().nullish(),
});
const appsSchema = z.array(
  z.object({ handle: z.string(), services: z.array(serviceSchema).default([]), environment: environmentRef }),
);

const databaseSchema = z.object({
  id,
  handle: z.string(),
  created_at: z.string().nullish(),
  type: z.string().nullish(),
  version: z.coerce.string().nullish(),
  status: z.string().nullish(),
  environment: environmentRef,
  disk_size: z.number().nullish(),
  container_size: z.number().int().nullish(),
});
const databasesSchema = z.array(databaseSchema);

const urlSchema = z.object({ connection_url: z.string().min(1) });

const configSchema = z.array(z.object({ key: z.string(), value: z.string().nullable() }));

const backupSchema = z.object({
  id,
  created_at: z.string(),
  size: z.number().nullish(),
  // Present on cross-region copies (inject_backup): a disaster-recovery copy, not a backup of its own.
  copied_from: z.unknown().optional(),
});
const backupsSchema = z.array(backupSchema);
const orphanedSchema = z.array(
  backupSchema.extend({ database: z.object({ handle: z.string(), environment: environmentRef }) }),
);

export interface AptibleDatabase {
  id: string;
  handle: string;
  environment: string;
  type?: string;
  version?: string;
  status?: string;
  diskSizeGb?: number;
  containerSizeMb?: number;
  /** ISO 8601. */
  createdAt?: string;
}

export interface AptibleService {
  app: string;
  environment: string;
  service: string;
  containerCount: number;
  containerSizeMb?: number;
}

export interface AptibleBackup {
  id: string;
  /** ISO 8601. */
  createdAt: string;
  sizeGb?: number;
  /** A cross-region copy of another backup. */
  copy: boolean;
}

export interface AptibleOrphanedBackup extends AptibleBackup {
  databaseHandle: string;
  environment: string;
}

/**
 * The JSON document at the end of stdout. Commands that attach to operation logs (db:create,
 * backup:restore) let the log portal write to stdout first (helpers/operation.rb, ssh with inherited
 * stdio), so the document is the last line that opens a JSON value at column 0, through the end.
 */
export function trailingJson(stdout: string, command: string): unknown {
  const text = stdout.replace(/\s+$/, '');
  if (text === '') throw malformed(command, 'it printed nothing on stdout');
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!/^[[{]/.test(lines[i])) continue;
    try {
      return JSON.parse(lines.slice(i).join('\n'));
    } catch {
      // An opening line inside the document (or in the logs before it): keep looking further up.
    }
  }
  throw malformed(command, 'its output holds no JSON document');
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, command: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw malformed(command, `${issue.path.join('.') || 'the document'}: ${issue.message}`);
  }
  return result.data;
}

function malformed(command: string, what: string): AptibleOutputError {
  return new AptibleOutputError(
    `unexpected output from \`aptible ${command}\` (${redact(what)}); pgshift was built against aptible-cli ` +
      '0.26: check `aptible version`, and update the CLI or pgshift',
  );
}

/** `aptible db:versions`: the PostgreSQL versions, in the API's order. */
export function parseVersions(stdout: string): string[] {
  const rows = parseWith(versionsSchema, trailingJson(stdout, 'db:versions'), 'db:versions');
  return rows.filter((r) => r.type === 'postgresql').map((r) => r.version);
}

/** `aptible apps`: every service of every app, with its container count. */
export function parseApps(stdout: string): AptibleService[] {
  const apps = parseWith(appsSchema, trailingJson(stdout, 'apps'), 'apps');
  return apps.flatMap((a) =>
    a.services.map((s) => ({
      app: a.handle,
      environment: a.environment.handle,
      service: s.service,
      containerCount: s.container_count ?? 0,
      containerSizeMb: s.container_size ?? undefined,
    })),
  );
}

function toDatabase(d: z.infer<typeof databaseSchema>): AptibleDatabase {
  return {
    id: d.id,
    handle: d.handle,
    environment: d.environment.handle,
    type: d.type ?? undefined,
    version: d.version ?? undefined,
    status: d.status ?? undefined,
    diskSizeGb: d.disk_size ?? undefined,
    containerSizeMb: d.container_size ?? undefined,
    createdAt: d.created_at ? parseAptibleTime(d.created_at, 'db:list') : undefined,
  };
}

/** `aptible db:list`: the databases, without their connection URLs (secrets, dropped here). */
export function parseDatabases(stdout: string): AptibleDatabase[] {
  const rows = trailingJson(stdout, 'db:list');
  // RDS entries ({id, handle: "aws:rds::…", created_at, environment}) have no type: not ours to touch.
  const list = parseWith(z.array(z.unknown()), rows, 'db:list').filter(
    (r) => typeof r === 'object' && r !== null && 'type' in r,
  );
  return parseWith(databasesSchema, list, 'db:list').map(toDatabase);
}

/** `aptible db:create` / `aptible backup:restore`: the database made (render_database). */
export function parseDatabase(stdout: string, command: string): AptibleDatabase {
  return toDatabase(parseWith(databaseSchema, trailingJson(stdout, command), command));
}

/** `aptible db:url`: SECRET. */
export function parseDatabaseUrl(stdout: string): string {
  return parseWith(urlSchema, trailingJson(stdout, 'db:url'), 'db:url').connection_url;
}

/** `aptible config`: SECRET values. */
export function parseConfig(stdout: string): Record<string, string> {
  const rows = parseWith(configSchema, trailingJson(stdout, 'config'), 'config');
  return Object.fromEntries(rows.map((r) => [r.key, r.value ?? '']));
}

/** `aptible backup:list`, newest first as the API returns them. */
export function parseBackups(stdout: string): AptibleBackup[] {
  return parseWith(backupsSchema, trailingJson(stdout, 'backup:list'), 'backup:list').map((b) => ({
    id: b.id,
    createdAt: parseAptibleTime(b.created_at, 'backup:list'),
    sizeGb: b.size ?? undefined,
    copy: b.copied_from !== undefined && b.copied_from !== null,
  }));
}

/** `aptible backup:orphaned`: final backups of deprovisioned databases. */
export function parseOrphanedBackups(stdout: string): AptibleOrphanedBackup[] {
  return parseWith(orphanedSchema, trailingJson(stdout, 'backup:orphaned'), 'backup:orphaned').map((b) => ({
    id: b.id,
    createdAt: parseAptibleTime(b.created_at, 'backup:orphaned'),
    sizeGb: b.size ?? undefined,
    copy: b.copied_from !== undefined && b.copied_from !== null,
    databaseHandle: b.database.handle,
    environment: b.database.environment.handle,
  }));
}

/** Ruby's Time#to_s ("2016-06-14 13:24:11 UTC"), as the JSON renderer prints times; ISO is accepted too. */
export function parseAptibleTime(text: string, command: string): string {
  const ruby = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) (UTC|[+-]\d{4})$/.exec(text);
  const iso = ruby
    ? `${ruby[1]}T${ruby[2]}${ruby[3] === 'UTC' ? 'Z' : `${ruby[3].slice(0, 3)}:${ruby[3].slice(3)}`}`
    : text;
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw malformed(command, `"${text}" is not a time`);
  return new Date(ms).toISOString();
}

/** What `aptible db:tunnel` prints on stderr once the tunnel is up (subcommands/db.rb, helpers/database.rb). */
export interface TunnelEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  url: string;
}

const CONNECT_AT = /^Connect at (\S+)\s*$/;
export const TUNNEL_READY = 'Connected. Ctrl-C to close connection.';

/** The URL of a "Connect at postgresql://…" line; undefined for any other line. SECRET. */
export function parseConnectLine(line: string): TunnelEndpoint | undefined {
  const m = CONNECT_AT.exec(line);
  if (!m) return undefined;
  let url: URL;
  try {
    url = new URL(m[1]);
  } catch {
    throw malformed('db:tunnel', 'its "Connect at" line holds no URL');
  }
  const port = Number(url.port);
  if (!/^postgres(ql)?:$/.test(url.protocol) || !url.hostname || !Number.isInteger(port) || port <= 0) {
    throw malformed('db:tunnel', 'its "Connect at" line is not a postgresql://user:password@host:port URL');
  }
  return {
    host: url.hostname,
    port,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.replace(/^\//, '')) || 'db',
    url: m[1],
  };
}
