// pg_dumpall restores `postgres` and `template1` into the databases the target already has (pg_dump without
// --create), so their own properties never reach the dump: comment, ALTER DATABASE ... SET settings, the
// roles' settings in them, privileges, connection limit, owner. They are read from the source here and
// applied to the target after the restore. The statements converge: applying them twice (a retried
// restore) gives the same target as applying them once.
import { DatabaseError, type Client } from 'pg';
import { type PgTarget, quoteIdent, withClient } from './connection';

/** The databases a pg_dumpall restore finds on the target instead of creating them. */
export const PRE_EXISTING_DATABASES = ['postgres', 'template1'] as const;

export interface AclItem {
  grantor: string;
  /** undefined: PUBLIC. */
  grantee?: string;
  privilege: string;
  grantable: boolean;
}

export interface DatabaseProperties {
  name: string;
  owner: string;
  comment: string | null;
  connectionLimit: number;
  /** The privileges as aclexplode lists them; null when the database has the default ones (datacl null). */
  acl: AclItem[] | null;
  /** `name=value` items of ALTER DATABASE ... SET, as pg_db_role_setting holds them. */
  settings: string[];
  /** Per role, its `name=value` items of ALTER ROLE ... IN DATABASE ... SET. */
  roleSettings: { role: string; settings: string[] }[];
}

/** What the target has now that the statements must converge from. */
export interface TargetDatabaseState {
  /** Roles that exist on the target. */
  roles: ReadonlySet<string>;
  /** Whether its privileges are the default ones (datacl null). */
  defaultAcl: boolean;
  /** Roles holding privileges on it (PUBLIC aside). */
  grantees: string[];
  /** Roles with settings in it. */
  rolesWithSettings: string[];
}

interface RawProperties {
  name: string;
  owner: string;
  comment: string | null;
  connection_limit: number;
  default_acl: boolean;
  acl: AclItem[] | null;
  settings: string[] | null;
  role_settings: { role: string; settings: string[] }[] | null;
}

/** The properties of `names` on the source (those that exist there), read from the shared catalogs. */
export async function readDatabaseProperties(
  source: PgTarget,
  names: readonly string[] = PRE_EXISTING_DATABASES,
): Promise<DatabaseProperties[]> {
  return withClient(source, source.database, async (c) => {
    const { rows } = await c.query<RawProperties>(
      `SELECT d.datname AS name, pg_get_userbyid(d.datdba) AS owner,
              shobj_description(d.oid, 'pg_database') AS comment, d.datconnlimit AS connection_limit,
              d.datacl IS NULL AS default_acl,
              (SELECT json_agg(json_build_object(
                        'grantor', pg_get_userbyid(a.grantor),
                        'grantee', CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END,
                        'privilege', a.privilege_type, 'grantable', a.is_grantable) ORDER BY a.n)
                 FROM aclexplode(d.datacl) WITH ORDINALITY AS a(grantor, grantee, privilege_type, is_grantable, n)
              ) AS acl,
              (SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0) AS settings,
              (SELECT json_agg(json_build_object('role', r.rolname, 'settings', s.setconfig) ORDER BY r.rolname)
                 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
                WHERE s.setdatabase = d.oid) AS role_settings
         FROM pg_database d WHERE d.datname = ANY($1::text[]) ORDER BY d.datname`,
      [[...names]],
    );
    return rows.map((r) => ({
      name: r.name,
      owner: r.owner,
      comment: r.comment,
      connectionLimit: r.connection_limit,
      acl: r.default_acl ? null : (r.acl ?? []).map((a) => ({ ...a, grantee: a.grantee ?? undefined })),
      settings: r.settings ?? [],
      roleSettings: r.role_settings ?? [],
    }));
  });
}

/**
 * Applies the source's properties of `postgres` and `template1` to the target, statement by statement like
 * psql runs a dump. Returns the server's errors as psql prints them (`ERROR:  ...`), for the caller to
 * classify like the restore's; a lost connection throws (a retry applies everything again).
 */
export async function carryDatabaseProperties(source: PgTarget, target: PgTarget): Promise<string[]> {
  const properties = await readDatabaseProperties(source);
  return withClient(target, target.database, async (c) => {
    const errors: string[] = [];
    for (const p of properties) {
      const state = await readTargetState(c, p.name);
      if (!state) {
        errors.push(`ERROR:  database "${p.name}" does not exist\nCONTEXT:  carrying its properties`);
        continue;
      }
      for (const statement of propertyStatements(p, state)) {
        try {
          await c.query(statement);
        } catch (err) {
          if (!(err instanceof DatabaseError) || err.severity !== 'ERROR') throw err;
          errors.push(`ERROR:  ${err.message}\nCONTEXT:  carrying the properties of database "${p.name}"`);
        }
      }
    }
    return errors;
  });
}

async function readTargetState(c: Client, name: string): Promise<TargetDatabaseState | undefined> {
  const { rows } = await c.query<{
    default_acl: boolean;
    grantees: string[];
    roles_with_settings: string[];
    roles: string[];
  }>(
    `SELECT d.datacl IS NULL AS default_acl,
            ARRAY(SELECT DISTINCT pg_get_userbyid(a.grantee)::text FROM aclexplode(d.datacl) a
                   WHERE a.grantee <> 0 ORDER BY 1) AS grantees,
            ARRAY(SELECT r.rolname::text FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
                   WHERE s.setdatabase = d.oid ORDER BY 1) AS roles_with_settings,
            ARRAY(SELECT rolname::text FROM pg_roles) AS roles
       FROM pg_database d WHERE d.datname = $1`,
    [name],
  );
  if (rows.length === 0) return undefined;
  const r = rows[0];
  return {
    roles: new Set(r.roles),
    defaultAcl: r.default_acl,
    grantees: r.grantees,
    rolesWithSettings: r.roles_with_settings,
  };
}

const DATABASE_PRIVILEGES = new Set(['CREATE', 'CONNECT', 'TEMPORARY']);

/**
 * The statements that give the target's database the source's properties, from whatever it has now. Each
 * string is one query; a multi-statement one (a grant made by a role other than the owner) runs atomically.
 */
export function propertyStatements(p: DatabaseProperties, target: TargetDatabaseState): string[] {
  const db = quoteIdent(p.name);
  const out: string[] = [];
  // Owner first: privileges granted by the owner are recorded with it as their grantor.
  if (target.roles.has(p.owner)) out.push(`ALTER DATABASE ${db} OWNER TO ${quoteIdent(p.owner)}`);
  out.push(`COMMENT ON DATABASE ${db} IS ${p.comment === null ? 'NULL' : sqlLiteral(p.comment)}`);
  if (!Number.isInteger(p.connectionLimit) || p.connectionLimit < -1) {
    throw new Error(
      `database "${p.name}" has connection limit ${p.connectionLimit}, which cannot be carried`,
    );
  }
  out.push(`ALTER DATABASE ${db} WITH CONNECTION LIMIT ${p.connectionLimit}`);

  out.push(`ALTER DATABASE ${db} RESET ALL`);
  for (const item of p.settings) out.push(alterConfigCommand(`ALTER DATABASE ${db}`, item));
  const withSettings = new Set(p.roleSettings.map((r) => r.role));
  for (const role of target.rolesWithSettings) {
    if (!withSettings.has(role)) out.push(`ALTER ROLE ${quoteIdent(role)} IN DATABASE ${db} RESET ALL`);
  }
  for (const { role, settings } of p.roleSettings) {
    out.push(`ALTER ROLE ${quoteIdent(role)} IN DATABASE ${db} RESET ALL`);
    for (const item of settings) {
      out.push(alterConfigCommand(`ALTER ROLE ${quoteIdent(role)} IN DATABASE ${db}`, item));
    }
  }

  out.push(...aclStatements(p, target));
  return out;
}

/**
 * Privileges: everything the target's database grants is revoked, then each grant of the source made again,
 * by its grantor. Default privileges on both sides need nothing; default ones on the source only are spelt
 * out (acldefault: CONNECT and TEMPORARY to PUBLIC, all to the owner).
 */
function aclStatements(p: DatabaseProperties, target: TargetDatabaseState): string[] {
  if (p.acl === null && target.defaultAcl) return [];
  const db = quoteIdent(p.name);
  const acl: AclItem[] = p.acl ?? [
    { grantor: p.owner, privilege: 'CONNECT', grantable: false },
    { grantor: p.owner, privilege: 'TEMPORARY', grantable: false },
    ...['CREATE', 'CONNECT', 'TEMPORARY'].map((privilege) => ({
      grantor: p.owner,
      grantee: p.owner,
      privilege,
      grantable: false,
    })),
  ];
  const out = [`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`];
  // The owner too, though it may hold nothing yet: target.grantees was read before the statements ran, and
  // the first REVOKE on a default (NULL) ACL spells out the owner's CTc, as ALTER ... OWNER TO moves the old
  // owner's entries to the new one. Left there, they would stay when the source's owner gave some up.
  // CASCADE: what a grantee granted on with its grant option goes with it.
  const revoked = target.roles.has(p.owner) ? [p.owner] : [];
  revoked.push(...target.grantees.filter((role) => role !== p.owner));
  for (const role of revoked) out.push(`REVOKE ALL ON DATABASE ${db} FROM ${quoteIdent(role)} CASCADE`);

  // One GRANT per grantor, grantee and grant option, owner's first: another grantor needs its grant option.
  const groups = new Map<string, { item: AclItem; privileges: string[] }>();
  for (const item of acl) {
    if (!DATABASE_PRIVILEGES.has(item.privilege)) {
      throw new Error(`database "${p.name}" grants the unknown privilege ${JSON.stringify(item.privilege)}`);
    }
    const key = JSON.stringify([item.grantor, item.grantee ?? null, item.grantable]);
    const group = groups.get(key) ?? { item, privileges: [] };
    group.privileges.push(item.privilege);
    groups.set(key, group);
  }
  const ordered = [...groups.values()].sort(
    (a, b) => Number(a.item.grantor !== p.owner) - Number(b.item.grantor !== p.owner),
  );
  for (const { item, privileges } of ordered) {
    const grantee = item.grantee === undefined ? 'PUBLIC' : quoteIdent(item.grantee);
    const grant =
      `GRANT ${privileges.join(', ')} ON DATABASE ${db} TO ${grantee}` +
      (item.grantable ? ' WITH GRANT OPTION' : '');
    // A superuser's GRANT is recorded as the owner's; another grantor's is made as that role.
    out.push(item.grantor === p.owner ? grant : `SET ROLE ${quoteIdent(item.grantor)}; ${grant}; RESET ROLE`);
  }
  return out;
}

// pg_dump's variable_is_guc_list_quote (dumputils.c): their values are stored already quoted as a list.
const LIST_QUOTE_SETTINGS = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

/**
 * pg_dump's makeAlterConfigCommand: `<prefix> SET name TO value` from a `name=value` item. A list-valued
 * setting (search_path...) is split as the server stored it and each element given as a literal, so
 * `app, "Other Schema"` comes back as the two schemas it was, not as one string.
 */
export function alterConfigCommand(prefix: string, item: string): string {
  const eq = item.indexOf('=');
  if (eq <= 0) throw new Error(`the setting ${JSON.stringify(item)} is not of the form name=value`);
  const name = item.slice(0, eq);
  const value = item.slice(eq + 1);
  let rendered: string;
  if (LIST_QUOTE_SETTINGS.has(name.toLowerCase())) {
    const elements = splitGucList(value);
    if (elements === undefined) throw new Error(`the value of setting ${name} is not a valid list: ${value}`);
    rendered = elements.length ? elements.map(sqlLiteral).join(', ') : "''";
  } else {
    rendered = sqlLiteral(value);
  }
  return `${prefix} SET ${quoteIdent(name)} TO ${rendered}`;
}

const isSpace = (ch: string | undefined) => ch !== undefined && ' \t\n\r\f\v'.includes(ch);

/**
 * pg_dump's SplitGUCList: comma-separated elements, each either double-quoted ("" for a quote) or bare up to
 * a comma or a blank, blanks around them ignored. undefined when the text is not such a list.
 */
export function splitGucList(raw: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (isSpace(raw[i])) i++;
  };
  skipSpace();
  if (i === raw.length) return out;
  for (;;) {
    let element = '';
    if (raw[i] === '"') {
      i++;
      for (;;) {
        const end = raw.indexOf('"', i);
        if (end < 0) return undefined;
        element += raw.slice(i, end);
        i = end + 1;
        if (raw[i] !== '"') break;
        element += '"';
        i++;
      }
    } else {
      const start = i;
      while (i < raw.length && raw[i] !== ',' && !isSpace(raw[i])) i++;
      if (i === start) return undefined;
      element = raw.slice(start, i);
    }
    out.push(element);
    skipSpace();
    if (i === raw.length) return out;
    if (raw[i] !== ',') return undefined;
    i++;
    skipSpace();
  }
}

/**
 * PostgreSQL's quote_literal: right whatever standard_conforming_strings says, since a value with a
 * backslash is written as an E'' string with the backslash doubled.
 */
export function sqlLiteral(value: string): string {
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}
