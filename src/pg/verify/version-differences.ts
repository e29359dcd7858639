// What a newer major version changes by itself, so that a faithful copy looks the same as its source.
// Every difference between a PostgreSQL source and a newer target that is not a loss is normalized here,
// and only here, each with the version that introduced it. Found by restoring a rich 14 source into 17
// (test/verify.test.ts) and reading what differed.
import type { Client, QueryConfig } from 'pg';
import type { Entries, Props } from './fingerprint';

export interface Versions {
  source: number;
  target: number;
}

/**
 * Built-in roles: names starting with pg_ are reserved to them (9.6+), and each major adds some (14:
 * pg_database_owner, pg_read_all_data, pg_write_all_data; 15: pg_checkpoint; 16: pg_create_subscription,
 * pg_use_reserved_connections; 17: pg_maintain). They are not compared, nor their memberships in each
 * other; a user role's membership in one is.
 */
export const BUILTIN_ROLES = '^pg_';

/**
 * 16 gave each membership its own INHERIT and SET options. Before, a member inherited when the member
 * role had INHERIT, and could always SET ROLE: that is what an older server's membership means.
 */
export function membershipOptionsSql(major: number): string {
  return major >= 16
    ? `'inherit option', m.inherit_option, 'set option', m.set_option`
    : `'inherit option', (SELECT rolinherit FROM pg_roles WHERE oid = m.member), 'set option', true`;
}

/**
 * 15 added a database's locale provider (libc or ICU) and ICU locale; 17 renamed daticulocale to
 * datlocale. Before 15 every database used libc. The collation version (15+) is the operating system's
 * library version, not something a copy carries, so it is not compared.
 */
export function databaseLocaleSql(major: number): string {
  if (major >= 17) return `'locale provider', d.datlocprovider, 'icu locale', d.datlocale`;
  if (major >= 15) return `'locale provider', d.datlocprovider, 'icu locale', d.daticulocale`;
  return `'locale provider', 'c', 'icu locale', NULL`;
}

/** 17 added the MAINTAIN privilege ('m'), which owners of tables hold by default. */
function withoutMaintain(acl: unknown): unknown {
  if (!Array.isArray(acl)) return acl;
  return acl.map((item) => (typeof item === 'string' ? aclItemWithoutMaintain(item) : item));
}

/**
 * An aclitem's text is `grantee=privileges/grantor`, the grantee empty for PUBLIC or double-quoted (with ""
 * for a quote) when it holds anything but letters, digits and _: a quoted name may hold '=' and 'm', so the
 * privileges start at the first '=' after it. 'm' and its grant option '*' are taken out of the letters.
 */
export function aclItemWithoutMaintain(item: string): string {
  let i = 0;
  if (item.startsWith('"')) {
    for (i = 1; i < item.length; i++) {
      if (item[i] !== '"') continue;
      if (item[i + 1] !== '"') break;
      i++;
    }
  }
  const eq = item.indexOf('=', i);
  const slash = item.indexOf('/', eq + 1);
  if (eq < 0 || slash < 0) return item;
  return item.slice(0, eq + 1) + item.slice(eq + 1, slash).replace(/m\*?/g, '') + item.slice(slash);
}

/** 17 stores "no statistics target set" as NULL where older versions stored -1. */
function statisticsTarget(value: unknown): unknown {
  return value === -1 ? null : value;
}

function eachColumn(props: Props, fix: (column: Props) => void): void {
  for (const [name, value] of Object.entries(props)) {
    if (name.startsWith('column ') && value && typeof value === 'object') fix(value as Props);
  }
}

/**
 * Brings the target's entries of one class to what the source's version would show, and the source's to
 * the form the target uses, in place. Differences that are worth knowing but are no loss become notes.
 */
export function normalizeClass(
  cls: string,
  source: Entries,
  target: Entries,
  v: Versions,
  note: (text: string) => void,
): void {
  for (const entries of [source, target]) {
    for (const props of entries.values()) {
      if (cls === 'tables and views')
        eachColumn(props, (c) => (c['statistics target'] = statisticsTarget(c['statistics target'])));
      if (cls === 'statistics objects')
        props['statistics target'] = statisticsTarget(props['statistics target']);
    }
  }
  // 17 gives a partition the identity of its partitioned table's column; before, only the parent had it.
  if (cls === 'tables and views' && v.source < 17 && v.target >= 17) {
    for (const [key, t] of target) {
      const s = source.get(key);
      if (!s || t['partition bound'] === null || t['partition bound'] === undefined) continue;
      for (const [name, column] of Object.entries(t)) {
        if (!name.startsWith('column ') || !column || typeof column !== 'object') continue;
        if ((s[name] as Props | undefined)?.identity === '') (column as Props).identity = '';
      }
    }
  }
  if (v.source < 17 && v.target >= 17) {
    for (const props of target.values()) {
      if (cls === 'tables and views') props.privileges = withoutMaintain(props.privileges);
      if (cls === 'default privileges' && props.kind === 'r')
        props.privileges = withoutMaintain(props.privileges);
    }
  }
  // 17 records a domain's NOT NULL as a constraint too (pg_constraint contype 'n'); typnotnull says it.
  if (cls === 'types' && v.source < 17) {
    for (const props of target.values()) {
      for (const [name, value] of Object.entries(props)) {
        if (name.startsWith('constraint ') && (value as Props | null)?.type === 'n') delete props[name];
      }
    }
  }
  // 18 records a table's NOT NULL columns as constraints (contype 'n'); the column's "not null" says it.
  if (cls === 'constraints' && v.source < 18) {
    for (const [key, props] of target) if (props.type === 'n') target.delete(key);
  }
  // pg_dump creates an extension without a version: the target installs its own default version.
  if (cls === 'extensions') {
    for (const [key, s] of source) {
      const t = target.get(key);
      if (!t) continue;
      if (s.version !== t.version)
        note(`${key}: version ${s.version} on the source, ${t.version} on the target`);
      delete s.version;
      delete t.version;
    }
  }
}

/**
 * View and materialized view definitions are stored parsed and printed back by pg_get_viewdef, whose
 * output changes between versions (16 stopped qualifying the columns of a query that reads one table:
 * `orders.customer` became `customer`). So when the
 * texts differ, the source's definition is parsed BY THE TARGET: a temporary view made from it, in a
 * transaction rolled back, printed by the target's pg_get_viewdef. If that equals the target's own
 * definition, the view was carried faithfully. `target` must be a session of its own (not a read-only
 * snapshot); search_path = pg_catalog, as the definitions were printed under.
 */
export async function reconcileViewDefinitions(
  connectTarget: () => Promise<Client>,
  sourceEntries: Entries,
  targetEntries: Entries,
): Promise<void> {
  const differing = [...sourceEntries].filter(([key, s]) => {
    const t = targetEntries.get(key);
    return t && typeof s.definition === 'string' && s.definition !== t.definition;
  });
  if (!differing.length) return;
  const target = await connectTarget();
  try {
    await target.query('BEGIN');
    await target.query(`SET LOCAL search_path = pg_catalog`);
    for (const [, s] of differing) {
      await target.query('SAVEPOINT pgshift_view');
      try {
        // The extended protocol runs one statement only, whatever the definition's text holds.
        const create: QueryConfig & { queryMode: 'extended' } = {
          text: `CREATE TEMPORARY VIEW pgshift_verify_view AS ${(s.definition as string).replace(/;\s*$/, '')}`,
          queryMode: 'extended',
        };
        await target.query(create);
        const { rows } = await target.query<{ d: string }>(
          `SELECT pg_get_viewdef('pg_temp.pgshift_verify_view'::regclass) AS d`,
        );
        s.definition = rows[0].d;
      } catch {
        // The target cannot parse the source's definition: it stays different, and is reported so.
      }
      await target.query('ROLLBACK TO SAVEPOINT pgshift_view');
    }
    await target.query('ROLLBACK');
  } finally {
    await target.end().catch(() => undefined);
  }
}
