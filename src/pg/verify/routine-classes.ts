// Catalog classes of code and types: functions, procedures and aggregates; types and domains; languages.
import type { CatalogClass } from './fingerprint';
import { aclJson, notExtensionMember, roleName, userSchema } from './sql';

const KIND_WORD = `CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
  WHEN 'w' THEN 'window function' END`;

const AGGREGATE = `(SELECT jsonb_build_object(
    'kind', a.aggkind, 'direct arguments', a.aggnumdirectargs,
    'transition', a.aggtransfn::regproc::text, 'final', a.aggfinalfn::regproc::text,
    'final extra', a.aggfinalextra, 'final modify', a.aggfinalmodify,
    'combine', a.aggcombinefn::regproc::text, 'serial', a.aggserialfn::regproc::text,
    'deserial', a.aggdeserialfn::regproc::text, 'moving transition', a.aggmtransfn::regproc::text,
    'moving inverse', a.aggminvtransfn::regproc::text, 'moving final', a.aggmfinalfn::regproc::text,
    'moving final extra', a.aggmfinalextra, 'moving final modify', a.aggmfinalmodify,
    'sort operator', a.aggsortop::regoperator::text, 'state type', format_type(a.aggtranstype, NULL),
    'state space', a.aggtransspace, 'moving state type', format_type(a.aggmtranstype, NULL),
    'moving state space', a.aggmtransspace, 'initial value', a.agginitval, 'moving initial value', a.aggminitval)
  FROM pg_aggregate a WHERE a.aggfnoid = p.oid)`;

/**
 * Functions, procedures and aggregates, keyed by signature. A body in SQL-standard form (14+,
 * BEGIN ATOMIC / RETURN) is stored parsed: it is compared as the server prints it back.
 */
export const routines: CatalogClass = {
  name: 'functions',
  sql: (major) => `
  SELECT ${KIND_WORD} || ' ' || p.oid::regprocedure::text AS key,
         jsonb_build_object(
           'language', (SELECT lanname FROM pg_language WHERE oid = p.prolang),
           'body', ${major >= 14 ? 'CASE WHEN p.prosqlbody IS NULL THEN p.prosrc END' : 'p.prosrc'},
           'sql body', ${major >= 14 ? 'pg_get_function_sqlbody(p.oid)' : 'NULL'},
           'library', p.probin,
           'arguments', pg_get_function_arguments(p.oid),
           'result', pg_get_function_result(p.oid),
           'volatility', p.provolatile, 'strict', p.proisstrict, 'security definer', p.prosecdef,
           'leakproof', p.proleakproof, 'parallel', p.proparallel, 'cost', p.procost::text,
           'rows', p.prorows::text, 'support', p.prosupport::regproc::text,
           'settings', to_jsonb(p.proconfig),
           'owner', ${roleName('p.proowner')},
           'privileges', ${aclJson('p.proacl', 'f', 'p.proowner')},
           'aggregate', ${AGGREGATE}
         ) AS props
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE ${userSchema('n')} AND ${notExtensionMember('pg_proc', 'p.oid')}`,
};

const RANGE = (major: number) => `(SELECT jsonb_build_object(
    'subtype', format_type(r.rngsubtype, NULL),
    'collation', (SELECT collname FROM pg_collation WHERE oid = r.rngcollation),
    'operator class', (SELECT opcname FROM pg_opclass WHERE oid = r.rngsubopc),
    'canonical', r.rngcanonical::regproc::text, 'subtype diff', r.rngsubdiff::regproc::text
    ${major >= 14 ? `, 'multirange', r.rngmultitypid::regtype::text` : ''})
  FROM pg_range r WHERE r.rngtypid = t.oid)`;

/**
 * Types a user made: enums (labels in order), domains (with their constraints), composite, range and base
 * types. Not the ones made along with something else: array types, a table's row type, a range's
 * multirange (named in the range's properties).
 */
export const types: CatalogClass = {
  name: 'types',
  sql: (major) => `
  SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END || ' ' || t.oid::regtype::text AS key,
         jsonb_build_object(
           'kind', t.typtype,
           'owner', ${roleName('t.typowner')},
           'privileges', ${aclJson('t.typacl', 'T', 't.typowner')},
           'labels', (SELECT jsonb_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
           'base type', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
           'not null', t.typnotnull,
           'default', t.typdefault,
           'collation', (SELECT collname FROM pg_collation WHERE oid = t.typcollation),
           'attributes', CASE WHEN t.typtype = 'c' THEN
             (SELECT jsonb_agg(jsonb_build_array(a.attname, format_type(a.atttypid, a.atttypmod),
                                                 (SELECT collname FROM pg_collation WHERE oid = a.attcollation))
                               ORDER BY a.attnum)
                FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END,
           'range', ${RANGE(major)},
           'functions', CASE WHEN t.typtype = 'b' THEN jsonb_build_array(t.typinput::regproc::text,
             t.typoutput::regproc::text, t.typreceive::regproc::text, t.typsend::regproc::text,
             t.typmodin::regproc::text, t.typmodout::regproc::text, t.typanalyze::regproc::text) END,
           'layout', CASE WHEN t.typtype = 'b' THEN jsonb_build_array(t.typlen, t.typbyval, t.typalign,
             t.typstorage, t.typcategory, t.typispreferred, t.typdelim, format_type(t.typelem, NULL)) END
         ) || coalesce((SELECT jsonb_object_agg('constraint ' || quote_ident(c.conname), jsonb_build_object(
                 'type', c.contype, 'definition', pg_get_constraintdef(c.oid), 'validated', c.convalidated))
               FROM pg_constraint c WHERE c.contypid = t.oid), '{}') AS props
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
   WHERE ${userSchema('n')} AND ${notExtensionMember('pg_type', 't.oid')}
     AND t.typtype <> 'm'
     AND NOT (t.typelem <> 0 AND EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid))
     AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')`,
};

/** Procedural languages a user installed without an extension (plpgsql is an extension). */
export const languages: CatalogClass = {
  name: 'languages',
  sql: () => `
  SELECT 'language ' || quote_ident(l.lanname) AS key,
         jsonb_build_object(
           'owner', ${roleName('l.lanowner')}, 'trusted', l.lanpltrusted,
           'handler', l.lanplcallfoid::regproc::text, 'inline', l.laninline::regproc::text,
           'validator', l.lanvalidator::regproc::text,
           'privileges', ${aclJson('l.lanacl', 'l', 'l.lanowner')}
         ) AS props
    FROM pg_language l
   WHERE l.oid >= 16384 AND ${notExtensionMember('pg_language', 'l.oid')}`,
};
