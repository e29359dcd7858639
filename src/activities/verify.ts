import { ApplicationFailure } from '@temporalio/activity';
import type { MigrationInput, VacuumResult, VerificationReport } from './contract';
import { type ActivityDeps, platformOf } from './deps';
import { cancellationSignal, withScope } from './scope';
import { compareServers } from '../pg/verify';
import { vacuumAnalyzeAll } from '../pg/vacuum';

const SHOWN = 20;

/** Source and target must agree table by table before anyone is asked to cut over. */
export async function verifyTarget(deps: ActivityDeps, input: MigrationInput): Promise<VerificationReport> {
  const { source, target } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const started = Date.now();
    const from = await scope.connect(source.handle, source.environment);
    const to = await scope.connect(target.handle, target.environment);
    scope.progress({ phase: 'comparing' });
    // An abort must not wait for a long comparison with the services down: it stops at the signal.
    const report: VerificationReport = {
      ...(await compareServers(from, to, {
        signal: cancellationSignal(),
        onProgress: (p) => scope.progress({ phase: 'comparing', ...p }),
      })),
    };
    report.durationMs = Date.now() - started;
    if (!report.ok) {
      const lines = report.mismatches.slice(0, SHOWN).join('\n');
      const more =
        report.mismatches.length > SHOWN ? `\n... and ${report.mismatches.length - SHOWN} more` : '';
      // The full report travels as failure details so the status can show it.
      throw ApplicationFailure.create({
        type: 'VerificationFailedError',
        nonRetryable: true,
        message: `source and target disagree:\n${lines}${more}\nThe target is rolled back; find out what changed the source during the copy (were all writers scaled down?) and start again.`,
        details: [report],
      });
    }
    return report;
  });
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
