// Catalog classes of the rest of a database: schemas, extensions, comments and security labels, default
// privileges, event triggers, publications, statistics objects, foreign data, and the object kinds that
// are only checked to exist with their owner (operators, collations, text search objects, casts...).
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

export const schemas: CatalogClass = {
  name: 'schemas',
  sql: () => `
  SELECT 'schema ' || quote_ident(n.nspname) AS key,
         jsonb_build_object('owner', ${roleName('n.nspowner')}, 'privileges', ${aclJson('n.nspacl', 'n', 'n.nspowner')}) AS props
    FROM pg_namespace n
   WHERE ${userSchema('n')} AND ${notExtensionMember('pg_namespace', 'n.oid')}`,
};

/** Not the owner: a restore creates an extension as the restoring role, and pg_dump has no way to set it. */
export const extensions: CatalogClass = {
  name: 'extensions',
  sql: () => `
  SELECT 'extension ' || quote_ident(x.extname) AS key,
         jsonb_build_object('schema', (SELECT nspname FROM pg_namespace WHERE oid = x.extnamespace),
                            'relocatable', x.extrelocatable, 'version', x.extversion) AS props
    FROM pg_extension x`,
};

// Comments of user objects: initdb's own objects have OIDs below 16384 (FirstNormalObjectId), except the
// public schema (2200), which is the user's to comment on, and large objects, whose OIDs anyone may choose.
const USER_DESCRIBED = `(d.objoid >= 16384 OR d.classoid = 'pg_largeobject'::regclass
  OR (d.classoid = 'pg_namespace'::regclass AND d.objoid = 2200))`;

export const comments: CatalogClass = {
  name: 'comments',
  sql: () => `
  SELECT 'comment on ' || o.type || ' ' || o.identity AS key, jsonb_build_object('text', d.description) AS props
    FROM pg_description d, LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
   WHERE ${USER_DESCRIBED}
     AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.classoid AND e.objid = d.objoid AND e.deptype = 'e')
     AND (o.schema IS NULL OR o.schema NOT IN ('pg_catalog', 'information_schema'))
  UNION ALL
  SELECT 'security label (' || d.provider || ') on ' || o.type || ' ' || o.identity,
         jsonb_build_object('text', d.label)
    FROM pg_seclabel d, LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
   WHERE ${USER_DESCRIBED}`,
};

const DEFAULT_ACL_KIND = `CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
  WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' WHEN 'L' THEN 'large objects' ELSE d.defaclobjtype::text END`;

export const defaultPrivileges: CatalogClass = {
  name: 'default privileges',
  sql: () => `
  SELECT 'default privileges of ' || quote_ident(${roleName('d.defaclrole')})
           || coalesce(' in schema ' || quote_ident(n.nspname), '') || ' on ' || ${DEFAULT_ACL_KIND} AS key,
         jsonb_build_object('kind', d.defaclobjtype, 'privileges', ${plainAclJson('d.defaclacl')}) AS props
    FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace`,
};

export const eventTriggers: CatalogClass = {
  name: 'event triggers',
  sql: () => `
  SELECT 'event trigger ' || quote_ident(e.evtname) AS key,
         jsonb_build_object('event', e.evtevent, 'owner', ${roleName('e.evtowner')},
                            'function', e.evtfoid::regprocedure::text, 'enabled', e.evtenabled,
                            'tags', ${sortedJson('e.evttags')}) AS props
    FROM pg_event_trigger e
   WHERE ${notExtensionMember('pg_event_trigger', 'e.oid')}`,
};

export const publications: CatalogClass = {
  name: 'publications',
  sql: (major) => `
  SELECT 'publication ' || quote_ident(p.pubname) AS key,
         jsonb_build_object(
           'owner', ${roleName('p.pubowner')}, 'all tables', p.puballtables,
           'operations', jsonb_build_object('insert', p.pubinsert, 'update', p.pubupdate,
                                           'delete', p.pubdelete, 'truncate', p.pubtruncate),
           'via root', p.pubviaroot,
           'tables', (SELECT jsonb_agg(t.entry ORDER BY t.entry COLLATE "C") FROM (
               SELECT ${qualified('n', 'c.relname')}
                      ${major >= 15 ? `|| coalesce(' (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs)) || ')', '') || coalesce(' WHERE ' || pg_get_expr(r.prqual, r.prrelid), '')` : ''} AS entry
                 FROM pg_publication_rel r JOIN pg_class c ON c.oid = r.prrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE r.prpubid = p.oid) t),
           'schemas', ${
             major >= 15
               ? `(SELECT jsonb_agg(quote_ident(n.nspname) ORDER BY n.nspname COLLATE "C")
                     FROM pg_publication_namespace pn JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE pn.pnpubid = p.oid)`
               : 'NULL'
           }
         ) AS props
    FROM pg_publication p`,
};

export const statisticsObjects: CatalogClass = {
  name: 'statistics objects',
  sql: () => `
  SELECT 'statistics object ' || ${qualified('n', 's.stxname')} AS key,
         jsonb_build_object('definition', pg_get_statisticsobjdef(s.oid), 'owner', ${roleName('s.stxowner')},
                            'statistics target', s.stxstattarget) AS props
    FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
   WHERE ${userSchema('n')} AND ${notExtensionMember('pg_statistic_ext', 's.oid')}`,
};

/**
 * Wrappers, servers and user mappings. Options may hold a password (a user mapping's usually does): they
 * are compared as a hash and never printed.
 */
export const foreignData: CatalogClass = {
  name: 'foreign data',
  sql: () => `
  SELECT 'foreign-data wrapper ' || quote_ident(w.fdwname) AS key,
         jsonb_build_object('owner', ${roleName('w.fdwowner')}, 'handler', w.fdwhandler::regproc::text,
                            'validator', w.fdwvalidator::regproc::text, 'options', md5(${sortedJson('w.fdwoptions')}::text),
                            'privileges', ${aclJson('w.fdwacl', 'F', 'w.fdwowner')}) AS props
    FROM pg_foreign_data_wrapper w
   WHERE ${notExtensionMember('pg_foreign_data_wrapper', 'w.oid')}
  UNION ALL
  SELECT 'server ' || quote_ident(s.srvname),
         jsonb_build_object('owner', ${roleName('s.srvowner')},
                            'wrapper', (SELECT fdwname FROM pg_foreign_data_wrapper WHERE oid = s.srvfdw),
                            'type', s.srvtype, 'version', s.srvversion, 'options', md5(${sortedJson('s.srvoptions')}::text),
                            'privileges', ${aclJson('s.srvacl', 'S', 's.srvowner')})
    FROM pg_foreign_server s
   WHERE ${notExtensionMember('pg_foreign_server', 's.oid')}
  UNION ALL
  SELECT 'user mapping for ' || quote_ident(m.usename) || ' on server ' || quote_ident(m.srvname),
         jsonb_build_object('options', md5(${sortedJson('m.umoptions')}::text))
    FROM pg_user_mappings m`,
};

// The remaining kinds a user can create, compared by name and owner. Each: catalog, OID column, owner
// column (or NULL when the kind has no owner).
const OTHER_KINDS: [string, string | null][] = [
  ['pg_operator', 'oprowner'],
  ['pg_opclass', 'opcowner'],
  ['pg_opfamily', 'opfowner'],
  ['pg_collation', 'collowner'],
  ['pg_conversion', 'conowner'],
  ['pg_ts_config', 'cfgowner'],
  ['pg_ts_dict', 'dictowner'],
  ['pg_ts_parser', null],
  ['pg_ts_template', null],
  ['pg_cast', null],
  ['pg_transform', null],
  ['pg_am', null],
];

export const otherObjects: CatalogClass = {
  name: 'other objects',
  sql: () => `
  SELECT o.type || ' ' || o.identity AS key, jsonb_build_object('owner', x.owner) AS props
    FROM (${OTHER_KINDS.map(
      ([catalog, owner]) =>
        `SELECT '${catalog}'::regclass AS classid, oid, ${owner ? roleName(owner) : 'NULL::name'} AS owner FROM ${catalog} WHERE oid >= 16384`,
    ).join(' UNION ALL ')}) x,
         LATERAL pg_identify_object(x.classid, x.oid, 0) o
   WHERE NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = x.classid AND e.objid = x.oid AND e.deptype = 'e')`,
};
