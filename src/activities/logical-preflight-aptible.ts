// Method logical on a platform whose replica is made by the platform itself (Aptible's `db:replicate
// --logical`): what that command cannot do, refused in preflight with the rest, before anything is made.
// See /work/notes/aptible-logical.md: pglogical replicates every database, refuses REPLICA IDENTITY FULL and a
// second node, makes the replica in the source's environment, and links it so the source cannot go.
import type { MigrationInput } from './contract';
import { type PgTarget, quoteIdent, withClient } from '../pg/connection';
import { connectableDatabases } from './logical-cleanup';

/** Every problem of this plan and source for a platform-made logical replica; an empty list when none. */
export async function platformReplicaProblems(input: MigrationInput, source: PgTarget): Promise<string[]> {
  const { plan } = input;
  const problems: string[] = [];
  if (plan.source.environment !== plan.target.environment) {
    problems.push(
      `the source is in environment "${plan.source.environment}" and the target in "${plan.target.environment}": ` +
        "`aptible db:replicate --logical` makes the replica in the source's environment; set " +
        `target.environment to "${plan.source.environment}", or use method: dump`,
    );
  }
  const accept = plan.accept ?? { skipDatabases: [], replicaIdentityFull: [] };
  if (accept.replicaIdentityFull.length > 0) {
    problems.push(
      `accept.replicaIdentityFull lists ${accept.replicaIdentityFull.join(', ')}: on ${plan.platform} the ` +
        'replica is made by pglogical, which refuses a table without a primary key whatever its replica ' +
        'identity; add a primary key to each, or use method: dump',
    );
  }
  if (accept.skipDatabases.length > 0) {
    problems.push(
      `accept.skipDatabases lists ${accept.skipDatabases.join(', ')}: on ${plan.platform} the replica is made ` +
        'by `aptible db:replicate --logical`, which replicates every database; remove the list, or use method: dump',
    );
  }
  if (plan.cleanup.deprovisionSource.mode !== 'never') {
    problems.push(
      `cleanup.deprovisionSource.mode is ${plan.cleanup.deprovisionSource.mode}: ${plan.platform} links the ` +
        'replica to its source, and the source cannot be deprovisioned until the replica is unlinked, which ' +
        "only the dashboard does (the replica's settings); set it to never, then unlink and deprovision the " +
        'source by hand after the migration',
    );
  }
  for (const db of await connectableDatabases(source)) {
    if (db === 'template0') continue;
    const found = await withClient(source, db, existingReplication);
    if (found.length > 0) {
      problems.push(
        `database ${quoteIdent(db)} of the source already has ${found.join(', ')}: db:replicate --logical ` +
          'fails on a database that already has a provider; if it is the leftover of an earlier replica, drop ' +
          "it as the Cleanup of Aptible's logical-replication guide says (its slot, pglogical.drop_node, DROP " +
          'EXTENSION pglogical), then start again',
      );
    }
  }
  return problems;
}

/** pglogical nodes, and the publications the fake's native stand-in names like them. */
async function existingReplication(c: import('pg').Client): Promise<string[]> {
  const found: string[] = [];
  const { rows: ext } = await c.query<{ present: boolean }>(
    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pglogical') AS present",
  );
  if (ext[0].present) {
    const { rows } = await c.query<{ node_name: string }>('SELECT node_name FROM pglogical.node ORDER BY 1');
    found.push(...rows.map((r) => `pglogical node ${r.node_name}`));
  }
  const { rows: pubs } = await c.query<{ pubname: string }>(
    "SELECT pubname FROM pg_publication WHERE pubname LIKE 'aptible\\_publisher%' ORDER BY 1",
  );
  found.push(...pubs.map((p) => `publication ${p.pubname} (a replica made by db:replicate)`));
  return found;
}
