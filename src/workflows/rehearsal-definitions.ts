// The rehearsal's query, steps, status and report: defined once, used by the workflow, the client and the
// tests. Types and a query definition only, so the client imports it without the workflow's code.
import { defineQuery } from '@temporalio/workflow';
import type { BackupRef, VerificationReport } from '../activities/contract';
import type { StepState, StepStatus } from './definitions';

/** The workflow type name, for clients that start it by name rather than importing the workflow module. */
export const REHEARSAL_WORKFLOW_TYPE = 'rehearsalWorkflow';

export const REHEARSAL_STEPS = [
  { name: 'findBackup', title: 'Find the latest backup of the source' },
  { name: 'restoreCopy', title: 'Restore it into a copy of production size' },
  { name: 'warmUpDump', title: 'Dump the copy (warms its disk up)' },
  { name: 'timedDump', title: 'Dump the copy again (the timed dump)' },
  { name: 'createTarget', title: 'Create the rehearsal target' },
  { name: 'restore', title: 'Restore into the rehearsal target' },
  { name: 'verify', title: 'Verify the copy and the target agree' },
] as const;

export type RehearsalStepName = (typeof REHEARSAL_STEPS)[number]['name'];

/** Everything a rehearsal creates goes again, in this order, whether it completed, failed or was cancelled. */
export const REHEARSAL_CLEANUP = [
  { name: 'removeDump', title: 'Remove the dump file' },
  { name: 'deprovisionTarget', title: 'Deprovision the rehearsal target' },
  { name: 'purgeTargetBackups', title: "Purge the rehearsal target's final backups" },
  { name: 'deprovisionCopy', title: 'Deprovision the copy' },
  { name: 'purgeCopyBackups', title: "Purge the copy's final backups" },
] as const;

export type RehearsalCleanupName = (typeof REHEARSAL_CLEANUP)[number]['name'];

export type RehearsalPhase = 'running' | 'cleaning-up' | 'completed' | 'failed' | 'cancelled';

export interface RehearsalStatus {
  rehearsalId: string;
  platform: string;
  /** environment/handle of the production database: only its backups and size are read. */
  source: string;
  /** environment/handle of the copy restored from the source's latest backup. */
  copy: string;
  /** environment/handle of the rehearsal target, of the plan's target version. */
  target: string;
  targetVersion: string;
  phase: RehearsalPhase;
  currentStep?: string;
  steps: StepStatus[];
  /** The cleanup steps run so far, in order. */
  cleanup: StepStatus[];
  backup?: BackupRef;
  dumpBytes?: number;
  /** Set when the rehearsal completed (also when it found problems). */
  report?: RehearsalReport;
  errors: string[];
  warnings: string[];
}

/** What an estimate part rests on: a timing of this rehearsal, or a per-platform allowance. */
export type EstimateBasis = 'measured' | 'allowance';

export interface EstimatePart {
  /** The migration step it stands for (see STEPS in definitions.ts). */
  name: 'scaleDown' | 'dump' | 'restore' | 'verify' | 'updateConfig' | 'scaleUp';
  title: string;
  ms: number;
  basis: EstimateBasis;
  /** How it was arrived at, e.g. "2 service(s) × 1m0s" or "the second dump of the copy". */
  detail: string;
}

export interface DowntimeEstimate {
  /** The sum of the parts. */
  totalMs: number;
  parts: EstimatePart[];
  /** What the estimate leaves out (e.g. the time a person takes to confirm the cutover). */
  excludes: string[];
}

export interface PhaseTiming {
  name: RehearsalStepName;
  title: string;
  state: StepState;
  /** Workflow time from the step's start to its end; undefined for a step that did not run. */
  ms?: number;
}

export interface RehearsalReport {
  rehearsalId: string;
  platform: string;
  source: string;
  copy: string;
  target: string;
  targetVersion: string;
  backup: BackupRef;
  /** True when the restore had no unexpected error, the verification agreed and the cleanup was complete. */
  ok: boolean;
  /** Why ok is false, one line each. */
  problems: string[];
  phases: PhaseTiming[];
  /** The warm-up dump, then the timed one (the estimate's), and the timed dump's size. */
  dumps: { warmUpMs: number; timedMs: number; bytes: number };
  estimate: DowntimeEstimate;
  /** Error lines of the restore into the rehearsal target, exactly as psql printed them. */
  restore: { expectedErrors: string[]; unexpectedErrors: string[] };
  verification?: VerificationReport;
  /** Why the verification did not run (it is skipped after unexpected restore errors). */
  verificationSkipped?: string;
  cleanup: StepStatus[];
  warnings: string[];
}

/** The details of a rehearsal's failure, for a client when no worker is left to answer the query. */
export interface RehearsalFailureDetails {
  reason: string;
  failedStep?: string;
  cleanup: StepStatus[];
}

export const rehearsalStatusQuery = defineQuery<RehearsalStatus>('rehearsalStatus');

/** The optional second argument of the rehearsal workflow. */
export interface RehearsalWorkflowOptions {
  /** Upsert PgshiftStep/PgshiftSource/PgshiftPhase (default true); false when the server has not registered them. */
  searchAttributes?: boolean;
  /**
   * How long the dumps, the restore and the dump's removal may wait for the worker that holds the dump to
   * take them (ms notation, default '5m'). Past it the rehearsal fails (and cleans up): it is cheap to run
   * again, so it does not dump again elsewhere as a migration does. A worker that dies during one of them
   * is noticed sooner, as in the migration (see workspace-queue.ts).
   */
  workspaceStartTimeout?: string;
}
