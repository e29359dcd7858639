import { z } from 'zod';
import { parseDuration } from '../lib/duration';

// The plan mirrors the variables of the Aptible guide (SOURCE_*, TARGET_*), plus what the guide leaves
// to the operator's judgement: which services to stop, which config to repoint, how to cut over and clean up.
// It holds handles only, never credentials: it travels in Temporal history.

/** A handle (database, environment, app): the local platform holds its own names to the same rule. */
export const handle = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,62}$/,
    'must be 1-63 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit',
  );

const duration = z.string().refine((s) => parseDuration(s) !== undefined, {
  message: 'must be a duration such as "30m", "24h" or "7d", at most 366d',
});

// ISO 8601 with an explicit offset: a start time that depends on the worker's zone would be a trap.
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;
const instant = z.string().refine((s) => ISO_WITH_OFFSET.test(s) && !Number.isNaN(Date.parse(s)), {
  message: 'must be an ISO 8601 time with an offset or Z, such as "2026-12-01T02:00:00Z"',
});

/** A wall-clock time of day: "02:00" or, for tests and precise windows, "02:00:30". */
const timeOfDay = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/, 'must be a time of day such as "02:00" (24-hour clock)');

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

// One object rather than a union: a union's error would not say which field is wrong.
const downtimeWindow = z
  .object({
    start: instant
      .optional()
      .describe('A one-off window: the downtime starts at this time (at once if past)'),
    end: instant
      .optional()
      .describe(
        'With start, optional: when the downtime should be over (a migration that cannot make it warns)',
      ),
    daily: z
      .object({
        from: timeOfDay.describe('Start of the daily window, in timeZone'),
        to: timeOfDay.describe('End of the daily window, in timeZone (before from: it ends the next day)'),
        timeZone: z
          .string()
          .refine(isTimeZone, { message: 'must be an IANA time zone such as "Europe/Berlin" or "UTC"' })
          .describe('IANA time zone of from and to'),
      })
      .strict()
      .optional()
      .describe('A daily window: the downtime starts in the next one its estimate fits in'),
  })
  .strict()
  .superRefine((w, ctx) => {
    if ((w.start === undefined) === (w.daily === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'must have either start or daily, not both' });
    }
    if (w.end !== undefined && w.daily !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['end'], message: 'goes with start, not with daily' });
    }
    if (w.start !== undefined && w.end !== undefined && Date.parse(w.end) <= Date.parse(w.start)) {
      ctx.addIssue({ code: 'custom', path: ['end'], message: 'must be after start' });
    }
    if (w.daily !== undefined && w.daily.from === w.daily.to) {
      ctx.addIssue({ code: 'custom', path: ['daily', 'to'], message: 'must differ from from' });
    }
  });

const majorVersion = z.coerce.string().regex(/^\d+$/, 'must be a PostgreSQL major version such as "17"');

export const serviceSchema = z
  .object({
    app: handle.describe('The app (as in `aptible apps`) that runs the service'),
    service: z
      .string()
      .min(1, 'must not be empty')
      .describe('The service (process type) of the app, e.g. "cmd" or "web"'),
  })
  .strict();

export const configVarSchema = z
  .object({
    app: handle.describe('The app whose configuration holds the database URL'),
    variable: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name such as DB_URL')
      .describe('The configuration variable to point at the target, e.g. DB_URL'),
  })
  .strict();

export const planSchema = z
  .object({
    platform: z.enum(['local', 'aptible']).describe('Where the databases and services live'),
    source: z
      .object({
        handle: handle.describe('SOURCE_HANDLE: the database to migrate'),
        environment: handle.default('local').describe('SOURCE_ENVIRONMENT'),
      })
      .strict(),
    target: z
      .object({
        handle: handle.describe('TARGET_HANDLE: the database to create'),
        version: majorVersion.describe('TARGET_VERSION: PostgreSQL major version of the new database'),
        environment: handle.optional().describe('TARGET_ENVIRONMENT (defaults to the source environment)'),
        diskSize: z.number().int().positive().default(10).describe('TARGET_DISK_SIZE in GB'),
        containerSize: z.number().int().positive().default(4096).describe('TARGET_CONTAINER_SIZE in MB'),
      })
      .strict(),
    services: z
      .array(serviceSchema)
      .default([])
      .describe('Services that use the source: scaled to zero during the copy, back up on the target'),
    config: z
      .array(configVarSchema)
      .default([])
      .describe('App configuration variables set to the target database URL at cutover'),
    method: z
      .enum(['dump', 'logical'])
      .default('dump')
      .describe(
        "dump: the guide's dump and restore, services at zero for the whole copy (default); logical: logical " +
          'replication keeps the target current while the services run, the downtime is the cutover only',
      ),
    copy: z
      .object({
        strategy: z
          .enum(['guide', 'stream', 'parallel'])
          .default('guide')
          .describe(
            "method dump: guide — the guide's one pg_dumpall file, restored by psql (default: what the guide " +
              'does, one file to audit); stream — no file: the roles by pg_dumpall --globals-only, then each ' +
              'database by pg_dump piped into psql, several databases at once (the fastest here: the restore ' +
              'runs while the dump is taken); parallel — the same parts as files, each database by ' +
              'pg_dump/pg_restore in parallel jobs (for many cores and a source of several large tables)',
          ),
        jobs: z
          .number()
          .int()
          .min(1)
          .max(64)
          .optional()
          .describe(
            "strategy parallel: jobs per database (default: from the worker's cores and the tables); " +
              "strategy stream: databases copied at once (default: the worker's cores)",
          ),
      })
      .strict()
      .default({ strategy: 'guide' })
      .describe('How method dump copies the data'),
    restore: z
      .object({
        expectedErrors: z
          .array(z.string().min(1))
          .optional()
          .describe(
            'Restore errors that are allowed, as text after "ERROR:" (default: the admin role, the postgres role and the default database already exist)',
          ),
      })
      .strict()
      .default({}),
    accept: z
      .object({
        skipDatabases: z
          .array(z.string().min(1).max(63))
          .default([])
          .describe(
            'Databases the copy cannot carry (e.g. ALLOW_CONNECTIONS false) that you accept to leave behind: migrated without them, with a warning',
          ),
        replicaIdentityFull: z
          .array(z.string().min(1).max(200))
          .default([])
          .describe(
            'method logical: tables without a primary key or replica identity ("database.schema.table") you ' +
              'accept to have set to REPLICA IDENTITY FULL on the source, so UPDATE and DELETE on them keep working',
          ),
      })
      .strict()
      .default({ skipDatabases: [], replicaIdentityFull: [] })
      .describe(
        'Losses the plan accepts explicitly; anything not listed here that the copy cannot carry stops preflight',
      ),
    cutover: z
      .object({
        confirm: z.boolean().default(true).describe('Wait for `pgshift cutover` before switching services'),
        timeout: duration.default('24h').describe('How long to wait for the confirmation'),
        onTimeout: z
          .enum(['abort', 'proceed'])
          .default('abort')
          .describe('abort: roll back; proceed: cut over without confirmation'),
        window: downtimeWindow
          .optional()
          .describe(
            'When the downtime (the scale-down) may start; everything before it runs at once. Absent: at once',
          ),
        catchUpTimeout: duration
          .default('2m')
          .describe(
            'method logical: how long, with the services stopped, the target may take to apply what the source ' +
              'wrote; past it the migration rolls back (services up again on the source)',
          ),
        downtimeEstimate: duration
          .optional()
          .describe(
            'The expected downtime, e.g. a rehearsal\'s estimate ("90s"), to check it fits in the window; ' +
              "default: estimated from the source's size",
          ),
      })
      .strict()
      .default({ confirm: true, timeout: '24h', onTimeout: 'abort', catchUpTimeout: '2m' }),
    cleanup: z
      .object({
        vacuumAnalyze: z.boolean().default(true),
        deprovisionSource: z
          .discriminatedUnion('mode', [
            z.object({ mode: z.literal('never') }).strict(),
            z.object({ mode: z.literal('signal') }).strict(),
            z.object({ mode: z.literal('delay'), delay: duration }).strict(),
          ])
          .default({ mode: 'never' })
          .describe('never (default), after `pgshift deprovision-source`, or after a durable delay'),
      })
      .strict()
      .default({ vacuumAnalyze: true, deprovisionSource: { mode: 'never' } }),
  })
  .strict()
  .superRefine((plan, ctx) => {
    const seen = new Set<string>();
    plan.services.forEach((s, i) => {
      const key = `${s.app}/${s.service}`;
      if (seen.has(key)) {
        ctx.addIssue({ code: 'custom', path: ['services', i], message: `lists ${key} twice` });
      }
      seen.add(key);
    });
    const env = plan.target.environment ?? plan.source.environment;
    if (plan.target.handle === plan.source.handle && env === plan.source.environment) {
      ctx.addIssue({
        code: 'custom',
        path: ['target', 'handle'],
        message: 'must differ from source.handle in the same environment',
      });
    }
  });

export type PlanInput = z.input<typeof planSchema>;
export type ParsedPlan = z.output<typeof planSchema>;

/** The plan as the workflow sees it: defaults filled in, target environment resolved. */
export type Plan = Omit<ParsedPlan, 'target'> & {
  target: Omit<ParsedPlan['target'], 'environment'> & { environment: string };
};
