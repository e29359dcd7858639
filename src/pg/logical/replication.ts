// One database's logical replication, from start to clean-up: the functions the logical method's
// activities use, each in a file of its own.
export { startDatabaseReplication } from './start';
export { type ReplicatedDatabase, sampleReplication } from './progress';
export { disableSubscriptions, schemaChangedError, waitForCatchUp } from './catch-up';
export { dropDatabaseReplication } from './drop';
