import type { Client } from 'pg';
import type { ReportBuilder } from './report';

/** What describes one object: its properties, each a value or a keyed collection (e.g. columns). */
export type Props = Record<string, unknown>;
/** The objects of one class on one server, by key (the object's name, e.g. `function public.total(integer)`). */
export type Entries = Map<string, Props>;

/** One class of object read from the catalogs. */
export interface CatalogClass {
  /** Its name in the report's counts. */
  name: string;
  /** A query returning `key text, props jsonb` for a server of this major version. */
  sql(major: number): string;
}

export async function readEntries(client: Client, cls: CatalogClass, major: number): Promise<Entries> {
  const { rows } = await client.query<{ key: string; props: Props | null }>(cls.sql(major));
  const entries: Entries = new Map();
  for (const row of rows) entries.set(row.key, row.props ?? {});
  return entries;
}

// Values never printed, only said to differ: secrets or hashes of them (passwords, foreign-data options,
// which may hold one), and code, which is long and may embed a secret too.
const HIDDEN = new Set(['password', 'options', 'body', 'sql body', 'definition']);
const SHOWN_LENGTH = 80;

/**
 * Compares one class, one line per object that differs (`shop: function public.total(integer): body
 * differs`), and counts every object of the union as compared. `where` prefixes the lines (a database).
 */
export function diffEntries(
  cls: string,
  where: string,
  source: Entries,
  target: Entries,
  report: ReportBuilder,
): void {
  const prefix = where ? `${where}: ` : '';
  const keys = [...new Set([...source.keys(), ...target.keys()])].sort();
  for (const key of keys) {
    const s = source.get(key);
    const t = target.get(key);
    if (!t) report.compared(cls, `${prefix}${key}: missing on target`);
    else if (!s) report.compared(cls, `${prefix}${key}: on the target only`);
    else {
      const differences = diffProps(s, t);
      report.compared(cls, differences.length ? `${prefix}${key}: ${differences.join('; ')}` : undefined);
    }
  }
}

/** What differs between two objects' properties, one phrase per property (`body differs`). */
export function diffProps(s: Props, t: Props): string[] {
  const out: string[] = [];
  for (const prop of [...new Set([...Object.keys(s), ...Object.keys(t)])].sort()) {
    const a = s[prop];
    const b = t[prop];
    if (isCollection(a) || isCollection(b)) {
      if (a === undefined || a === null) out.push(`${prop}: on the target only`);
      else if (b === undefined || b === null) out.push(`${prop}: missing on target`);
      else out.push(...diffProps(a as Props, b as Props).map((d) => `${prop}: ${d}`));
    } else if (canonical(a) !== canonical(b)) {
      out.push(`${prop} ${prop.endsWith('s') ? 'differ' : 'differs'}${shown(prop, a, b)}`);
    }
  }
  return out;
}

function isCollection(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function shown(prop: string, a: unknown, b: unknown): string {
  if (HIDDEN.has(prop)) return '';
  // Settings (name=value) may hold anything: only the names of the ones that differ are shown.
  if (prop.startsWith('settings')) return ` (${settingsDiffering(a, b).join(', ')})`;
  const sa = canonical(a);
  const sb = canonical(b);
  if (sa.length + sb.length > SHOWN_LENGTH) return '';
  return ` (source ${sa}, target ${sb})`;
}

function settingsDiffering(a: unknown, b: unknown): string[] {
  const parse = (v: unknown) =>
    new Map(
      (Array.isArray(v) ? (v as string[]) : []).map((item) => {
        const at = item.indexOf('=');
        return [item.slice(0, at), item.slice(at + 1)] as const;
      }),
    );
  const sa = parse(a);
  const sb = parse(b);
  return [...new Set([...sa.keys(), ...sb.keys()])].filter((k) => sa.get(k) !== sb.get(k)).sort();
}

/** JSON with sorted keys; undefined and null are the same (a property one version does not have). */
export function canonical(v: unknown): string {
  if (v === undefined || v === null) return 'null';
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
