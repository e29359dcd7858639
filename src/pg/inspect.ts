import { type PgTarget, withClient } from './connection';

/** The server's major version: 14 for 14.x, 9.6 for 9.6.x (server_version_num is 140011, 90624...). */
export async function serverMajorVersion(t: PgTarget): Promise<number> {
  return withClient(t, t.database, async (client) => {
    const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
    return majorFromVersionNum(Number(rows[0].v));
  });
}

export function majorFromVersionNum(num: number): number {
  return num >= 100000
    ? Math.floor(num / 10000)
    : Math.floor(num / 10000) + Math.floor((num % 10000) / 100) / 10;
}

/** Databases a dump covers and a verification compares: not templates, and open to connections. */
export async function listDatabases(t: PgTarget): Promise<string[]> {
  return withClient(t, t.database, async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname',
    );
    return rows.map((r) => r.datname);
  });
}

/** Bytes all databases take on disk: what a dump needs at most (a plain-text dump is rarely larger). */
export async function totalDatabaseSize(t: PgTarget): Promise<number> {
  return withClient(t, t.database, async (client) => {
    const { rows } = await client.query<{ total: string | null }>(
      `SELECT sum(pg_database_size(oid))::text AS total FROM pg_database
        WHERE datallowconn AND has_database_privilege(oid, 'CONNECT')`,
    );
    return Number(rows[0].total ?? 0);
  });
}
