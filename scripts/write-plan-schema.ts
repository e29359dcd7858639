// Regenerates plan.schema.json (the editor schema for plan files) from the zod schema: `npm run schema`.
// test/plan.test.ts fails when the committed file differs from what this would write.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { renderPlanJsonSchema } from '../src/plan/json-schema';

const PLAN_SCHEMA_PATH = resolve(__dirname, '..', 'plan.schema.json');

writeFileSync(PLAN_SCHEMA_PATH, renderPlanJsonSchema());
console.log(`wrote ${PLAN_SCHEMA_PATH}`);
