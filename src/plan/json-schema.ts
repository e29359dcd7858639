import { z } from 'zod';
import { planSchema } from './schema';

// The published plan.schema.json is for editors (yaml-language-server, VS Code), so it describes what a
// user may write (zod's input side: defaulted fields optional) in draft-07, which every editor understands.
// zod cannot carry refinements or coercion into JSON Schema, and some fields have no description: EXTRAS adds
// those by plan field. The loader stays the authority; this schema only has to help while typing.

type JsonSchema = Record<string, unknown>;

/** Accepts exactly what parseDuration accepts: a positive number and a unit, optional blanks around. */
export const DURATION_PATTERN = '^\\s*(?=[\\d.]*[1-9])\\d+(\\.\\d+)?\\s*(ms|s|m|h|d|w)\\s*$';

const durationExtras = {
  pattern: DURATION_PATTERN,
  examples: ['30m', '24h', '7d'],
};

const EXTRAS: Record<string, JsonSchema> = {
  source: { description: "The database to migrate (the guide's SOURCE_* variables)" },
  target: { description: "The database to create (the guide's TARGET_* variables)" },
  // YAML reads `version: 17` as a number, which the loader accepts and turns into "17".
  'target.version': { type: ['string', 'integer'], minimum: 0, examples: ['17', 16, 14] },
  restore: { description: 'How the output of `psql` restoring the dump is judged' },
  cutover: { description: 'The switch of the services from the source to the target' },
  'cutover.timeout': durationExtras,
  cleanup: { description: 'What happens after the services run on the target' },
  'cleanup.vacuumAnalyze': { description: 'Run VACUUM ANALYZE on every database of the target' },
  'cleanup.deprovisionSource.mode': {
    description: 'never: keep the source; signal: wait for `pgshift deprovision-source`; delay: wait `delay`',
  },
  'cleanup.deprovisionSource.delay': {
    ...durationExtras,
    description: 'How long to keep the source, once the services run on the target, before deprovisioning it',
  },
};

type Visit = (node: JsonSchema, path: string) => void;

/** Calls visit for every schema node that describes a plan field, with its dotted path ("a.b", "list[]"). */
function walk(node: JsonSchema, path: string, visit: Visit): void {
  if (path) visit(node, path);
  walkChildren(node, path, visit);
}

// The alternatives of a union describe the same field, so their children share its path.
function walkChildren(node: JsonSchema, path: string, visit: Visit): void {
  const properties = (node.properties ?? {}) as Record<string, JsonSchema>;
  for (const [key, child] of Object.entries(properties)) walk(child, path ? `${path}.${key}` : key, visit);
  if (node.items) walk(node.items as JsonSchema, `${path}[]`, visit);
  for (const alternative of (node.oneOf ?? node.anyOf ?? []) as JsonSchema[])
    walkChildren(alternative, path, visit);
}

/** The JSON Schema of a plan file, as published in plan.schema.json. */
export function buildPlanJsonSchema(): JsonSchema {
  // A copy, so edits below cannot reach objects zod may share between fields.
  const generated = structuredClone(
    z.toJSONSchema(planSchema, { io: 'input', target: 'draft-07' }),
  ) as JsonSchema;
  const unused = new Set(Object.keys(EXTRAS));
  walk(generated, '', (node, path) => {
    // zod bounds every int by the safe-integer range; in an editor that is only noise.
    if (node.maximum === Number.MAX_SAFE_INTEGER) delete node.maximum;
    if (node.minimum === Number.MIN_SAFE_INTEGER) delete node.minimum;
    const extras = EXTRAS[path];
    if (!extras) return;
    unused.delete(path);
    // A description written in the zod schema wins over one written here.
    Object.assign(node, extras, node.description ? { description: node.description } : {});
  });
  if (unused.size)
    throw new Error(`json-schema.ts describes plan fields that no longer exist: ${[...unused].join(', ')}`);
  const { $schema, ...rest } = generated;
  return {
    $schema,
    title: 'pgshift migration plan',
    description:
      'A PostgreSQL dump-and-restore migration: `pgshift start -f plan.yaml`. Generated from src/plan/schema.ts by `npm run schema`.',
    ...rest,
  };
}

/** The exact text of plan.schema.json. */
export function renderPlanJsonSchema(): string {
  return `${JSON.stringify(buildPlanJsonSchema(), null, 2)}\n`;
}
