// The names of one database's replication objects. Pure (no Node built-ins), so workflow code may use it.

/** Deterministic per migration and database, so a retry finds its own; [a-z0-9_], <= 63 chars, unique per database. */
export interface ReplicationNames {
  publication: string;
  slot: string;
  subscription: string;
}

const PREFIX = 'pgshift_';
const HASH_LENGTH = 12;
/** What replicationNames makes, and nothing a person is likely to name a publication of their own. */
const NAME_PATTERN = new RegExp(`^${PREFIX}[a-z0-9_]*_[0-9a-f]{${HASH_LENGTH}}$`);

/**
 * One name for all three objects: `pgshift_<migration>_<database>_<hash>`, the readable parts cut so the
 * whole fits PostgreSQL's 63 bytes, the hash (of both, uncut) keeping it unique. The database is in the
 * name because slots are cluster-wide, and the subscription name is the walsender's application_name on
 * the source, which is how its lag is found there.
 */
export function replicationNames(migrationId: string, database: string): ReplicationNames {
  const name = `${PREFIX}${slug(migrationId, 26)}_${slug(database, 14)}_${hash(`${migrationId}\u0000${database}`)}`;
  return { publication: name, slot: name, subscription: name };
}

/** Whether a publication, slot or subscription name is one replicationNames makes. */
export function isReplicationName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

function slug(text: string, max: number): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, max);
}

/** 48 bits of two FNV-1a hashes over the UTF-16 code units: stable across runs and machines. */
function hash(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x01000193 ^ 0x2f) >>> 0;
  }
  return (a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0')).slice(0, HASH_LENGTH);
}
