import { ApplicationFailure } from '@temporalio/activity';
import type { MigrationInput, VacuumResult, VerificationReport } from './contract';
import { type ActivityDeps, platformOf } from './deps';
import { cancellationSignal, withScope } from './scope';
import { compareServers } from '../pg/verify';
import { DATA_CLASSES } from '../pg/verify/report';
import { vacuumAnalyzeAll } from '../pg/vacuum';

const SHOWN = 20;

/** Source and target must agree, object by object and row by row, before anyone is asked to cut over. */
export async function verifyTarget(deps: ActivityDeps, input: MigrationInput): Promise<VerificationReport> {
  const { source, target } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const from = await scope.connect(source.handle, source.environment);
    const to = await scope.connect(target.handle, target.environment);
    scope.progress({ phase: 'comparing' });
    // An abort must not wait for a long comparison with the services down: it stops at the signal.
    const report = await compareServers(from, to, {
      signal: cancellationSignal(),
      adminRole: platform.adminRole,
      skipDatabases: input.plan.accept.skipDatabases,
      onProgress: (p) => scope.progress({ phase: 'comparing', ...p }),
    });
    if (!report.ok) {
      // The full report travels as failure details so the status can show it.
      throw ApplicationFailure.create({
        type: 'VerificationFailedError',
        nonRetryable: true,
        message: failureMessage(report, input.plan.services.length > 0),
        details: [report],
      });
    }
    return report;
  });
}

/** What differs, and what it may mean: writers only come up when the plan had writers to stop. */
export function failureMessage(report: VerificationReport, scaledServicesDown: boolean): string {
  const total = report.mismatchCount ?? report.mismatches.length;
  const lines = report.mismatches.slice(0, SHOWN).join('\n');
  const more = total > SHOWN ? `\n... and ${total - SHOWN} more (the verification report lists them)` : '';
  const classes = Object.entries(report.classes ?? {}).filter(([, c]) => c.mismatched > 0);
  const data = classes.some(([name]) => (DATA_CLASSES as readonly string[]).includes(name));
  const schema = classes.some(([name]) => !(DATA_CLASSES as readonly string[]).includes(name));
  const meaning: string[] = [];
  if (data) {
    meaning.push(
      scaledServicesDown
        ? 'Rows, sequences or large objects differ: something wrote to the source during the copy (a writer ' +
            "that is not among the plan's services, or a client outside the platform), or the copy lost them."
        : 'Rows, sequences or large objects differ, and no service was scaled down for this copy: unless ' +
            'something outside the plan wrote to the source meanwhile, the copy lost them (see the restore step).',
    );
  }
  if (schema) {
    meaning.push(
      'Objects or properties differ: the dump and restore did not carry them (a restore error the plan ' +
        'expects may have hidden the statement that makes them). A database you choose to leave behind goes ' +
        "in the plan's accept.skipDatabases.",
    );
  }
  return (
    `source and target disagree (${total} difference${total === 1 ? '' : 's'}):\n${lines}${more}\n` +
    `${meaning.join('\n')}\nThe target is rolled back; fix the cause and start again.`
  );
}

/** The guide's cleanup loop: VACUUM ANALYZE in every non-template database of the target. */
export async function vacuumAnalyze(deps: ActivityDeps, input: MigrationInput): Promise<VacuumResult> {
  const { target } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const conn = await scope.connect(target.handle, target.environment);
    scope.progress({ phase: 'vacuum analyze' });
    const databases = await vacuumAnalyzeAll(conn, {
      signal: cancellationSignal(),
      onProgress: (database, index, total) =>
        scope.progress({ phase: 'vacuum analyze', database, index, total }),
    });
    return { databases };
  });
}
