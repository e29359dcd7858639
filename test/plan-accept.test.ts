// The plan's `accept` section: losses the operator accepts explicitly. Preflight checks the names against
// the source (test/fidelity.test.ts); here, what the plan itself admits.
import { BadInputError } from '../src/errors';
import { buildPlanJsonSchema } from '../src/plan/json-schema';
import { validatePlan } from '../src/plan/load';
import type { PlanInput } from '../src/plan/schema';

const minimal: PlanInput = {
  platform: 'local',
  source: { handle: 'demo-pg14' },
  target: { handle: 'demo-pg17', version: '17' },
};

function problems(raw: unknown): string[] {
  let message = '';
  try {
    validatePlan(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(BadInputError);
    message = (err as Error).message;
  }
  expect(message).toMatch(/^plan is not valid:\n/);
  return message.split('\n').slice(1);
}

describe('accept.skipDatabases', () => {
  it('is empty unless given: nothing is left behind without the plan saying so', () => {
    const none = { skipDatabases: [], replicaIdentityFull: [] };
    expect(validatePlan(minimal).accept).toEqual(none);
    expect(validatePlan({ ...minimal, accept: {} }).accept).toEqual(none);
  });

  it('keeps database names as written, any PostgreSQL name included', () => {
    const names = ['archive_2019', 'Old Reports', 'ünïcode', 'x'.repeat(63)];
    expect(validatePlan({ ...minimal, accept: { skipDatabases: names } }).accept.skipDatabases).toEqual(
      names,
    );
  });

  it('rejects an empty name, a name longer than PostgreSQL allows, and a name that is not a string', () => {
    expect(problems({ ...minimal, accept: { skipDatabases: [''] } })).toEqual([
      expect.stringMatching(/^ {2}- accept\.skipDatabases\.0: /),
    ]);
    expect(problems({ ...minimal, accept: { skipDatabases: ['ok', 'x'.repeat(64)] } })).toEqual([
      expect.stringMatching(/^ {2}- accept\.skipDatabases\.1: /),
    ]);
    expect(problems({ ...minimal, accept: { skipDatabases: [42] } })).toEqual([
      expect.stringMatching(/^ {2}- accept\.skipDatabases\.0: /),
    ]);
    expect(problems({ ...minimal, accept: { skipDatabases: 'closed' } })).toEqual([
      expect.stringMatching(/^ {2}- accept\.skipDatabases: /),
    ]);
  });

  it('names a misspelt field instead of ignoring it', () => {
    expect(problems({ ...minimal, accept: { skipDatabase: ['closed'] } })).toEqual([
      '  - accept.skipDatabase: is not a known field',
    ]);
  });

  it('is described in the JSON Schema editors use', () => {
    const schema = buildPlanJsonSchema() as {
      properties: { accept: { properties: { skipDatabases: { type: string; description?: string } } } };
    };
    const field = schema.properties.accept.properties.skipDatabases;
    expect(field.type).toBe('array');
    expect(field.description).toMatch(/ALLOW_CONNECTIONS false/);
  });
});
