import type { Client } from 'pg';
import { type PgTarget, quoteIdent, quoteLiteral, withClient } from './connection';

export interface ResetOptions {
  /** The platform's admin role (the one connecting); it is kept, with its password. */
  adminRole: string;
  /** Further roles the platform itself creates on every server, kept as well. */
  keepRoles?: readonly string[];
}

export interface ResetOutcome {
  droppedDatabases: string[];
  recreatedDatabases: string[];
  droppedRoles: string[];
}

interface DatabaseShape {
  name: string;
  owner: string;
  encoding: string;
  collate: string;
  ctype: string;
}

/**
 * Puts a target server back into the state the platform created it in, so that a retried restore does what
 * the first attempt would have done (a restore on top of a partial one would duplicate every COPY'd row, and
 * fail on every object that already exists).
 *
 * This is destructive by design and safe only because it runs solely on a target that this migration created
 * (the platform records the creator; the caller checks it) and before the services are pointed at it: nothing
 * on it but what an earlier attempt of this same restore wrote. It must never be called on a source.
 *
 * - every database except template0 is dropped; the platform's default database, `postgres` and template1
 *   are recreated empty from template0 with their encoding and locale (template1 too, because the dump
 *   restores objects the source kept in its template1 there, and a second restore would find them);
 * - every role except the admin role, `postgres`, `keepRoles`, the bootstrap superuser and the built-in
 *   `pg_*` roles is dropped.
 */
export async function resetTarget(target: PgTarget, opts: ResetOptions): Promise<ResetOutcome> {
  const keepDatabases = [...new Set([target.database, 'postgres'])];
  const keepRoles = new Set([opts.adminRole, 'postgres', ...(opts.keepRoles ?? [])]);
  const outcome: ResetOutcome = { droppedDatabases: [], recreatedDatabases: [], droppedRoles: [] };

  // template1 is the one database guaranteed to exist on every server, whatever a partial restore did.
  const shapes = await withClient(target, 'template1', async (client) => {
    const force = (await serverMajor(client)) >= 13;
    const all = await databaseShapes(client);
    for (const db of all) {
      if (db.name === 'template0' || db.name === 'template1' || keepDatabases.includes(db.name)) continue;
      await dropDatabase(target, client, db.name, force);
      outcome.droppedDatabases.push(db.name);
    }
    for (const name of keepDatabases) {
      const shape = all.find((d) => d.name === name);
      if (shape) await dropDatabase(target, client, name, force);
      await createDatabase(
        client,
        name,
        shape ?? (await defaultShape(client, name)),
        keepRoles,
        opts.adminRole,
      );
      outcome.recreatedDatabases.push(name);
    }
    return all;
  });

  // template1 can only be replaced from another database.
  await withClient(target, 'postgres', async (client) => {
    const force = (await serverMajor(client)) >= 13;
    const shape = shapes.find((d) => d.name === 'template1');
    if (shape) {
      await client.query('ALTER DATABASE template1 IS_TEMPLATE false');
      await dropDatabase(target, client, 'template1', force);
      await createDatabase(client, 'template1', shape, keepRoles, opts.adminRole);
      await client.query('ALTER DATABASE template1 IS_TEMPLATE true');
      outcome.recreatedDatabases.push('template1');
    }

    const { rows } = await client.query<{ rolname: string }>(
      // oid 10 is the bootstrap superuser initdb created, which cannot be dropped whatever its name.
      `SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND oid <> 10 AND rolname <> ALL($1::text[]) ORDER BY rolname`,
      [[...keepRoles]],
    );
    const roles = rows.map((r) => r.rolname);
    if (roles.length > 0) {
      const list = roles.map(quoteIdent).join(', ');
      // Every database is fresh now, so what remains are privileges on shared objects (GRANT ... ON DATABASE,
      // role memberships they granted); DROP OWNED revokes them. One statement for all, as roles may depend
      // on each other.
      await client.query(`DROP OWNED BY ${list}`);
      await client.query(`DROP ROLE ${list}`);
      outcome.droppedRoles.push(...roles);
    }
  });
  return outcome;
}

/**
 * Whether the target holds only what a fresh server holds: no database but template0, template1, `postgres`
 * and the platform's own; no role but the kept ones; no per-database or per-role settings; and in each of
 * those databases no object of a user's (every catalog row a restore makes has an oid past the bootstrap
 * range). For a target the migration created moments ago and nothing has restored into yet (the workflow
 * says so), this check stands in for resetTarget, which costs half a second inside the downtime; anything
 * else (an earlier restore the workflow forgot after a reset of its history, objects a platform adds), and
 * the caller resets after all, so a first restore and a retry start from the same place.
 */
export async function isPristine(target: PgTarget, opts: ResetOptions): Promise<boolean> {
  const keepDatabases = ['template1', 'postgres', target.database];
  const keepRoles = [opts.adminRole, 'postgres', ...(opts.keepRoles ?? [])];
  const serverWide = withClient(target, target.database, async (client) => {
    const { rows } = await client.query<{ extra: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname <> ALL($1::text[]))
           OR EXISTS (SELECT 1 FROM pg_roles
                       WHERE rolname !~ '^pg_' AND oid <> 10 AND rolname <> ALL($2::text[]))
           OR EXISTS (SELECT 1 FROM pg_db_role_setting)
           OR EXISTS (SELECT 1 FROM pg_tablespace WHERE oid >= ${FIRST_NORMAL_OID}) AS extra`,
      [['template0', ...keepDatabases], keepRoles],
    );
    return !rows[0].extra;
  });
  const inside = [...new Set(keepDatabases)].map((db) =>
    withClient(target, db, async (client) => {
      const { rows } = await client.query<{ extra: boolean }>(
        `SELECT ${USER_CATALOGS.map((c) => `EXISTS (SELECT 1 FROM ${c} WHERE oid >= ${FIRST_NORMAL_OID})`).join(' OR ')}
             OR EXISTS (SELECT 1 FROM pg_largeobject_metadata) AS extra`,
      );
      return !rows[0].extra;
    }),
  );
  // A database missing or closed to connections is no fresh server's: reset, as a retry would.
  const answers = await Promise.allSettled([serverWide, ...inside]);
  return answers.every((a) => a.status === 'fulfilled' && a.value);
}

/** Where a restore leaves rows of its own in a database, before any table or data. */
const USER_CATALOGS = ['pg_namespace', 'pg_class', 'pg_type', 'pg_proc', 'pg_collation', 'pg_extension'];

/** FirstNormalObjectId: oids below it are initdb's own. */
const FIRST_NORMAL_OID = 16384;

async function serverMajor(client: Client): Promise<number> {
  const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  return Math.floor(Number(rows[0].v) / 10000);
}

async function databaseShapes(client: Client): Promise<DatabaseShape[]> {
  const { rows } = await client.query<DatabaseShape>(
    `SELECT d.datname AS name, pg_get_userbyid(d.datdba) AS owner, pg_encoding_to_char(d.encoding) AS encoding,
            d.datcollate AS collate, d.datctype AS ctype
       FROM pg_database d ORDER BY d.datname`,
  );
  return rows;
}

/** A kept database missing altogether (a partial restore cannot drop one, but an operator might): as template0. */
async function defaultShape(client: Client, name: string): Promise<DatabaseShape> {
  const { rows } = await client.query<DatabaseShape>(
    `SELECT $1::text AS name, '' AS owner, pg_encoding_to_char(encoding) AS encoding,
            datcollate AS collate, datctype AS ctype
       FROM pg_database WHERE datname = 'template0'`,
    [name],
  );
  return rows[0];
}

async function dropDatabase(target: PgTarget, client: Client, name: string, force: boolean): Promise<void> {
  await dropSubscriptions(target, client, name);
  // Sessions a killed restore left behind would block the drop; before 13 they must be ended by hand.
  await client.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [name],
  );
  // A restored database may be a template (IS_TEMPLATE true), which DROP DATABASE refuses.
  const template = await client.query('SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate', [
    name,
  ]);
  if (template.rowCount) await client.query(`ALTER DATABASE ${quoteIdent(name)} IS_TEMPLATE false`);
  await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)}${force ? ' WITH (FORCE)' : ''}`);
}

/**
 * A restored subscription (pg_dump writes them disabled) keeps its database from being dropped. It is
 * detached from its slot first, so dropping it never touches the publisher, whose slot the source's own
 * subscription still uses.
 */
async function dropSubscriptions(target: PgTarget, client: Client, database: string): Promise<void> {
  const { rows: since10 } = await client.query<{ ok: boolean }>(
    `SELECT to_regclass('pg_catalog.pg_subscription') IS NOT NULL AS ok`,
  );
  if (!since10[0].ok) return;
  const { rows } = await client.query<{ name: string }>(
    `SELECT s.subname AS name FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = $1`,
    [database],
  );
  if (rows.length === 0) return;
  await withClient(target, database, async (db) => {
    for (const { name } of rows) {
      const sub = quoteIdent(name);
      await db.query(`ALTER SUBSCRIPTION ${sub} DISABLE`);
      await db.query(`ALTER SUBSCRIPTION ${sub} SET (slot_name = NONE)`);
      await db.query(`DROP SUBSCRIPTION ${sub}`);
    }
  });
}

/**
 * Recreated from template0 (template1 may hold what a partial restore put there) with the same encoding and
 * locale. The owner stays if it is a role the reset keeps; else (a restore's ALTER DATABASE ... OWNER TO moved
 * it to a role about to be dropped) it is the admin role, as the platform creates it.
 */
async function createDatabase(
  client: Client,
  name: string,
  shape: DatabaseShape,
  keepRoles: Set<string>,
  adminRole: string,
): Promise<void> {
  const owner = keepRoles.has(shape.owner) ? shape.owner : adminRole;
  await client.query(
    `CREATE DATABASE ${quoteIdent(name)} OWNER ${quoteIdent(owner)} TEMPLATE template0 ` +
      `ENCODING ${quoteLiteral(shape.encoding)} LC_COLLATE ${quoteLiteral(shape.collate)} LC_CTYPE ${quoteLiteral(shape.ctype)}`,
  );
}
