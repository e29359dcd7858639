import type { Client } from 'pg';
import { diffProps, readEntries } from './fingerprint';
import { databaseProperties } from './cluster-classes';
import { type ReportBuilder, dbLabel } from './report';

export interface DatabasePlan {
  /** Databases on both servers that both allow connections: their contents are compared. */
  readable: string[];
}

/**
 * Compares the two servers' lists of databases (template1 and postgres included, template0 excluded, ones
 * that allow no connections included) and each one's properties. A database the plan accepts to leave
 * behind is not compared and is listed as skipped; any other source database missing on the target is a
 * mismatch, and so is a database on the target only.
 */
export async function compareDatabases(
  source: { client: Client; major: number },
  target: { client: Client; major: number },
  skip: readonly string[],
  report: ReportBuilder,
): Promise<DatabasePlan> {
  const [s, t] = await Promise.all([
    readEntries(source.client, databaseProperties, source.major),
    readEntries(target.client, databaseProperties, target.major),
  ]);
  const readable: string[] = [];
  for (const name of [...new Set([...s.keys(), ...t.keys()])].sort()) {
    const label = dbLabel(name);
    const sp = s.get(name);
    const tp = t.get(name);
    if (skip.includes(name)) {
      report.report.skipped!.push(name);
      continue;
    }
    if (!tp) {
      report.compared('databases', `${label}: database missing on target`);
      report.addDatabase({ name, tables: [], sequences: [] });
      continue;
    }
    if (!sp) {
      report.compared('databases', `${label}: database on the target only`);
      continue;
    }
    const differences = diffProps(sp, tp);
    report.compared(
      'databases',
      differences.length ? `${label}: database ${differences.join('; ')}` : undefined,
    );
    if (sp['allows connections'] && tp['allows connections']) readable.push(name);
    else {
      report.note(`${label}: allows no connections; its properties were compared, not its contents`);
      report.addDatabase({ name, tables: [], sequences: [], readable: false });
    }
  }
  for (const name of skip) {
    if (!s.has(name) && !t.has(name))
      report.note(`${dbLabel(name)}: in accept.skipDatabases but on neither server`);
  }
  return { readable };
}
