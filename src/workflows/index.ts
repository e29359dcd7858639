// The workflow bundle's entry point: every function exported here is a workflow type the worker serves.
export { migrationWorkflow } from './migration';
export { rehearsalWorkflow } from './rehearsal';
