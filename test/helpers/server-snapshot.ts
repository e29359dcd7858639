// An independent picture of a whole server, for tests that judge a migration: written apart from the
// verification in src/pg/verify (on purpose, other queries), so the two cannot share a blind spot.
// Each entry is `key → value`; two servers are alike when their snapshots are equal.
import type { Client } from 'pg';
import type { PgTarget } from '../../src/pg/connection';
import { withClient } from '../../src/pg/connection';

export type Snapshot = Record<string, string>;

/**
 * An ACL as a set: the order of its items carries no meaning (a REVOKE and GRANT may reorder them). Less the
 * privilege a newer server adds by itself: 17's MAINTAIN ('m') on tables.
 */
function acl(text: string | null): string {
  const body = (text ?? '').replace(/^\{|\}$/g, '');
  const items = body.match(/(?:"(?:[^"]|"")*"|[^,])+/g) ?? [];
  return items
    .map((item) => item.replace(/=([a-zA-Z*]*)\//, (_m, privs: string) => `=${privs.replace(/m/g, '')}/`))
    .sort()
    .join(',');
}

async function rows(c: Client, sql: string): Promise<string[][]> {
  const res = await c.query({ text: sql, rowMode: 'array' });
  return res.rows.map((r: unknown[]) => r.map((v) => (v === null ? '∅' : String(v))));
}

async function put(out: Snapshot, prefix: string, c: Client, sql: string, keyColumns = 1): Promise<void> {
  for (const r of await rows(c, sql)) {
    const key = `${prefix}${r.slice(0, keyColumns).join(' ')}`;
    if (key in out) throw new Error(`snapshot key twice: ${key}`);
    out[key] = r.slice(keyColumns).join(' | ');
  }
}

export async function snapshotServer(
  server: PgTarget,
  opts: { adminRole: string; skipDatabases?: string[] },
): Promise<Snapshot> {
  const out: Snapshot = {};
  const skip = new Set(opts.skipDatabases ?? []);
  let databases: string[] = [];
  await withClient(server, server.database, async (c) => {
    await put(
      out,
      'database ',
      c,
      `SELECT datname, pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datistemplate, datallowconn,
              datconnlimit, shobj_description(oid, 'pg_database'), datacl::text
         FROM pg_database WHERE datname <> 'template0'`,
    );
    for (const k of Object.keys(out)) {
      const parts = out[k].split(' | ');
      parts[6] = acl(parts[6] === '∅' ? null : parts[6]);
      out[k] = parts.join(' | ');
    }
    await put(
      out,
      'setting ',
      c,
      `SELECT coalesce(d.datname, '*') || ' / ' || coalesce(r.rolname, '*'), s.setconfig::text
         FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase
         LEFT JOIN pg_roles r ON r.oid = s.setrole`,
    );
    await put(
      out,
      'role ',
      c,
      `SELECT a.rolname, a.rolsuper, a.rolinherit, a.rolcreaterole, a.rolcreatedb, a.rolcanlogin,
              a.rolreplication, a.rolbypassrls, a.rolconnlimit, a.rolvaliduntil,
              CASE WHEN a.rolname = ${quoteLiteral(opts.adminRole)} THEN 'kept' ELSE a.rolpassword END,
              shobj_description(a.oid, 'pg_authid')
         FROM pg_authid a WHERE a.rolname !~ '^pg_'`,
    );
    await put(
      out,
      'member ',
      c,
      `SELECT m.roleid::regrole::text || ' ∋ ' || m.member::regrole::text, m.admin_option
         FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE r.rolname !~ '^pg_'`,
    );
    databases = (
      await rows(
        c,
        `SELECT datname FROM pg_database WHERE datallowconn AND datname <> 'template0' ORDER BY 1`,
      )
    ).map((r) => r[0]);
  });
  for (const db of databases) {
    if (skip.has(db)) continue;
    await withClient(server, db, (c) => snapshotDatabase(c, `${db}: `, out));
  }
  return out;
}

function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

const USER_NS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'`;
const NOT_EXTENSION_MEMBER = (classid: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${classid}'::regclass AND d.objid = ${oid} AND d.deptype = 'e')`;

async function snapshotDatabase(c: Client, p: string, out: Snapshot): Promise<void> {
  await c.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3;
                 SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'`);
  await put(out, `${p}extension `, c, `SELECT extname, extversion FROM pg_extension`);
  await put(
    out,
    `${p}schema `,
    c,
    `SELECT n.nspname, pg_get_userbyid(n.nspowner), n.nspacl::text FROM pg_namespace n WHERE ${USER_NS}`,
  );
  const relations = await rows(
    c,
    `SELECT format('%I.%I', n.nspname, c.relname), c.relkind, pg_get_userbyid(c.relowner), c.relacl::text,
            c.relpersistence, c.relrowsecurity, c.relispopulated,
            coalesce((SELECT pt.partstrat = 'h' FROM pg_inherits i JOIN pg_partitioned_table pt
                        ON pt.partrelid = i.inhparent WHERE i.inhrelid = c.oid), false) AS under_hash
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${USER_NS} AND c.relkind IN ('r', 'p', 'm', 'v', 'S', 'f')
        AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}`,
  );
  for (const [name, kind, owner, relacl, persistence, rls, populated, underHash] of relations) {
    out[`${p}relation ${name}`] = [
      kind,
      owner,
      acl(relacl === '∅' ? null : relacl),
      persistence,
      rls,
      populated,
    ].join(' | ');
    const readable = kind === 'r' || kind === 'p' || kind === 'v' || (kind === 'm' && populated === 'true');
    // Rows of a hash partition depend on the enum's OIDs: only the partitioned table as a whole compares.
    if (!readable || underHash === 'true') continue;
    const from = kind === 'r' ? `ONLY ${name}` : name;
    const [[n, h]] = await rows(
      c,
      `SELECT count(*), md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text COLLATE "C"), ''))
         FROM ${from} x`,
    );
    out[`${p}rows ${name}`] = `${n} ${h}`;
  }
  await put(
    out,
    `${p}column `,
    c,
    `SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname), format_type(a.atttypid, a.atttypmod),
            a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl::text,
            col_description(c.oid, a.attnum)
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE ${USER_NS} AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
        AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}`,
  );
  await put(
    out,
    `${p}constraint `,
    c,
    `SELECT format('%I.%s.%I', n.nspname, coalesce(r.relname, t.typname), co.conname), pg_get_constraintdef(co.oid)
       FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
       LEFT JOIN pg_class r ON r.oid = co.conrelid LEFT JOIN pg_type t ON t.oid = co.contypid
      WHERE ${USER_NS} AND co.conparentid = 0`,
  );
  await put(
    out,
    `${p}index `,
    c,
    `SELECT format('%I.%I', n.nspname, i.relname), pg_get_indexdef(i.oid)
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
      WHERE ${USER_NS} AND ${NOT_EXTENSION_MEMBER('pg_class', 'i.oid')}`,
  );
  await put(
    out,
    `${p}function `,
    c,
    `SELECT p.oid::regprocedure::text, md5(p.prosrc), p.prosecdef, p.provolatile, p.proconfig::text,
            pg_get_userbyid(p.proowner), p.proacl::text, obj_description(p.oid, 'pg_proc')
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE ${USER_NS} AND ${NOT_EXTENSION_MEMBER('pg_proc', 'p.oid')}`,
  );
  await put(
    out,
    `${p}trigger `,
    c,
    `SELECT format('%s %I', t.tgrelid::regclass, t.tgname), t.tgenabled, pg_get_triggerdef(t.oid)
       FROM pg_trigger t WHERE NOT t.tgisinternal`,
  );
  await put(
    out,
    `${p}policy `,
    c,
    `SELECT format('%I.%I %I', schemaname, tablename, policyname), permissive, roles::text, cmd, qual, with_check
       FROM pg_policies`,
  );
  await put(
    out,
    `${p}enum `,
    c,
    `SELECT enumtypid::regtype::text, string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum GROUP BY 1`,
  );
  await put(
    out,
    `${p}sequence `,
    c,
    `SELECT format('%I.%I', schemaname, sequencename), start_value, increment_by, last_value FROM pg_sequences`,
  );
  await put(
    out,
    `${p}default acl `,
    c,
    `SELECT pg_get_userbyid(defaclrole) || ' ' || coalesce(defaclnamespace::regnamespace::text, '*') || ' ' ||
            defaclobjtype::text, defaclacl::text FROM pg_default_acl`,
  );
  for (const k of Object.keys(out)) if (k.startsWith(`${p}default acl `)) out[k] = acl(out[k]);
  await put(
    out,
    `${p}large object `,
    c,
    `SELECT m.oid, pg_get_userbyid(m.lomowner), m.lomacl::text, md5(lo_get(m.oid)),
            obj_description(m.oid, 'pg_largeobject')
       FROM pg_largeobject_metadata m`,
  );
  await put(
    out,
    `${p}comment `,
    c,
    `SELECT pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
       FROM pg_description d WHERE d.objoid >= 16384
        AND d.classoid <> 'pg_largeobject'::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.classoid AND e.objid = d.objoid AND e.deptype = 'e')`,
  );
}

/** What differs between two snapshots, one line each, for a readable failure. */
export function snapshotDiff(a: Snapshot, b: Snapshot): string[] {
  const lines: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (a[k] !== b[k]) lines.push(`${k}: ${a[k] ?? '(absent)'}  ≠  ${b[k] ?? '(absent)'}`);
  }
  return lines.sort();
}
