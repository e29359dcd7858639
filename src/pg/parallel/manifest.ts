// The parallel strategy's dump is a directory: the roles (globals.sql, pg_dumpall --globals-only through the
// password filter), one pg_dump directory archive per database, and manifest.json, written last, which
// lists them. The dump step returns the manifest's sha256; the restore finds the directory by it, so a dump
// that is not on this worker, is incomplete, or is another attempt's is told apart before anything runs.
import { createHash } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DumpMissingError } from '../../errors';
import { fileSha256 } from '../dump';

export const MANIFEST = 'manifest.json';
export const GLOBALS = 'globals.sql';
const FORMAT = 'pgshift-parallel-1';

export interface ManifestDatabase {
  /** The database's name (a name, no secret). It never becomes a path: see `dir`. */
  name: string;
  /** Its archive's directory: `db-<index>-<sha256 of the name, 12 hex>`, whatever the name holds. */
  dir: string;
  /** `into`: restored into the database the target already has (template1, postgres), as pg_dumpall does. */
  restore: 'create' | 'into';
  /** Jobs its dump used; the restore uses as many. */
  jobs: number;
  bytes: number;
}

export interface ManifestFile {
  /** `globals.sql` or `<dir>/<file>`. */
  path: string;
  size: number;
  /**
   * For the small files that say what the dump is (globals.sql, each toc.dat). Table data is checked by
   * size only: hashing it would read the whole dump once more at each end, and the verification after
   * the restore compares every row with the source anyway.
   */
  sha256?: string;
}

export interface Manifest {
  format: typeof FORMAT;
  droppedStatements: number;
  databases: ManifestDatabase[];
  files: ManifestFile[];
}

const DIR_NAME = /^db-\d{3,}-[0-9a-f]{12}$/;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The directory name of the index-th database: never derived from the name's characters. */
export function databaseDirName(index: number, name: string): string {
  const digest = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 12);
  return `db-${String(index).padStart(3, '0')}-${digest}`;
}

/** Lists what a finished dump directory holds, hashing the small files that define it. */
export async function describeFiles(root: string, databases: ManifestDatabase[]): Promise<ManifestFile[]> {
  const files: ManifestFile[] = [await describe(root, GLOBALS, true)];
  for (const db of databases) {
    const names = (await readdir(join(root, db.dir))).sort();
    for (const name of names) files.push(await describe(root, `${db.dir}/${name}`, name === 'toc.dat'));
  }
  return files;
}

async function describe(root: string, path: string, hashed: boolean): Promise<ManifestFile> {
  const full = join(root, path);
  const { size } = await stat(full);
  return hashed ? { path, size, sha256: await fileSha256(full) } : { path, size };
}

/** Writes the manifest (last, so its presence means the dump is whole); returns its sha256. */
export async function writeManifest(root: string, manifest: Omit<Manifest, 'format'>): Promise<string> {
  const text = `${JSON.stringify({ format: FORMAT, ...manifest }, null, 1)}\n`;
  await writeFile(join(root, MANIFEST), text, { mode: 0o600 });
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The manifest of the dump at `root`, checked against the sha256 the dump step returned and against the
 * files on disk. DumpMissingError when the dump is not here, is another one, or lacks or changed a file.
 */
export async function readVerifiedManifest(root: string, sha256: string): Promise<Manifest> {
  let text: Buffer;
  try {
    text = await readFile(join(root, MANIFEST));
  } catch {
    throw new DumpMissingError(
      `the dump ${root} is not on this worker (it may have been written by another worker, or removed); ` +
        'run the migration again so the dump is taken anew, with one worker or a shared PGSHIFT_WORK_DIR',
    );
  }
  if (createHash('sha256').update(text).digest('hex') !== sha256) {
    throw new DumpMissingError(
      `the dump ${root} is not the one the dump step wrote (another attempt's, or changed); the dump is taken anew`,
    );
  }
  const manifest = JSON.parse(text.toString('utf8')) as Manifest;
  checkShape(root, manifest);
  for (const file of manifest.files) {
    const full = join(root, file.path);
    const size = await stat(full).then(
      (s) => s.size,
      () => undefined,
    );
    const changed =
      size !== file.size || (file.sha256 !== undefined && (await fileSha256(full)) !== file.sha256);
    if (changed) {
      throw new DumpMissingError(
        `the dump ${root} is incomplete or changed since it was written (${file.path} ` +
          `${size === undefined ? 'is missing' : 'differs'}); the dump is taken anew`,
      );
    }
  }
  return manifest;
}

/** Even a manifest whose hash matched only ever names files inside the dump. */
function checkShape(root: string, m: Manifest): void {
  const bad = (why: string) => new DumpMissingError(`the dump ${root} has an unusable manifest (${why})`);
  if (m.format !== FORMAT) throw bad(`format ${JSON.stringify(m.format)}`);
  const dirs = new Set<string>();
  for (const db of m.databases) {
    if (!DIR_NAME.test(db.dir)) throw bad(`directory ${JSON.stringify(db.dir)}`);
    if (!Number.isInteger(db.jobs) || db.jobs < 1 || db.jobs > 64) throw bad(`jobs ${db.jobs}`);
    dirs.add(db.dir);
  }
  for (const f of m.files) {
    const parts = f.path.split('/');
    const ok = f.path === GLOBALS || (parts.length === 2 && dirs.has(parts[0]) && FILE_NAME.test(parts[1]));
    if (!ok) throw bad(`file ${JSON.stringify(f.path)}`);
  }
}
