// The online migration's stub activities for the workflow-logic tests (test/online-workflow.test.ts):
// defaults that run a migration through, the plan, and the activity order of each path.
import { ApplicationFailure } from '@temporalio/client';
import type {
  LogicalActivities,
  MigrationActivities,
  ReplicationSample,
  VerificationReport,
} from '../../src/activities/contract';
import { validatePlan } from '../../src/plan/load';
import type { Plan } from '../../src/plan/schema';
import { recordingStubs } from './stubs';

export type Activities = MigrationActivities & LogicalActivities;
export type Name = keyof Activities;
export type Impl = { [K in Name]: (...args: Parameters<Activities[K]>) => ReturnType<Activities[K]> };

export const RECORDED = [{ app: 'shop', service: 'cmd', containerCount: 2 }];

export const REPORT: VerificationReport = {
  ok: true,
  databases: [{ name: 'db', tables: [], sequences: [] }],
  tablesCompared: 3,
  rowsVerified: 42,
  sequencesCompared: 1,
  mismatches: [],
};

export function sample(tablesDone: number, lagBytes: number): ReplicationSample {
  return {
    at: Date.now(),
    databases: [
      {
        name: 'db',
        tablesTotal: 2,
        tablesDone,
        bytesTotal: 2_000_000,
        bytesDone: tablesDone * 1_000_000,
        lagBytes,
      },
    ],
    lagBytes,
    lagSeconds: lagBytes / 1000,
  };
}

/** A non-retryable failure of the given type, as the pg layer's named errors arrive. */
export const named = (type: string, message: string) =>
  ApplicationFailure.create({ type, message, nonRetryable: true });

export function defaults(): Impl {
  let lag = 1000;
  return {
    preflight: async () => ({
      sourceVersion: 14,
      targetVersion: 17,
      clientVersion: 17,
      sourceSizeBytes: 1_000_000,
      freeDiskBytes: 10_000_000_000,
      services: RECORDED,
      warnings: [],
    }),
    testSchema: async () => ({ skipped: false, expectedErrors: [] }),
    createTarget: async (input) => ({
      handle: input.plan.target.handle,
      environment: input.plan.target.environment ?? 'local',
      version: 17,
      foundExisting: false,
    }),
    copySchema: async () => ({ databases: ['db'], droppedStatements: 1, expectedErrors: [] }),
    startReplication: async () => ({
      databases: ['db'],
      publications: ['pgshift_pub_x'],
      slots: ['pgshift_slot_x'],
      subscriptions: ['pgshift_sub_x'],
      replicaIdentityFull: [],
    }),
    awaitInitialSync: async () => sample(2, 0),
    sampleReplication: async () => sample(2, (lag += 1000)),
    scaleServicesDown: async () => undefined,
    awaitCatchUp: async () => ({ waitedMs: 120, lsn: '0/3000060' }),
    checkSchemaUnchanged: async () => undefined,
    syncSequences: async () => ({ sequences: 1 }),
    verifyReplica: async () => REPORT,
    updateServiceConfig: async () => undefined,
    scaleServicesUp: async () => undefined,
    dropReplication: async () => ({
      dropped: ['subscription db/pgshift_sub_x', 'slot pgshift_slot_x', 'publication db/pgshift_pub_x'],
      leftBehind: [],
    }),
    vacuumAnalyze: async () => ({ databases: ['db'] }),
    deprovisionSource: async () => undefined,
    revertServiceConfig: async () => undefined,
    deprovisionTarget: async () => undefined,
    purgeTargetBackups: async () => ({ purged: [] }),
    // The dump method's: never called by this workflow.
    claimWorkspace: async () => ({ taskQueue: 'none', host: 'none', dumpDir: '/none' }),
    pingWorkspace: async () => undefined,
    dumpSource: async () => ({ path: '/none', bytes: 0, sha256: '', droppedStatements: 0 }),
    restoreTarget: async () => ({ expectedErrors: [] }),
    verifyTarget: async () => REPORT,
    removeDump: async () => undefined,
  };
}

export function plan(overrides: Record<string, unknown> = {}): Plan {
  return validatePlan({
    platform: 'local',
    method: 'logical',
    source: { handle: 'shop-pg14' },
    target: { handle: 'shop-pg17', version: '17' },
    services: [{ app: 'shop', service: 'cmd' }],
    config: [{ app: 'shop', variable: 'DB_URL' }],
    cutover: { confirm: false },
    ...overrides,
  });
}

export function stubs(overrides: Partial<Impl> = {}) {
  const recorded = recordingStubs<Name>({ ...defaults(), ...overrides });
  // The samples' number depends on timing: the order is asserted without them.
  return { ...recorded, steps: () => recorded.names().filter((n) => n !== 'sampleReplication') };
}

export const REPLICATING: Name[] = [
  'preflight',
  'testSchema',
  'createTarget',
  'copySchema',
  'startReplication',
  'awaitInitialSync',
];
export const CUTOVER: Name[] = [
  'scaleServicesDown',
  'awaitCatchUp',
  'checkSchemaUnchanged',
  'syncSequences',
  'verifyReplica',
];
export const HAPPY: Name[] = [
  ...REPLICATING,
  ...CUTOVER,
  'updateServiceConfig',
  'scaleServicesUp',
  'dropReplication',
  'vacuumAnalyze',
];
/** The rollback once the services were stopped: up on the source, replication dropped, target gone. */
export const UNDO_CUTOVER: Name[] = [
  'scaleServicesUp',
  'dropReplication',
  'deprovisionTarget',
  'purgeTargetBackups',
];
