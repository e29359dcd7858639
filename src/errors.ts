// Named errors. Activities throw these; Temporal records the class name as the failure type, so the
// workflow's retry policy can list the ones a retry cannot fix in `nonRetryableErrorTypes`.
// Messages say what the operator should do and never carry a secret.

export class PgshiftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input from the user: exit code 2, nothing was changed. */
export class BadInputError extends PgshiftError {}

/** Something needed before any downtime is missing or incompatible (tools, versions, disk, services). */
export class PreflightError extends PgshiftError {}

/** A database with the target handle exists and this migration did not create it. */
export class TargetExistsError extends PgshiftError {}

/** A database, app or service named in the plan does not exist on the platform. */
export class NotFoundError extends PgshiftError {}

/** The restore (or the schema test) produced errors that the plan does not allow. */
export class UnexpectedRestoreErrors extends PgshiftError {
  constructor(
    message: string,
    readonly errors: string[],
  ) {
    super(message);
  }
}

/**
 * psql stopped before the end of the dump without PostgreSQL rejecting anything: it was killed (a signal
 * pgshift did not send, e.g. the OOM killer) or its connection dropped or could not be made. Retryable: the
 * next attempt resets the target and restores the dump again.
 */
export class RestoreInterruptedError extends PgshiftError {}

/** A database under a handle this run creates was not made by this run: it is left alone, and said so. */
export class NotOursError extends PgshiftError {}

/** Source and target disagree after the restore. */
export class VerificationFailedError extends PgshiftError {}

/** The dump file this restore needs is gone or changed (e.g. the restore ran on another worker). */
export class DumpMissingError extends PgshiftError {}

/**
 * Method logical, at cutover: the target did not apply everything the source had written within the bound
 * (plan.cutover.catchUpTimeout). The migration rolls back: the services come back up on the source.
 */
export class CatchUpTimeoutError extends PgshiftError {}

/**
 * Method logical: the source's schema changed after it was copied (DDL is not replicated). The message names
 * each change; the migration rolls back, and a new one copies the schema as it is now.
 */
export class SchemaChangedError extends PgshiftError {
  constructor(
    message: string,
    readonly differences: string[] = [],
  ) {
    super(message);
  }
}

/** The platform refused the operation in a way a retry cannot change (not logged in, invalid version...). */
export class PlatformError extends PgshiftError {}

/**
 * The platform's CLI is not logged in, or its token expired. Steps before the downtime stop at once; steps
 * that must finish (services back up, the rollback) keep retrying, so an operator can log in meanwhile.
 */
export class NotLoggedInError extends PlatformError {}

/** The platform failed in a way that may pass (network, timeouts, operation still running). */
export class TransientPlatformError extends PgshiftError {}

export const NON_RETRYABLE_ERRORS = [
  'BadInputError',
  'PreflightError',
  'TargetExistsError',
  'NotFoundError',
  'UnexpectedRestoreErrors',
  'VerificationFailedError',
  'DumpMissingError',
  'PlatformError',
  'NotLoggedInError',
  'NotOursError',
  // The aptible CLI printed what this version cannot read (a CLI newer or older than it knows).
  'AptibleOutputError',
  // A role-section statement too long to be pg_dumpall's: the dump is not what the filter understands.
  'DumpFilterError',
  'CatchUpTimeoutError',
  'SchemaChangedError',
] as const;
