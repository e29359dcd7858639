// The contract between the migration workflow and its activities: one activity per step of the guide.
// Types only, so the workflow bundle imports nothing that does I/O. Nothing here may hold a secret.
import type { Plan } from '../plan/schema';

export interface MigrationInput {
  /** The workflow id; also the label a platform stores on the target it creates. */
  migrationId: string;
  plan: Plan;
  /**
   * The workflow run, set by the workflow. What a run creates is labelled with it, so a later run of the
   * same plan never mistakes a database an earlier run made (and perhaps put in service) for its own.
   */
  runId?: string;
  /**
   * When the workflow run started (epoch ms), set by the workflow. On a platform that keeps no label
   * (Aptible), a database or backup made after it under a handle this run creates is taken as this run's.
   */
  startedAt?: number;
}

export interface ServiceRef {
  app: string;
  service: string;
}

export interface RecordedService extends ServiceRef {
  /** Container count before the migration scaled it down; what it is scaled back up to. */
  containerCount: number;
}

export interface PreflightResult {
  sourceVersion: number;
  targetVersion: number;
  /** Major version of the pg_dumpall that will run. */
  clientVersion: number;
  sourceSizeBytes?: number;
  freeDiskBytes: number;
  services: RecordedService[];
  warnings: string[];
}

export interface SchemaTestResult {
  skipped: boolean;
  /** Errors seen that the plan allows, exactly as psql printed them. */
  expectedErrors: string[];
}

export interface CreateTargetResult {
  handle: string;
  environment: string;
  version: number;
  /** True when a retry found the database an earlier attempt of this migration created. */
  foundExisting: boolean;
}

/**
 * The worker that holds this migration's dump: the dump, the restore and the dump's removal run on its own
 * task queue, since the file exists only on its disk.
 */
export interface WorkspaceClaim {
  /** The task queue only workers on that host and work directory poll. */
  taskQueue: string;
  /** Its host name, for the operator told to delete a dump by hand. */
  host: string;
  /** The directory the dump is written to on that host (a path, no secret). */
  dumpDir: string;
}

export interface DumpResult {
  /** Where the dump lies on the worker that made it. */
  path: string;
  bytes: number;
  sha256: string;
  /** Lines the password filter removed. */
  droppedStatements: number;
  /** How long the attempt that made it took (retries and queueing excluded). */
  durationMs?: number;
  /** copy.strategy stream: nothing was written; the restore step dumps into the target itself. */
  streamed?: boolean;
}

export interface RestoreTargetOptions {
  /**
   * The target was created by this run's createTarget and no restore has been sent to it: the reset before
   * the restore is skipped (when the target looks as created). Never set on a retry.
   */
  freshTarget?: boolean;
}

export interface RestoreResult {
  expectedErrors: string[];
  /** copy.strategy stream: what went through the pipe (the dump's size, and what the filter removed). */
  streamed?: { bytes: number; droppedStatements: number };
  /** How long the attempt that succeeded took (retries and queueing excluded). */
  durationMs?: number;
}

/**
 * The details of an `UnexpectedRestoreErrors` failure (restore or schema test): the unexpected error lines,
 * then the expected ones, exactly as psql printed them (each list capped, its last line then saying how
 * many more there were).
 */
export type UnexpectedRestoreErrorsDetails = [unexpected: string[], expected: string[]];

export interface TableReport {
  schema: string;
  name: string;
  sourceRows: number;
  targetRows: number;
  match: boolean;
  /** Absent for a table; a partition tree is compared at its root when hash partitioning routes its rows. */
  kind?: 'matview' | 'partition tree';
}

export interface SequenceReport {
  schema: string;
  name: string;
  sourceValue: string | null;
  targetValue: string | null;
  match: boolean;
}

export interface DatabaseReport {
  name: string;
  tables: TableReport[];
  sequences: SequenceReport[];
  /** Tables and sequences compared but left out of the lists above, which are capped for the history. */
  omitted?: number;
  /** False for a database that allows no connections: its properties are compared, not its contents. */
  readable?: boolean;
}

export interface VerificationClassCount {
  compared: number;
  mismatched: number;
}

export interface VerificationReport {
  ok: boolean;
  databases: DatabaseReport[];
  tablesCompared: number;
  rowsVerified: number;
  sequencesCompared: number;
  /** One line per disagreement, e.g. `db.public.orders: source 10 rows, target 9`. */
  mismatches: string[];
  /** How long the comparison took in the attempt that produced this report. */
  durationMs?: number;
  /** All disagreements, when `mismatches` (capped for the history) lists only the first ones. */
  mismatchCount?: number;
  /** Per class of object (tables, functions, roles, comments...): how many were compared, how many differ. */
  classes?: Record<string, VerificationClassCount>;
  /** Source databases the plan accepts to leave behind (accept.skipDatabases): not compared. */
  skipped?: string[];
  /** Differences that are not mismatches, e.g. an extension at a newer version on the target. */
  notes?: string[];
}

export interface VacuumResult {
  databases: string[];
}

export interface PurgeResult {
  purged: string[];
}

export interface MigrationActivities {
  preflight(input: MigrationInput): Promise<PreflightResult>;
  testSchema(input: MigrationInput): Promise<SchemaTestResult>;
  createTarget(input: MigrationInput): Promise<CreateTargetResult>;
  scaleServicesDown(input: MigrationInput, services: RecordedService[]): Promise<void>;
  /** Runs on the shared queue; whichever worker takes it holds the dump. */
  claimWorkspace(input: MigrationInput): Promise<WorkspaceClaim>;
  /**
   * Sent to a claimed worker's queue when a step there stopped answering: a worker taking it at all is the
   * answer (that host and work directory are still served).
   */
  pingWorkspace(): Promise<void>;
  dumpSource(input: MigrationInput): Promise<DumpResult>;
  restoreTarget(input: MigrationInput, dump: DumpResult, opts?: RestoreTargetOptions): Promise<RestoreResult>;
  verifyTarget(input: MigrationInput): Promise<VerificationReport>;
  updateServiceConfig(input: MigrationInput): Promise<void>;
  scaleServicesUp(input: MigrationInput, services: RecordedService[]): Promise<void>;
  vacuumAnalyze(input: MigrationInput): Promise<VacuumResult>;
  deprovisionSource(input: MigrationInput): Promise<void>;
  // Compensation.
  revertServiceConfig(input: MigrationInput): Promise<void>;
  deprovisionTarget(input: MigrationInput): Promise<void>;
  purgeTargetBackups(input: MigrationInput): Promise<PurgeResult>;
  removeDump(input: MigrationInput): Promise<void>;
}

// ---- method: logical (src/workflows/online-migration.ts) ----

/** One database's replication, as the status shows it. No secret: names and numbers. */
export interface ReplicationDatabaseProgress {
  name: string;
  /** Tables of the publication, and those whose initial copy is done (pg_subscription_rel state r or s). */
  tablesTotal: number;
  tablesDone: number;
  /** Size of the published tables on the source, and of the tables done (estimates for the progress bar). */
  bytesTotal?: number;
  bytesDone?: number;
  /** WAL the source has written that this database's subscription has not confirmed yet. */
  lagBytes?: number;
  /** Errors of the subscription's apply and table-sync workers so far (pg_stat_subscription_stats, 15+). */
  applyErrors?: number;
  syncErrors?: number;
  /** Whether a WAL sender holds the subscription's slot on the source (absent when the slot is missing). */
  slotActive?: boolean;
}

export interface ReplicationSample {
  /** Epoch ms when it was taken (worker clock). */
  at: number;
  databases: ReplicationDatabaseProgress[];
  /** The largest lag of any database, in bytes of WAL. */
  lagBytes: number;
  /** Seconds since the oldest unconfirmed write reached the source, when the server can tell (else absent). */
  lagSeconds?: number;
}

export interface SchemaCopyResult {
  /** Databases whose schema was copied (those replicated). */
  databases: string[];
  /** Password statements the filter removed from the roles. */
  droppedStatements: number;
  expectedErrors: string[];
  /** True when the platform copies the schema itself (Aptible's db:replicate --logical). */
  byPlatform?: boolean;
  durationMs?: number;
}

export interface ReplicationStartResult {
  databases: string[];
  /** Names of what was created, per side: the operator's list of what clean-up must drop. */
  publications: string[];
  slots: string[];
  subscriptions: string[];
  /** Tables set to REPLICA IDENTITY FULL on the source (accept.replicaIdentityFull). */
  replicaIdentityFull: string[];
}

export interface CatchUpResult {
  /** How long the target took, after the scale-down, to apply everything the source had written. */
  waitedMs: number;
  /** The source's WAL position everything was applied up to. */
  lsn: string;
}

export interface SequenceSyncResult {
  sequences: number;
}

export interface ReplicationCleanupResult {
  /** What was dropped: "subscription db/name", "slot name", "publication db/name". */
  dropped: string[];
  /** Exact SQL for what could not be dropped, with where to run it. Empty when all is gone. */
  leftBehind: string[];
}

export interface LogicalActivities {
  /** Roles (pg_dumpall --globals-only through the password filter) and every replicated database's schema. */
  copySchema(input: MigrationInput): Promise<SchemaCopyResult>;
  /** Publication + slot on the source, subscription on the target, per database; idempotent by name. */
  startReplication(input: MigrationInput): Promise<ReplicationStartResult>;
  /** Heartbeats per-database progress until every table's initial copy is done. */
  awaitInitialSync(input: MigrationInput): Promise<ReplicationSample>;
  /** One quick sample of progress and lag, for the status while the gate waits. */
  sampleReplication(input: MigrationInput): Promise<ReplicationSample>;
  /** After the scale-down: waits (bounded by plan.cutover.catchUpTimeout) until the target applied all. */
  awaitCatchUp(input: MigrationInput): Promise<CatchUpResult>;
  /** DDL is not replicated: throws SchemaChangedError naming what differs between source and target. */
  checkSchemaUnchanged(input: MigrationInput): Promise<void>;
  /** Sequences are not replicated: sets every sequence of the target from the source. */
  syncSequences(input: MigrationInput): Promise<SequenceSyncResult>;
  /** Row counts of every table, sequences and schema, source against target (services stopped). */
  verifyReplica(input: MigrationInput): Promise<VerificationReport>;
  /** Drops subscriptions, slots and publications on both sides; idempotent; never throws for a gone object. */
  dropReplication(input: MigrationInput): Promise<ReplicationCleanupResult>;
}

/** A backup of the source, as a rehearsal reports it (no secret: ids and times). */
export interface BackupRef {
  id: string;
  /** ISO time the backup was taken. */
  createdAt: string;
  sizeBytes?: number;
}

/** The rehearsal's copy of production: a new database restored from the source's latest backup. */
export interface RestoredCopy {
  handle: string;
  environment: string;
  version: number;
  containerSizeMb?: number;
  /** True when a retry found the copy an earlier attempt of this rehearsal restored. */
  foundExisting: boolean;
}

/**
 * What a rehearsal needs beyond the migration's own activities (which it reuses with derived inputs whose
 * source is the copy and whose target is the rehearsal target). `input` is the rehearsal's: its
 * migrationId is the rehearsal's workflow id, its plan the migration's.
 */
export interface RehearsalActivities {
  /** The source's newest backup; NotFoundError (telling the operator how to take one) when it has none. */
  findLatestBackup(input: MigrationInput): Promise<BackupRef>;
  /** Restores the backup into the copy, with the production database's container size. */
  restoreBackupCopy(input: MigrationInput, backupId: string): Promise<RestoredCopy>;
}
