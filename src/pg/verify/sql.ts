// SQL fragments the catalog queries share. Every session runs with search_path = pg_catalog (session.ts),
// so built-in names resolve to pg_catalog and user objects print schema-qualified.

/** Schemas that hold user objects: not the system's, not another session's temporary schema. */
export function userSchema(nsp: string): string {
  return `${nsp}.nspname NOT IN ('pg_catalog', 'information_schema') AND ${nsp}.nspname !~ '^pg_(toast|temp_|toast_temp_)'`;
}

/** Objects an extension created are the extension's: its script makes them again on the target. */
export function notExtensionMember(catalog: string, oid: string): string {
  return `NOT EXISTS (SELECT 1 FROM pg_depend x_dep WHERE x_dep.classid = '${catalog}'::regclass AND x_dep.objid = ${oid} AND x_dep.deptype = 'e')`;
}

/**
 * An ACL as a sorted JSON array of aclitems. NULL means "the default for this kind of object", which a
 * restore may spell out explicitly: acldefault() makes the two the same.
 */
export function aclJson(acl: string, kind: string, owner: string): string {
  return `(SELECT coalesce(jsonb_agg(a::text ORDER BY a::text COLLATE "C"), '[]') FROM unnest(coalesce(${acl}, acldefault('${kind}', ${owner}))) a)`;
}

/** An ACL that has no default (column privileges, default privileges): NULL stays an empty list. */
export function plainAclJson(acl: string): string {
  return `(SELECT coalesce(jsonb_agg(a::text ORDER BY a::text COLLATE "C"), '[]') FROM unnest(${acl}) a)`;
}

/** A text array (options, settings) as a sorted JSON array, so the order options were given in is moot. */
export function sortedJson(array: string): string {
  return `(SELECT coalesce(jsonb_agg(x ORDER BY x COLLATE "C"), '[]') FROM unnest(${array}) x)`;
}

export function qualified(nsp: string, name: string): string {
  return `quote_ident(${nsp}.nspname) || '.' || quote_ident(${name})`;
}

export function roleName(oid: string): string {
  return `pg_get_userbyid(${oid})`;
}
