// Signals, queries and the status shape: defined once, used by the workflow, the client and the tests.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { ReplicationSample, VerificationReport } from '../activities/contract';

export const TASK_QUEUE = 'pgshift';

export const STEPS = [
  { name: 'preflight', title: 'Preflight checks' },
  { name: 'testSchema', title: 'Test the schema on the target version' },
  { name: 'createTarget', title: 'Create the target database' },
  { name: 'awaitWindow', title: 'Wait for the downtime window' },
  { name: 'scaleDown', title: 'Scale services down' },
  { name: 'dump', title: 'Dump the data' },
  { name: 'restore', title: 'Restore the data' },
  { name: 'verify', title: 'Verify source and target agree' },
  { name: 'awaitCutover', title: 'Wait for cutover confirmation' },
  { name: 'updateConfig', title: 'Update services to the target' },
  { name: 'scaleUp', title: 'Scale services back up' },
  { name: 'vacuumAnalyze', title: 'Vacuum and analyze' },
  { name: 'deprovisionSource', title: 'Deprovision the source' },
] as const;

export type StepName = (typeof STEPS)[number]['name'];

/** method: logical — the steps of src/workflows/online-migration.ts; the downtime is scaleDown → scaleUp. */
export const ONLINE_STEPS = [
  { name: 'preflight', title: 'Preflight checks' },
  { name: 'testSchema', title: 'Test the schema on the target version' },
  { name: 'createTarget', title: 'Create the target database' },
  { name: 'copySchema', title: 'Copy the roles and the schema' },
  { name: 'startReplication', title: 'Start logical replication' },
  { name: 'initialSync', title: 'Copy the data (initial sync)' },
  { name: 'awaitCutover', title: 'Replicating: wait for cutover confirmation' },
  { name: 'awaitWindow', title: 'Wait for the downtime window' },
  { name: 'scaleDown', title: 'Scale services down' },
  { name: 'catchUp', title: 'Wait for the target to catch up' },
  { name: 'checkSchema', title: 'Check the source schema is unchanged' },
  { name: 'syncSequences', title: 'Set the sequences on the target' },
  { name: 'verify', title: 'Verify row counts, sequences and schema' },
  { name: 'updateConfig', title: 'Update services to the target' },
  { name: 'scaleUp', title: 'Scale services back up' },
  { name: 'dropReplication', title: 'Drop the replication slots, publications and subscriptions' },
  { name: 'vacuumAnalyze', title: 'Vacuum and analyze' },
  { name: 'deprovisionSource', title: 'Deprovision the source' },
] as const;

export type OnlineStepName = (typeof ONLINE_STEPS)[number]['name'];

export const COMPENSATIONS = [
  { name: 'revertServiceConfig', title: 'Revert service configuration' },
  { name: 'scaleServicesUp', title: 'Scale services back up on the source' },
  { name: 'removeDump', title: 'Remove the dump file' },
  { name: 'dropReplication', title: 'Drop the replication slots, publications and subscriptions' },
  { name: 'deprovisionTarget', title: 'Deprovision the target' },
  { name: 'purgeTargetBackups', title: "Purge the target's final backups" },
] as const;

export type CompensationName = (typeof COMPENSATIONS)[number]['name'];

export type StepState = 'pending' | 'running' | 'done' | 'skipped' | 'failed' | 'cancelled';

export interface StepStatus {
  name: string;
  title: string;
  state: StepState;
  /** Epoch milliseconds (workflow time). */
  startedAt?: number;
  endedAt?: number;
  detail?: string;
  error?: string;
}

export type MigrationPhase =
  | 'running'
  | 'awaiting-window'
  | 'awaiting-cutover'
  | 'compensating'
  | 'rolled-back'
  | 'completed'
  | 'completed-with-errors'
  | 'awaiting-source-deprovision';

export interface MigrationStatus {
  migrationId: string;
  platform: string;
  source: string;
  target: string;
  phase: MigrationPhase;
  currentStep?: string;
  steps: StepStatus[];
  compensation: StepStatus[];
  /** Services have started on the target: from here nothing is rolled back. */
  pointOfNoReturn: boolean;
  /**
   * When the services went to zero and when they came back (either on the target or the source);
   * scheduledAt: when the downtime is to start, once the window step has chosen it (plan.cutover.window).
   */
  downtime: { scheduledAt?: number; startedAt?: number; endedAt?: number };
  /** Set by the window step when the plan has a downtime window (plan.cutover.window). */
  window?: WindowStatus;
  dumpBytes?: number;
  verification?: VerificationReport;
  cutover: { waiting: boolean; deadline?: number; confirmed: boolean; earlySignalsIgnored: number };
  /** 'dump' (the guide) or 'logical'; absent in migrations started before methods existed (dump). */
  method?: 'dump' | 'logical';
  /** method logical: initial-sync progress, then the lag, sampled while the gate waits. */
  replication?: ReplicationStatus;
  abortReason?: string;
  errors: string[];
  warnings: string[];
}

export interface ReplicationStatus {
  /** The latest sample (per-database progress and lag). */
  latest?: ReplicationSample;
  /**
   * Lag over time, oldest first: the first sample and the newest ones, at most LAG_HISTORY_MAX entries
   * (the workflow history keeps every sample the workflow took).
   */
  lagHistory: { at: number; bytes: number; seconds?: number }[];
  /** How many samples the workflow took, and how far apart it takes them now (it slows as a wait goes on). */
  samples?: number;
  paceMs?: number;
  /** What replication created, for the operator: cleanup drops exactly these. */
  objects?: { databases?: string[]; publications: string[]; slots: string[]; subscriptions: string[] };
  /** The catch-up at cutover: how long the target took to apply the last writes, and up to where. */
  catchUp?: { waitedMs: number; lsn: string };
  /** Set once dropReplication ran: what was dropped, and SQL for anything left behind. */
  cleanup?: { dropped: string[]; leftBehind: string[] };
}

/** The most entries ReplicationStatus.lagHistory keeps. */
export const LAG_HISTORY_MAX = 200;

export interface WindowStatus {
  /** The plan's window in words: "daily 02:00-04:00 Europe/Berlin", "from 2026-12-01 02:00 UTC". */
  description: string;
  /** The IANA zone the window's times are shown in (UTC for a one-off window). */
  timeZone: string;
  /** True while the workflow sleeps until downtime.scheduledAt. */
  waiting: boolean;
  /** When the chosen window ends (epoch ms); absent for a one-off window without an end. */
  endsAt?: number;
  /** The downtime estimate the start was chosen with, and what it rests on. */
  estimateMs: number;
  estimateBasis: string;
}

export interface MigrationSummary extends MigrationStatus {
  downtimeMs?: number;
  rowsVerified: number;
}

/** Confirms the cutover. Only honoured while the workflow waits at the cutover gate. */
export const cutoverSignal = defineSignal<[{ by?: string }?]>('cutover');
/** Rolls the migration back; ignored (and recorded) after the point of no return. */
export const abortSignal = defineSignal<[{ reason?: string }?]>('abort');
/** Confirms deprovisioning the source when the plan says `deprovisionSource.mode: signal`. */
export const deprovisionSourceSignal = defineSignal('deprovisionSource');
/** Keeps the source: cancels a pending deprovisioning (signal or delay). */
export const keepSourceSignal = defineSignal('keepSource');

export const statusQuery = defineQuery<MigrationStatus>('status');

// Typed search attributes so migrations can be listed and filtered in the UI and by `pgshift list`.
export const STEP_ATTRIBUTE = defineSearchAttributeKey('PgshiftStep', SearchAttributeType.KEYWORD);
export const SOURCE_ATTRIBUTE = defineSearchAttributeKey('PgshiftSource', SearchAttributeType.KEYWORD);
/** The workflow's phase (MigrationPhase or RehearsalPhase), upserted whenever it changes. */
export const PHASE_ATTRIBUTE = defineSearchAttributeKey('PgshiftPhase', SearchAttributeType.KEYWORD);
export const SEARCH_ATTRIBUTES = [STEP_ATTRIBUTE, SOURCE_ATTRIBUTE, PHASE_ATTRIBUTE];

/** The workflow type name, for clients that start it by name rather than importing the workflow module. */
export const MIGRATION_WORKFLOW_TYPE = 'migrationWorkflow';

/** The optional second argument of the migration workflow: what the client knows about the server. */
export interface MigrationWorkflowOptions {
  /**
   * Upsert PgshiftStep/PgshiftSource/PgshiftPhase (default true). Pass false when the server has not registered them:
   * an upsert of an unknown attribute fails every workflow task.
   */
  searchAttributes?: boolean;
  /**
   * How long the dump, the restore and the dump's removal may wait for the worker that holds the dump to
   * take them (ms notation, default '5m'). Past it that worker is taken for gone: the dump is made again on
   * another, or, for the removal, the operator is told where the file is left. A worker that dies during one
   * of them is noticed sooner: by the heartbeat timeout, then a ping no worker takes within 30s (or this
   * timeout, if shorter; see workspace-queue.ts).
   */
  workspaceStartTimeout?: string;
}
