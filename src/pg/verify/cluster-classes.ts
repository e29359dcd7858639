// Catalog classes of the whole cluster, read once from the maintenance database: roles with their
// settings and comments, memberships, tablespaces, parameter privileges, and each database's properties.
import type { CatalogClass } from './fingerprint';
import { aclJson, roleName, sortedJson } from './sql';
import { BUILTIN_ROLES, databaseLocaleSql, membershipOptionsSql } from './version-differences';

/**
 * Roles and their attributes. `passwords`: whether this session may read pg_authid (a superuser may): the
 * hash is then compared, as its md5 (never printed), except the admin role's, which the restore keeps.
 */
export function roles(passwords: boolean, adminRole: string | undefined): CatalogClass {
  const admin = adminRole === undefined ? 'NULL' : `'${adminRole.replace(/'/g, "''")}'`;
  return {
    name: 'roles',
    sql: () => `
    SELECT 'role ' || quote_ident(r.rolname) AS key,
           jsonb_build_object(
             'superuser', r.rolsuper, 'inherit', r.rolinherit, 'create role', r.rolcreaterole,
             'create database', r.rolcreatedb, 'login', r.rolcanlogin, 'replication', r.rolreplication,
             'bypass row security', r.rolbypassrls, 'connection limit', r.rolconnlimit,
             'valid until', r.rolvaliduntil::text,
             'settings', (SELECT ${sortedJson('s.setconfig')} FROM pg_db_role_setting s
                           WHERE s.setrole = r.oid AND s.setdatabase = 0),
             'comment', shobj_description(r.oid, 'pg_authid'),
             'password', ${
               passwords
                 ? `CASE WHEN r.rolname IS DISTINCT FROM ${admin}
                     THEN (SELECT md5(coalesce(a.rolpassword, '')) FROM pg_authid a WHERE a.oid = r.oid) END`
                 : 'NULL'
             }
           ) AS props
      FROM pg_roles r
     WHERE r.rolname !~ '${BUILTIN_ROLES}'`,
  };
}

export const memberships: CatalogClass = {
  name: 'role memberships',
  sql: (major) => `
  SELECT 'membership of ' || quote_ident(${roleName('m.member')}) || ' in ' || quote_ident(${roleName('m.roleid')})
           || ' granted by ' || quote_ident(${roleName('m.grantor')}) AS key,
         jsonb_build_object('admin option', m.admin_option, ${membershipOptionsSql(major)}) AS props
    FROM pg_auth_members m
   WHERE ${roleName('m.member')} !~ '${BUILTIN_ROLES}'`,
};

/** Not the location, which is a path on each server's own disk. */
export const tablespaces: CatalogClass = {
  name: 'tablespaces',
  sql: () => `
  SELECT 'tablespace ' || quote_ident(t.spcname) AS key,
         jsonb_build_object('owner', ${roleName('t.spcowner')}, 'privileges', ${aclJson('t.spcacl', 't', 't.spcowner')},
                            'options', ${sortedJson('t.spcoptions')},
                            'comment', shobj_description(t.oid, 'pg_tablespace')) AS props
    FROM pg_tablespace t
   WHERE t.spcname NOT IN ('pg_default', 'pg_global')`,
};

/** GRANT SET / ALTER SYSTEM ON PARAMETER (15+): compared only when both servers have them. */
export const parameterPrivileges: CatalogClass = {
  name: 'parameter privileges',
  sql: () => `
  SELECT 'privileges on parameter ' || p.parname AS key, jsonb_build_object('privileges', ${sortedJson('p.paracl::text[]')}) AS props
    FROM pg_parameter_acl p`,
};

/** Every database but template0 (which no one can change), with what CREATE/ALTER DATABASE set. */
export const databaseProperties: CatalogClass = {
  name: 'databases',
  sql: (major) => `
  SELECT d.datname AS key,
         jsonb_build_object(
           'owner', ${roleName('d.datdba')}, 'encoding', pg_encoding_to_char(d.encoding),
           'collate', d.datcollate, 'ctype', d.datctype, ${databaseLocaleSql(major)},
           'connection limit', d.datconnlimit, 'is template', d.datistemplate,
           'allows connections', d.datallowconn,
           'privileges', ${aclJson('d.datacl', 'd', 'd.datdba')},
           'comment', shobj_description(d.oid, 'pg_database'),
           'tablespace', (SELECT spcname FROM pg_tablespace WHERE oid = d.dattablespace),
           'settings', (SELECT ${sortedJson('s.setconfig')} FROM pg_db_role_setting s
                         WHERE s.setdatabase = d.oid AND s.setrole = 0)
         ) || coalesce((SELECT jsonb_object_agg('settings of role ' || quote_ident(${roleName('s.setrole')}),
                                                ${sortedJson('s.setconfig')})
                          FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole <> 0), '{}') AS props
    FROM pg_database d
   WHERE d.datname <> 'template0'`,
};
