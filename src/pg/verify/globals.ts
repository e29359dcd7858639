import type { Client } from 'pg';
import { memberships, parameterPrivileges, roles, tablespaces } from './cluster-classes';
import { type CatalogClass, diffEntries, readEntries } from './fingerprint';
import type { ReportBuilder } from './report';
import { type Versions, normalizeClass } from './version-differences';

type Session = { client: Client; major: number };

/** What the cluster holds once for all databases: roles, memberships, tablespaces, parameter privileges. */
export async function compareGlobals(
  s: Session,
  t: Session,
  versions: Versions,
  adminRole: string | undefined,
  report: ReportBuilder,
): Promise<void> {
  const passwords = (await Promise.all([canReadPasswords(s.client), canReadPasswords(t.client)])).every(
    Boolean,
  );
  if (!passwords) report.note('password hashes not compared: the verifying role may not read pg_authid');
  const classes: CatalogClass[] = [roles(passwords, adminRole), memberships, tablespaces];
  if (versions.source >= 15 && versions.target >= 15) classes.push(parameterPrivileges);
  for (const cls of classes) {
    const [se, te] = await Promise.all([
      readEntries(s.client, cls, s.major),
      readEntries(t.client, cls, t.major),
    ]);
    normalizeClass(cls.name, se, te, versions, (text) => report.note(text));
    diffEntries(cls.name, '', se, te, report);
  }
}

async function canReadPasswords(client: Client): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(
    `SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS ok`,
  );
  return rows[0].ok;
}
