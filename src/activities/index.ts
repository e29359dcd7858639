import type { LogicalActivities, MigrationActivities, RehearsalActivities } from './contract';
import type { ActivityDeps } from './deps';
import { preflight } from './preflight';
import { testSchema } from './test-schema';
import { createTarget } from './create-target';
import { revertServiceConfig, scaleServicesDown, scaleServicesUp, updateServiceConfig } from './services';
import { claimWorkspace } from './workspace';
import { pingWorkspace } from './ping';
import { dumpSource, restoreTarget } from './copy';
import { vacuumAnalyze, verifyTarget } from './verify';
import { deprovisionSource, deprovisionTarget, purgeTargetBackups, removeDump } from './cleanup';
import { findLatestBackup, restoreBackupCopy } from './rehearsal';
import { awaitInitialSync, copySchema, sampleReplication, startReplication } from './logical-replication';
import { awaitCatchUp, checkSchemaUnchanged, syncSequences, verifyReplica } from './logical-cutover';
import { dropReplication } from './logical-cleanup';

export type { ActivityDeps } from './deps';
export { platformRegistry } from './deps';

/** The activities, bound to the dependencies the worker gives them: the migration's (both methods) and the rehearsal's. */
export function createActivities(
  deps: ActivityDeps,
): MigrationActivities & RehearsalActivities & LogicalActivities {
  return {
    preflight: (input) => preflight(deps, input),
    testSchema: (input) => testSchema(deps, input),
    createTarget: (input) => createTarget(deps, input),
    scaleServicesDown: (input, services) => scaleServicesDown(deps, input, services),
    claimWorkspace: (input) => claimWorkspace(deps, input),
    pingWorkspace: () => pingWorkspace(),
    dumpSource: (input) => dumpSource(deps, input),
    restoreTarget: (input, dump, opts) => restoreTarget(deps, input, dump, opts),
    verifyTarget: (input) => verifyTarget(deps, input),
    updateServiceConfig: (input) => updateServiceConfig(deps, input),
    scaleServicesUp: (input, services) => scaleServicesUp(deps, input, services),
    vacuumAnalyze: (input) => vacuumAnalyze(deps, input),
    deprovisionSource: (input) => deprovisionSource(deps, input),
    revertServiceConfig: (input) => revertServiceConfig(deps, input),
    deprovisionTarget: (input) => deprovisionTarget(deps, input),
    purgeTargetBackups: (input) => purgeTargetBackups(deps, input),
    removeDump: (input) => removeDump(deps, input),
    findLatestBackup: (input) => findLatestBackup(deps, input),
    restoreBackupCopy: (input, backupId) => restoreBackupCopy(deps, input, backupId),
    copySchema: (input) => copySchema(deps, input),
    startReplication: (input) => startReplication(deps, input),
    awaitInitialSync: (input) => awaitInitialSync(deps, input),
    sampleReplication: (input) => sampleReplication(deps, input),
    awaitCatchUp: (input) => awaitCatchUp(deps, input),
    checkSchemaUnchanged: (input) => checkSchemaUnchanged(deps, input),
    syncSequences: (input) => syncSequences(deps, input),
    verifyReplica: (input) => verifyReplica(deps, input),
    dropReplication: (input) => dropReplication(deps, input),
  };
}
