import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Ajv from 'ajv';
import { parse as parseYaml } from 'yaml';
import { BadInputError } from '../src/errors';
import { parseDuration } from '../src/lib/duration';
import { DURATION_PATTERN, buildPlanJsonSchema, renderPlanJsonSchema } from '../src/plan/json-schema';
import { loadPlanFile, MAX_PLAN_BYTES, validatePlan } from '../src/plan/load';
import type { PlanInput } from '../src/plan/schema';

interface SchemaNode {
  description?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  oneOf?: SchemaNode[];
  [keyword: string]: unknown;
}

const root = resolve(__dirname, '..');
const examples = ['examples/plan.yaml', 'examples/plan.aptible.yaml', 'examples/plan.online.yaml'];

function minimal(): PlanInput {
  return {
    platform: 'local',
    source: { handle: 'demo-pg14' },
    target: { handle: 'demo-pg17', version: '17' },
  };
}

/** The validation error message for a plan that must be rejected. */
function rejection(raw: unknown): string {
  try {
    validatePlan(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(BadInputError);
    return (err as Error).message;
  }
  throw new Error('the plan was accepted');
}

/** The problem lines of a rejection, without the "plan is not valid:" heading. */
function problems(raw: unknown): string[] {
  const [heading, ...lines] = rejection(raw).split('\n');
  expect(heading).toBe('plan is not valid:');
  return lines.map((line) => line.replace(/^ {2}- /, ''));
}

describe('validatePlan', () => {
  it('fills in the defaults of a minimal plan', () => {
    expect(validatePlan(minimal())).toEqual({
      platform: 'local',
      source: { handle: 'demo-pg14', environment: 'local' },
      target: { handle: 'demo-pg17', version: '17', environment: 'local', diskSize: 10, containerSize: 4096 },
      services: [],
      config: [],
      restore: {},
      method: 'dump',
      copy: { strategy: 'guide' },
      accept: { skipDatabases: [], replicaIdentityFull: [] },
      cutover: { confirm: true, timeout: '24h', onTimeout: 'abort', catchUpTimeout: '2m' },
      cleanup: { vacuumAnalyze: true, deprovisionSource: { mode: 'never' } },
    });
  });

  it('defaults the target environment to the source environment', () => {
    const plan = validatePlan({
      ...minimal(),
      source: { handle: 'source-db', environment: 'test-environment' },
    });
    expect(plan.target.environment).toBe('test-environment');
  });

  it('fills defaults inside a partly written section', () => {
    const plan = validatePlan({
      ...minimal(),
      cutover: { timeout: '1h' },
      cleanup: { vacuumAnalyze: false },
    });
    expect(plan.cutover).toEqual({ confirm: true, timeout: '1h', onTimeout: 'abort', catchUpTimeout: '2m' });
    expect(plan.cleanup).toEqual({ vacuumAnalyze: false, deprovisionSource: { mode: 'never' } });
  });

  it('reads a numeric version, as YAML gives `version: 17`, as the string "17"', () => {
    expect(validatePlan({ ...minimal(), target: { handle: 'demo-pg17', version: 17 } }).target.version).toBe(
      '17',
    );
  });

  it('accepts the same handle in another environment', () => {
    const plan = validatePlan({
      ...minimal(),
      target: { handle: 'demo-pg14', version: 17, environment: 'other' },
    });
    expect(plan.target).toMatchObject({ handle: 'demo-pg14', environment: 'other' });
  });

  it('accepts a delayed source deprovisioning with its delay', () => {
    const plan = validatePlan({
      ...minimal(),
      cleanup: { deprovisionSource: { mode: 'delay', delay: '7d' } },
    });
    expect(plan.cleanup.deprovisionSource).toEqual({ mode: 'delay', delay: '7d' });
  });

  it('says a missing source.handle is required', () => {
    expect(problems({ ...minimal(), source: {} })).toEqual(['source.handle: is required']);
  });

  it('says which characters a handle may have', () => {
    expect(problems({ ...minimal(), source: { handle: 'Demo PG!' } })).toEqual([
      'source.handle: must be 1-63 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit',
    ]);
  });

  it('rejects a handle longer than 63 characters', () => {
    expect(problems({ ...minimal(), target: { handle: 'a'.repeat(64), version: 17 } })).toEqual([
      expect.stringMatching(/^target\.handle: must be 1-63 characters/),
    ]);
  });

  it('says target.version must be a major version', () => {
    expect(problems({ ...minimal(), target: { handle: 'demo-pg17', version: 'abc' } })).toEqual([
      'target.version: must be a PostgreSQL major version such as "17"',
    ]);
    expect(problems({ ...minimal(), target: { handle: 'demo-pg17', version: 17.2 } })).toEqual([
      'target.version: must be a PostgreSQL major version such as "17"',
    ]);
  });

  it('names an unknown top-level key itself', () => {
    expect(problems({ ...minimal(), servcies: [] })).toEqual(['servcies: is not a known field']);
  });

  it('names an unknown nested key with its full path', () => {
    expect(
      problems({ ...minimal(), target: { handle: 'demo-pg17', version: 17, disk: 5, size: 1 } }),
    ).toEqual(['target.disk: is not a known field', 'target.size: is not a known field']);
  });

  it('says a negative diskSize is too small', () => {
    expect(problems({ ...minimal(), target: { handle: 'demo-pg17', version: 17, diskSize: -5 } })).toEqual([
      'target.diskSize: Too small: expected number to be >0',
    ]);
  });

  it('says "soon" is not a duration', () => {
    expect(problems({ ...minimal(), cutover: { timeout: 'soon' } })).toEqual([
      'cutover.timeout: must be a duration such as "30m", "24h" or "7d", at most 366d',
    ]);
  });

  it('requires the delay of deprovisionSource mode delay', () => {
    expect(problems({ ...minimal(), cleanup: { deprovisionSource: { mode: 'delay' } } })).toEqual([
      'cleanup.deprovisionSource.delay: is required',
    ]);
  });

  it('lists the deprovisionSource modes when the mode is unknown', () => {
    expect(problems({ ...minimal(), cleanup: { deprovisionSource: { mode: 'later' } } })).toEqual([
      "cleanup.deprovisionSource.mode: Invalid discriminator value. Expected 'never' | 'signal' | 'delay'",
    ]);
  });

  it('rejects a delay given to a mode that has none', () => {
    expect(
      problems({ ...minimal(), cleanup: { deprovisionSource: { mode: 'never', delay: '7d' } } }),
    ).toEqual(['cleanup.deprovisionSource.delay: is not a known field']);
  });

  it('names the second entry of a duplicated service', () => {
    const services = [
      { app: 'writer', service: 'cmd' },
      { app: 'writer', service: 'web' },
      { app: 'writer', service: 'cmd' },
    ];
    expect(problems({ ...minimal(), services })).toEqual(['services.2: lists writer/cmd twice']);
  });

  it('refuses a target that is the source', () => {
    expect(problems({ ...minimal(), target: { handle: 'demo-pg14', version: 17 } })).toEqual([
      'target.handle: must differ from source.handle in the same environment',
    ]);
    const sameEnvironmentSpelledOut = {
      platform: 'aptible',
      source: { handle: 'source-db', environment: 'test-environment' },
      target: { handle: 'source-db', version: 17, environment: 'test-environment' },
    };
    expect(problems(sameEnvironmentSpelledOut)).toEqual([
      'target.handle: must differ from source.handle in the same environment',
    ]);
  });

  it('says what is wrong inside a list entry', () => {
    expect(
      problems({ ...minimal(), config: [{ app: 'writer', variable: 'DB-URL' }, { app: 'writer' }] }),
    ).toEqual([
      'config.0.variable: must be an environment variable name such as DB_URL',
      'config.1.variable: is required',
    ]);
  });

  it('reports every problem at once', () => {
    const plan = {
      platform: 'gcp',
      source: { handle: 'Source' },
      target: { version: 'latest', diskSize: 0 },
      cutover: { timeout: 'soon', onTimeout: 'wait' },
      extra: true,
    };
    expect(problems(plan)).toEqual([
      'platform: Invalid option: expected one of "local"|"aptible"',
      'source.handle: must be 1-63 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit',
      'target.handle: is required',
      'target.version: must be a PostgreSQL major version such as "17"',
      'target.diskSize: Too small: expected number to be >0',
      'cutover.timeout: must be a duration such as "30m", "24h" or "7d", at most 366d',
      'cutover.onTimeout: Invalid option: expected one of "abort"|"proceed"',
      'extra: is not a known field',
    ]);
  });

  it('says a plan that is not an object is not one', () => {
    expect(problems(null)).toEqual(['(plan): Invalid input: expected object, received null']);
    expect(problems(['platform: local'])).toEqual(['(plan): Invalid input: expected object, received array']);
  });

  it('names the origin it was given', () => {
    expect(() => validatePlan({}, 'my-plan.yaml')).toThrow(/^my-plan\.yaml is not valid:\n/);
  });
});

describe('loadPlanFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pgshift-plan-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function planFile(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  }

  it('reads a YAML plan', () => {
    const path = planFile(
      'ok.yaml',
      'platform: local\nsource: { handle: a }\ntarget: { handle: b, version: 17 }\n',
    );
    expect(loadPlanFile(path)).toMatchObject({
      source: { handle: 'a' },
      target: { handle: 'b', version: '17' },
    });
  });

  it('reads a JSON plan', () => {
    const path = planFile('ok.json', JSON.stringify(minimal()));
    expect(loadPlanFile(path).target).toMatchObject({ handle: 'demo-pg17', environment: 'local' });
  });

  it('names the file and the line of a YAML syntax error', () => {
    const path = planFile('broken.yaml', 'platform: local\nsource:\n  handle: [a\ntarget: {}\n');
    expect(() => loadPlanFile(path)).toThrow(BadInputError);
    expect(() => loadPlanFile(path)).toThrow(`${path} is not valid YAML or JSON: `);
    expect(() => loadPlanFile(path)).toThrow(/line \d+/);
  });

  it('refuses a YAML mapping with a key written twice', () => {
    const path = planFile('twice.yaml', 'platform: local\nplatform: aptible\n');
    expect(() => loadPlanFile(path)).toThrow(`${path} is not valid YAML or JSON: `);
  });

  it('refuses a file larger than the cap before reading it, naming its size and the cap', () => {
    // 50 MB of a valid plan padded with a comment: parsing it is what took minutes and gigabytes.
    const path = join(dir, 'huge.yaml');
    writeFileSync(path, `platform: local\nsource: { handle: a }\ntarget: { handle: b, version: 17 }\n#`);
    truncateSync(path, 50 * 1024 * 1024);
    const started = Date.now();
    expect(() => loadPlanFile(path)).toThrow(BadInputError);
    expect(() => loadPlanFile(path)).toThrow(
      `plan file ${path} is 52428800 bytes, more than the ${MAX_PLAN_BYTES} bytes (1 MiB) a plan may have`,
    );
    // A stat, however loaded the machine; parsing the file took minutes.
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('accepts a plan of exactly the cap, and refuses one byte more', () => {
    const text = 'platform: local\nsource: { handle: a }\ntarget: { handle: b, version: 17 }\n#';
    const atCap = planFile('at-cap.yaml', text.padEnd(MAX_PLAN_BYTES, 'x'));
    expect(loadPlanFile(atCap).source.handle).toBe('a');
    const over = planFile('over-cap.yaml', text.padEnd(MAX_PLAN_BYTES + 1, 'x'));
    expect(() => loadPlanFile(over)).toThrow(`is ${MAX_PLAN_BYTES + 1} bytes, more than the`);
  });

  it('reads no more than the cap from a file without a size (a device)', () => {
    // /dev/zero never ends: reading it whole would never return.
    expect(() => loadPlanFile('/dev/zero')).toThrow(
      `plan file /dev/zero is over ${MAX_PLAN_BYTES} bytes, more than the`,
    );
  });

  it('names a file that does not exist', () => {
    const path = join(dir, 'missing.yaml');
    expect(() => loadPlanFile(path)).toThrow(BadInputError);
    expect(() => loadPlanFile(path)).toThrow(`cannot read plan file ${path}: ENOENT`);
  });

  it('names the file whose content is invalid', () => {
    const path = planFile(
      'bad.yaml',
      'platform: local\nsource: { handle: a }\ntarget: { handle: b, version: abc }\n',
    );
    expect(() => loadPlanFile(path)).toThrow(
      `${path} is not valid:\n  - target.version: must be a PostgreSQL major version such as "17"`,
    );
  });

  it('says an empty file is not a plan', () => {
    const path = planFile('empty.yaml', '# nothing yet\n');
    expect(() => loadPlanFile(path)).toThrow(
      `${path} is not valid:\n  - (plan): Invalid input: expected object`,
    );
  });
});

describe('the example plans', () => {
  it('examples/plan.yaml is the demo migration on the local platform', () => {
    expect(loadPlanFile(join(root, 'examples/plan.yaml'))).toEqual({
      platform: 'local',
      source: { handle: 'demo-pg14', environment: 'local' },
      target: { handle: 'demo-pg17', version: '17', environment: 'local', diskSize: 10, containerSize: 4096 },
      services: [{ app: 'writer', service: 'cmd' }],
      config: [{ app: 'writer', variable: 'DB_URL' }],
      restore: {},
      method: 'dump',
      copy: { strategy: 'guide' },
      accept: { skipDatabases: [], replicaIdentityFull: [] },
      cutover: { confirm: true, timeout: '1h', onTimeout: 'abort', catchUpTimeout: '2m' },
      cleanup: { vacuumAnalyze: true, deprovisionSource: { mode: 'never' } },
    });
  });

  it('examples/plan.online.yaml is the demo migration by logical replication', () => {
    const online = loadPlanFile(join(root, 'examples/plan.online.yaml'));
    const { method, ...rest } = online;
    expect(method).toBe('logical');
    expect(rest).toEqual({ ...loadPlanFile(join(root, 'examples/plan.yaml')), method: undefined });
  });

  it("examples/plan.aptible.yaml carries the guide's example values", () => {
    expect(loadPlanFile(join(root, 'examples/plan.aptible.yaml'))).toEqual({
      platform: 'aptible',
      source: { handle: 'source-db', environment: 'test-environment' },
      target: {
        handle: 'dump-test',
        version: '14',
        environment: 'test-environment',
        diskSize: 100,
        containerSize: 4096,
      },
      services: [{ app: 'my-app', service: 'cmd' }],
      config: [{ app: 'my-app', variable: 'DB_URL' }],
      restore: {},
      method: 'dump',
      copy: { strategy: 'guide' },
      accept: { skipDatabases: [], replicaIdentityFull: [] },
      cutover: { confirm: true, timeout: '24h', onTimeout: 'abort', catchUpTimeout: '2m' },
      cleanup: { vacuumAnalyze: true, deprovisionSource: { mode: 'never' } },
    });
  });

  it.each(examples)('%s points editors at plan.schema.json', (file) => {
    expect(readFileSync(join(root, file), 'utf8')).toMatch(
      /^# yaml-language-server: \$schema=\.\.\/plan\.schema\.json\n/,
    );
  });
});

describe('plan.schema.json', () => {
  const committed = readFileSync(join(root, 'plan.schema.json'), 'utf8');
  const schema = JSON.parse(committed) as SchemaNode;
  const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);

  it('is what `npm run schema` writes now (run it after changing src/plan/schema.ts)', () => {
    expect(committed).toBe(renderPlanJsonSchema());
  });

  it('is a draft-07 schema an editor can load', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.required).toEqual(['platform', 'source', 'target']);
  });

  it('describes every field', () => {
    const undescribed: string[] = [];
    const visit = (node: SchemaNode, path: string): void => {
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        const childPath = path ? `${path}.${key}` : key;
        if (!child.description) undescribed.push(childPath);
        visit(child, childPath);
      }
      if (node.items) visit(node.items, `${path}[]`);
      for (const alternative of node.oneOf ?? []) visit(alternative, path);
    };
    visit(buildPlanJsonSchema() as SchemaNode, '');
    expect(undescribed).toEqual([]);
  });

  it.each(examples)('accepts %s', (file) => {
    const plan = parseYaml(readFileSync(join(root, file), 'utf8'));
    expect(validate(plan) ? [] : validate.errors).toEqual([]);
  });

  it('accepts the minimal plan and both spellings of a version', () => {
    expect(validate(minimal())).toBe(true);
    expect(validate({ ...minimal(), target: { handle: 'b', version: 17 } })).toBe(true);
  });

  it.each([
    ['an unknown key', { ...minimal(), extra: 1 }],
    ['a bad handle', { ...minimal(), source: { handle: 'Demo PG!' } }],
    ['a bad version', { ...minimal(), target: { handle: 'b', version: 'abc' } }],
    ['a negative disk size', { ...minimal(), target: { handle: 'b', version: 17, diskSize: -5 } }],
    ['a bad duration', { ...minimal(), cutover: { timeout: 'soon' } }],
    ['a delay mode without its delay', { ...minimal(), cleanup: { deprovisionSource: { mode: 'delay' } } }],
  ])('rejects %s, as the loader does', (_, plan) => {
    expect(validate(plan)).toBe(false);
    expect(() => validatePlan(plan)).toThrow(BadInputError);
  });

  it('has a duration pattern that agrees with parseDuration', () => {
    const pattern = new RegExp(DURATION_PATTERN);
    const samples = ['30m', '24h', '7d', '2w', '500ms', '1.5h', ' 10 s ', '0.5s', '010m'];
    const rejected = ['soon', '0s', '0.0h', '7', 'd', '-1h', '1y', '1.h', '.5h', '1e3s', '7 days', ''];
    for (const text of [...samples, ...rejected]) {
      expect([text, pattern.test(text)]).toEqual([text, parseDuration(text) !== undefined]);
    }
    expect(samples.every((text) => pattern.test(text))).toBe(true);
  });
});
