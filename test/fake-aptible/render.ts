// How the CLI prints its one document (lib/aptible/cli/formatter.rb:13-18, renderer.rb:10-27): built
// whole, then `puts` once at the end on stdout. JSON is Ruby's JSON.pretty_generate (json < 2.7: an empty
// array is "[\n\n]"); text follows renderer/text.rb's hints (keyed object → that value; keyed list → one
// value per line; grouped keyed list → `=== group` blocks sorted by group, a blank line between them).

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The rendered document of a command: what the JSON and the text renderer print. */
export interface Doc {
  json: Json;
  text: string;
}

export class UserError extends Error {}

/** Ruby's JSON.pretty_generate with json 2.6 (aptible-cli: json ~> 2.5). */
export function prettyGenerate(value: Json, indent = ''): string {
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.length === 0) return `[\n\n${indent}]`;
    return `[\n${value.map((v) => inner + prettyGenerate(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return '{}';
    return `{\n${entries
      .map(([k, v]) => `${inner}${JSON.stringify(k)}: ${prettyGenerate(v, inner)}`)
      .join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/** Ruby's `puts`: a newline unless the text ends with one ("" prints "\n"). */
export function puts(text: string): string {
  return text.endsWith('\n') ? text : text + '\n';
}

/** Text renderer for a keyed list / list of values: one per line (`io.puts value`, nil → ""). */
export function textLines(values: Array<string | number | null>): string {
  return values.map((v) => `${v ?? ''}\n`).join('');
}

/** Text renderer for a GroupedKeyedList (renderer/text.rb:46-54). */
export function textGroups(items: Array<{ group: string; value: string }>): string {
  const groups = new Map<string, string[]>();
  for (const { group, value } of items) {
    if (!groups.has(group)) groups.set(group, []);
    (groups.get(group) as string[]).push(value);
  }
  // Ruby sorts strings bytewise.
  const sorted = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return sorted.map(([group, values]) => `=== ${group}\n${textLines(values)}`).join('\n');
}

/** Renderer.current (renderer.rb:10-27), then the document as that renderer prints it. */
export function renderDoc(doc: Doc, format: string | undefined): string {
  if (format === 'json') return puts(prettyGenerate(doc.json));
  if (format === undefined || format === 'text') return puts(doc.text);
  throw new UserError(`Invalid APTIBLE_OUTPUT_FORMAT: ${format}`);
}

/** Ruby's Shellwords.escape (Ruby 3.x), used by `aptible config`'s shell_export. */
export function shellEscape(value: string): string {
  if (value === '') return "''";
  return value.replace(/[^A-Za-z0-9_\-.,:+/@\n]/gu, (c) => `\\${c}`).replace(/\n/g, "'\n'");
}

/** ChronicDuration.parse for `--max-age` (e.g. 99y, 1w, 12h, "2 days"); undefined when it cannot parse it. */
export function parseDurationSeconds(text: string): number | undefined {
  const units: Array<[RegExp, number]> = [
    [/^(y|yrs?|years?)$/, 31_557_600],
    [/^(mo|mos|months?)$/, 2_592_000],
    [/^(w|wks?|weeks?)$/, 604_800],
    [/^(d|days?)$/, 86_400],
    [/^(h|hrs?|hours?)$/, 3_600],
    [/^(m|mins?|minutes?)$/, 60],
    [/^(s|secs?|seconds?)$/, 1],
  ];
  const trimmed = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]+)[\s,]*/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed.replace(/\s+$/, '')) return undefined;
  let total = 0;
  for (const [, amount, unit] of parts) {
    const found = units.find(([re]) => re.test(unit));
    if (!found) return undefined;
    total += Number(amount) * found[1];
  }
  return total;
}
