// What `aptible db:replicate --logical` makes, per database, and the SQL that watches and removes it.
// On Aptible (aptible/docker-postgresql bin/run-database.sh, `--initialize-from-logical`, and Aptible's
// guide "Upgrade PostgreSQL with logical replication") it is pglogical: on the source a provider node
// `aptible_publisher_<replica id>` (older images: `aptible_publisher`) with the replication set
// `aptible_replication_set`, and a slot `pgl_<db>_<node>_<subscription>` (pglogical's gen_slot_name); on the
// replica a node `aptible_subscriber` and a subscription `aptible_subscription`. The contract tests' fake
// stands in with native replication under the same names: a publication named like the provider node,
// the subscription `aptible_subscription` and the same slot name. Names are read from the replica, never
// guessed, so both images and the fake are served; the replica must therefore be read while it exists.
import type { Client } from 'pg';
import { quoteIdent, quoteLiteral } from '../../pg/connection';

export const APTIBLE_SUBSCRIPTION = 'aptible_subscription';
export const APTIBLE_SUBSCRIBER_NODE = 'aptible_subscriber';

export type ReplicationFlavour = 'pglogical' | 'native';

export interface AptibleReplication {
  database: string;
  flavour: ReplicationFlavour;
  /** The subscription on the replica. */
  subscription: string;
  /** The slot on the source. */
  slot: string;
  /** The source's side: pglogical's provider node, or the native publication. */
  provider: string;
  /** Native only: the subscription's oid; its table-sync slots on the source are `pg_<oid>_sync_<relid>_<sysid>`. */
  subscriptionOid?: number;
}

/** Reads, on the replica (`replica` connected to `database`), what db:replicate made there; undefined if nothing. */
export async function findAptibleReplication(
  replica: Client,
  database: string,
): Promise<AptibleReplication | undefined> {
  const { rows: ext } = await replica.query<{ present: boolean }>(
    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pglogical') AS present",
  );
  if (ext[0].present) {
    const { rows } = await replica.query<{ slot: string; provider: string }>(
      `SELECT s.sub_slot_name AS slot, n.node_name AS provider
       FROM pglogical.subscription s JOIN pglogical.node n ON n.node_id = s.sub_origin
       WHERE s.sub_name = $1`,
      [APTIBLE_SUBSCRIPTION],
    );
    if (rows.length === 0) return undefined;
    return { database, flavour: 'pglogical', subscription: APTIBLE_SUBSCRIPTION, ...rows[0] };
  }
  const { rows } = await replica.query<{ oid: number; slot: string | null; provider: string | null }>(
    `SELECT oid::int AS oid, subslotname AS slot, subpublications[1] AS provider FROM pg_subscription
     WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [APTIBLE_SUBSCRIPTION],
  );
  if (rows.length === 0 || !rows[0].slot || !rows[0].provider) return undefined;
  return {
    database,
    flavour: 'native',
    subscription: APTIBLE_SUBSCRIPTION,
    slot: rows[0].slot,
    provider: rows[0].provider,
    subscriptionOid: rows[0].oid,
  };
}

/** On the replica: the tables whose initial copy is done, and all of them (columns `done`, `total`). */
export function syncProgressSql(flavour: ReplicationFlavour): string {
  return flavour === 'pglogical'
    ? `SELECT count(*) FILTER (WHERE sync_status = 'r')::int AS done, count(*)::int AS total
       FROM pglogical.local_sync_status WHERE sync_relname IS NOT NULL`
    : `SELECT count(*) FILTER (WHERE r.srsubstate IN ('r', 's'))::int AS done, count(*)::int AS total
       FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
       WHERE s.subname = ${quoteLiteral(APTIBLE_SUBSCRIPTION)}
         AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`;
}

/**
 * On the source: bytes of WAL not yet confirmed, and seconds of replay lag when a walsender serves the
 * slot. By slot, not by application_name: that is `aptible_subscription` in every database.
 */
export function lagSql(r: AptibleReplication): string {
  return `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint AS lag_bytes,
                 extract(epoch FROM w.replay_lag)::float8 AS lag_seconds
          FROM pg_replication_slots s LEFT JOIN pg_stat_replication w ON w.pid = s.active_pid
          WHERE s.slot_name = ${quoteLiteral(r.slot)}`;
}

/** Slots on the source that belong to this replication: its own, and those of its table-sync workers. */
function slotsOf(r: AptibleReplication): string {
  const sync =
    r.flavour === 'pglogical'
      ? `starts_with(slot_name, ${quoteLiteral(`${r.slot}_`)})`
      : `starts_with(slot_name, ${quoteLiteral(`pg_${r.subscriptionOid ?? 0}_sync_`)})`;
  return `database = current_database() AND (slot_name = ${quoteLiteral(r.slot)} OR ${sync})`;
}

/**
 * The statements that end one database's replication, as Aptible's guide runs them ("Stop replication",
 * then "Cleanup: Source Database"), each safe to run again: first on the replica (connected to
 * r.database; skip when the replica is gone), then on the source (connected to r.database). The source's
 * pglogical extension is dropped only when `dropSourceExtension` (db:replicate creates it IF NOT EXISTS:
 * drop it only where it was absent before, or another pglogical user of the source breaks). A walsender
 * still holding a slot (the replica gone, or unreachable) is ended first.
 */
export function cleanupSql(
  r: AptibleReplication,
  opts: { dropSourceExtension: boolean },
): { replica: string[]; source: string[] } {
  const endSlots = [
    `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE active AND ${slotsOf(r)}`,
    `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active AND ${slotsOf(r)}`,
  ];
  if (r.flavour === 'pglogical') {
    return {
      replica: [
        `SELECT pglogical.drop_subscription(${quoteLiteral(r.subscription)}, true)`,
        `SELECT pglogical.drop_node(${quoteLiteral(APTIBLE_SUBSCRIBER_NODE)}, true)`,
        'DROP EXTENSION IF EXISTS pglogical',
      ],
      source: [
        ...endSlots,
        `SELECT pglogical.drop_node(${quoteLiteral(r.provider)}, true) FROM pg_extension WHERE extname = 'pglogical'`,
        ...(opts.dropSourceExtension ? ['DROP EXTENSION IF EXISTS pglogical'] : []),
      ],
    };
  }
  return {
    replica: [`DROP SUBSCRIPTION IF EXISTS ${quoteIdent(r.subscription)}`],
    source: [...endSlots, `DROP PUBLICATION IF EXISTS ${quoteIdent(r.provider)}`],
  };
}

/** On the source: the slots of this replication still there (a terminated walsender lets go of its slot a moment later: run cleanupSql's source statements again while this counts any). */
export function remainingSlotsSql(r: AptibleReplication): string {
  return `SELECT slot_name FROM pg_replication_slots WHERE ${slotsOf(r)} ORDER BY slot_name`;
}
