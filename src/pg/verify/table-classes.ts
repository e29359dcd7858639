// Catalog classes of tables and what hangs on them: relations with their columns, sequences' definitions,
// indexes, constraints, triggers, policies and rules.
import type { CatalogClass } from './fingerprint';
import {
  aclJson,
  notExtensionMember,
  plainAclJson,
  qualified,
  roleName,
  sortedJson,
  userSchema,
} from './sql';

const RELATION_WORD = `CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
  WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' END`;

/** Relations of user schemas that are not an extension's, nor another session's temporary ones. */
function userRelations(kinds: string, from = 'FROM pg_class c'): string {
  return `${from} JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN (${kinds}) AND c.relpersistence <> 't' AND ${userSchema('n')}
     AND ${notExtensionMember('pg_class', 'c.oid')}`;
}

function columns(major: number): string {
  return `coalesce((SELECT jsonb_object_agg('column ' || quote_ident(a.attname), jsonb_build_object(
      'type', format_type(a.atttypid, a.atttypmod),
      'not null', a.attnotnull,
      'default', pg_get_expr(d.adbin, d.adrelid),
      'identity', a.attidentity,
      'generated', a.attgenerated,
      'collation', CASE WHEN a.attcollation <> t.typcollation
        THEN (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END,
      'storage', a.attstorage,
      ${major >= 14 ? `'compression', nullif(a.attcompression, ''),` : ''}
      'statistics target', a.attstattarget,
      'options', ${sortedJson('a.attoptions')},
      'foreign options', ${sortedJson('a.attfdwoptions')},
      'privileges', ${plainAclJson('a.attacl')}))
    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}')`;
}

/**
 * Tables, views, materialized views and foreign tables with their columns. The column order of a child
 * table (inheritance or partition) is not compared: pg_dump creates a child with its parent's columns
 * first, so a column added to the parent after the child had its own moves; rows are compared by column
 * name, so no value is hidden by that.
 */
export const relations: CatalogClass = {
  name: 'tables and views',
  sql: (major) => `
  SELECT ${RELATION_WORD} || ' ' || ${qualified('n', 'c.relname')} AS key,
         jsonb_build_object(
           'owner', ${roleName('c.relowner')},
           'privileges', ${aclJson('c.relacl', 'r', 'c.relowner')},
           'persistence', c.relpersistence,
           'options', ${sortedJson('c.reloptions')},
           'row security', c.relrowsecurity,
           'forced row security', c.relforcerowsecurity,
           'replica identity', c.relreplident,
           'partition key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
           'partition bound', pg_get_expr(c.relpartbound, c.oid),
           'parents', (SELECT jsonb_agg(quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) ORDER BY i.inhseqno)
                         FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                         JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid),
           'tablespace', (SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace),
           'access method', (SELECT amname FROM pg_am WHERE oid = c.relam),
           'definition', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
           'server', (SELECT srvname FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver
                       WHERE ft.ftrelid = c.oid),
           'foreign options', (SELECT ${sortedJson('ft.ftoptions')} FROM pg_foreign_table ft WHERE ft.ftrelid = c.oid),
           'column order', CASE WHEN NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) THEN
             (SELECT jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) END
         ) || ${columns(major)} AS props
  ${userRelations(`'r', 'p', 'v', 'm', 'f'`)}`,
};

export const sequenceDefinitions: CatalogClass = {
  name: 'sequence definitions',
  sql: () => `
  SELECT 'sequence ' || ${qualified('n', 'c.relname')} AS key,
         jsonb_build_object(
           'owner', ${roleName('c.relowner')},
           'privileges', ${aclJson('c.relacl', 's', 'c.relowner')},
           'persistence', c.relpersistence,
           'type', format_type(s.seqtypid, NULL),
           'start', s.seqstart::text, 'increment', s.seqincrement::text, 'minimum', s.seqmin::text,
           'maximum', s.seqmax::text, 'cache', s.seqcache::text, 'cycle', s.seqcycle,
           'owned by', (SELECT quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) || '.' || quote_ident(a.attname)
                          FROM pg_depend d JOIN pg_class tc ON tc.oid = d.refobjid
                          JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                          JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
                         LIMIT 1)
         ) AS props
  ${userRelations(`'S'`, 'FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid')}`,
};

/** Indexes of user tables; invalid ones (a failed CREATE INDEX CONCURRENTLY) are not dumped, so not compared. */
export const indexes: CatalogClass = {
  name: 'indexes',
  sql: () => `
  SELECT 'index ' || ${qualified('n', 'ic.relname')} AS key,
         jsonb_build_object(
           'definition', pg_get_indexdef(i.indexrelid),
           'clustered', i.indisclustered,
           'replica identity', i.indisreplident,
           'tablespace', (SELECT spcname FROM pg_tablespace WHERE oid = ic.reltablespace)
         ) AS props
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
   WHERE i.indisvalid AND c.relpersistence <> 't' AND ${userSchema('n')}
     AND ${notExtensionMember('pg_class', 'c.oid')}`,
};

function onTable(name: string): string {
  return `quote_ident(${name}) || ' on ' || ${qualified('n', 'c.relname')}`;
}

const TABLE_JOIN = `JOIN pg_class c ON c.oid = x.rel JOIN pg_namespace n ON n.oid = c.relnamespace`;
const USER_TABLE = `c.relpersistence <> 't' AND ${userSchema('n')} AND ${notExtensionMember('pg_class', 'c.oid')}`;

/**
 * Constraints of tables (a domain's are the domain's: see types). NO INHERIT means something only for CHECK
 * (and NOT NULL) constraints; an index-backed one (primary key, unique, exclusion) is never inherited, and
 * its flag depends on how it was made: a partition's primary key created with the partition is false, one
 * pg_dump adds to the partition and attaches to the parent's is true.
 */
export const constraints: CatalogClass = {
  name: 'constraints',
  sql: () => `
  SELECT 'constraint ' || ${onTable('x.conname')} AS key,
         jsonb_build_object(
           'type', x.contype,
           'definition', pg_get_constraintdef(x.oid),
           'deferrable', x.condeferrable, 'deferred', x.condeferred, 'validated', x.convalidated,
           'no inherit', CASE WHEN x.contype IN ('c', 'n') THEN x.connoinherit END,
           'local', x.conislocal, 'inherited', x.coninhcount
         ) AS props
    FROM (SELECT *, conrelid AS rel FROM pg_constraint WHERE conrelid <> 0) x ${TABLE_JOIN}
   WHERE ${USER_TABLE}`,
};

export const triggers: CatalogClass = {
  name: 'triggers',
  sql: () => `
  SELECT 'trigger ' || ${onTable('x.tgname')} AS key,
         jsonb_build_object('definition', pg_get_triggerdef(x.oid), 'enabled', x.tgenabled) AS props
    FROM (SELECT *, tgrelid AS rel FROM pg_trigger WHERE NOT tgisinternal) x ${TABLE_JOIN}
   WHERE ${USER_TABLE}`,
};

export const policies: CatalogClass = {
  name: 'policies',
  sql: () => `
  SELECT 'policy ' || ${onTable('x.polname')} AS key,
         jsonb_build_object(
           'command', x.polcmd, 'permissive', x.polpermissive,
           'roles', (SELECT jsonb_agg(u.name ORDER BY u.name COLLATE "C")
                       FROM (SELECT CASE WHEN r = 0 THEN 'public' ELSE ${roleName('r')} END AS name
                               FROM unnest(x.polroles) r) u),
           'using', pg_get_expr(x.polqual, x.polrelid),
           'with check', pg_get_expr(x.polwithcheck, x.polrelid)
         ) AS props
    FROM (SELECT *, polrelid AS rel FROM pg_policy) x ${TABLE_JOIN}
   WHERE ${USER_TABLE}`,
};

/** Rules other than the ones that make a view a view (_RETURN, compared as the view's definition). */
export const rules: CatalogClass = {
  name: 'rules',
  sql: () => `
  SELECT 'rule ' || ${onTable('x.rulename')} AS key,
         jsonb_build_object('definition', pg_get_ruledef(x.oid), 'enabled', x.ev_enabled) AS props
    FROM (SELECT *, ev_class AS rel FROM pg_rewrite WHERE rulename <> '_RETURN') x ${TABLE_JOIN}
   WHERE ${USER_TABLE}`,
};
