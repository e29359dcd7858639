// Benchmark: what the verification costs next to the copy. A PostgreSQL 14 source on the local platform is
// filled (inside the server, with generate_series) to about the requested size with a realistic mix, then
// copied to a 17 target by pgshift's own copy path, as the dump and restore activities run it (dumpAll,
// restoreDump, carryDatabaseProperties) and verified by compareServers; each step is timed, and so are the
// guide's raw commands (`pg_dumpall | grep -v ... > file`, `psql -f file`) on the same data into another 17
// target, for reference. Printed: seconds and MiB/s (of the source's on-disk size) per step, the
// verification's time as a share of dump+restore+carry, and this process's peak RSS (maxRSS) before and
// after the verification. maxRSS never falls and the dump's password filter runs in this process too, so the
// RSS sampled every 50 ms while the verification runs is shown as well: that is the verification's own.
// With rounds > 1 the targets are reset (resetTarget) and everything but the fill repeats; medians are shown.
// Usage: npx tsx scripts/bench-copy.ts [sizeMiB=256] [rounds=1]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalPlatform, type LocalPlatform } from '../src/platform/local';
import type { DatabaseConnection } from '../src/platform/platform';
import { withClient, type PgTarget } from '../src/pg/connection';
import { dumpAll } from '../src/pg/dump';
import { restoreDump } from '../src/pg/restore';
import { carryDatabaseProperties } from '../src/pg/database-properties';
import { classifyRestoreErrors } from '../src/pg/restore-errors';
import { compareServers } from '../src/pg/verify';
import { resetTarget } from '../src/pg/reset';
import { totalDatabaseSize } from '../src/pg/inspect';

class BenchError extends Error {}
class BadArgumentError extends Error {}

const MiB = 1024 * 1024;
const ENV = 'bench';
const STEPS = ['dump', 'restore', 'carry', 'verify', 'guide dump', 'guide restore'] as const;
type Step = (typeof STEPS)[number];

function parseArgs(): { sizeMiB: number; rounds: number } {
  const [size = '256', rounds = '1'] = process.argv.slice(2);
  if (!/^\d+$/.test(size) || Number(size) < 16)
    throw new BadArgumentError(`sizeMiB must be an integer >= 16, got "${size}"`);
  if (!/^\d+$/.test(rounds) || Number(rounds) < 1)
    throw new BadArgumentError(`rounds must be an integer >= 1, got "${rounds}"`);
  return { sizeMiB: Number(size), rounds: Number(rounds) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = process.hrtime.bigint();
  const value = await fn();
  return [value, Number(process.hrtime.bigint() - started) / 1e9];
}

async function createServer(
  platform: LocalPlatform,
  handle: string,
  version: string,
): Promise<DatabaseConnection> {
  await platform.createDatabase({
    handle,
    environment: ENV,
    version,
    diskSizeGb: 10,
    containerSizeMb: 1024,
    createdBy: 'bench',
  });
  return platform.connect(handle, ENV);
}

const SCHEMA = `
  CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));
  CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int REFERENCES pgbench_branches, tbalance int, filler char(84));
  CREATE TABLE pgbench_accounts (aid bigint PRIMARY KEY, bid int, abalance int, filler char(84));
  CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE);
  CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int, details jsonb NOT NULL, created_at timestamptz);
  CREATE INDEX orders_details ON orders USING gin (details);
  CREATE SEQUENCE invoice_number START 1000;
  INSERT INTO pgbench_branches SELECT g, 0, '' FROM generate_series(1, 10) g;
  INSERT INTO pgbench_tellers SELECT g, 1 + g % 10, 0, '' FROM generate_series(1, 100) g;
  INSERT INTO customers SELECT g, 'Customer ' || g, 'c' || g || '@example.com' FROM generate_series(0, 999) g;
  SELECT setval('invoice_number', 4242);`;

// One "unit" is two accounts and one order; batches grow to reach the size in a few steps.
const BATCH = [
  `INSERT INTO pgbench_accounts SELECT g, 1 + g % 10, (g % 1000) - 500, ''
     FROM generate_series(2 * $1::bigint, 2 * $2::bigint - 1) g`,
  `INSERT INTO orders (customer_id, details, created_at)
     SELECT g % 1000, jsonb_build_object('sku', 'SKU-' || g % 97, 'qty', 1 + g % 7,
              'tags', jsonb_build_array('t' || g % 13, 't' || g % 29), 'note', md5(g::text)),
            timestamptz '2024-01-01' + g * interval '1 second'
     FROM generate_series($1::bigint, $2::bigint - 1) g`,
];

/** Fills the platform's database on the source until pg_database_size reaches the target size. */
async function fill(source: PgTarget, targetBytes: number): Promise<number> {
  return withClient(source, source.database, async (c) => {
    const size = async () =>
      Number((await c.query('SELECT pg_database_size(current_database()) AS n')).rows[0].n);
    await c.query(SCHEMA);
    const empty = await size();
    let done = 0;
    let units = 50_000;
    for (let now = empty; now < targetBytes;) {
      for (const sql of BATCH) await c.query(sql, [done, done + units]);
      done += units;
      now = await size();
      const perUnit = (now - empty) / done;
      units = Math.max(10_000, Math.min(2_000_000, Math.ceil((targetBytes - now) / perUnit)));
    }
    await c.query('VACUUM (ANALYZE)');
    return size();
  });
}

/** The guide's commands, run by a shell; the password travels in PGPASSWORD only. */
function shell(script: string, t: PgTarget, file: string): Promise<void> {
  const env = {
    ...process.env,
    PGHOST: t.host,
    PGPORT: String(t.port),
    PGUSER: t.user,
    PGPASSWORD: t.password,
    PGDATABASE: t.database,
    DUMP: file,
  };
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', script], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => void (stderr.length < 4096 && (stderr += d.toString())));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new BenchError(`${script} exited ${code}: ${stderr}`)),
    );
  });
}
const GUIDE_DUMP = `pg_dumpall -l "$PGDATABASE" | grep -v 'ALTER ROLE aptible .*PASSWORD' > "$DUMP"`;
// psql's errors (roles that already exist) are expected, as in the guide: only its own failure counts.
const GUIDE_RESTORE = `psql -X -q -f "$DUMP" > /dev/null 2>&1`;

interface Round {
  seconds: Record<Step, number>;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssDuringMiB: number;
}

async function round(
  platform: LocalPlatform,
  src: PgTarget,
  dst: PgTarget,
  raw: PgTarget,
  work: string,
): Promise<Round> {
  const seconds = {} as Record<Step, number>;
  const dumpPath = join(work, 'pgshift.sql');
  const [dump, d] = await timed(() => dumpAll(src, dumpPath, { adminRole: platform.adminRole }));
  seconds.dump = d;
  const expected = [...platform.expectedRestoreErrors];
  const [restored, r] = await timed(() => restoreDump(dst, dumpPath, { expected, sha256: dump.sha256 }));
  seconds.restore = r;
  if (restored.unexpected.length > 0)
    throw new BenchError(`restore errors:\n${restored.unexpected.join('\n')}`);
  const [carried, c] = await timed(async () =>
    classifyRestoreErrors(await carryDatabaseProperties(src, dst), expected),
  );
  seconds.carry = c;
  if (carried.unexpected.length > 0) throw new BenchError(`carry errors:\n${carried.unexpected.join('\n')}`);
  rmSync(dumpPath, { force: true });

  const rssBeforeMiB = process.resourceUsage().maxRSS / 1024;
  let rssDuringMiB = 0;
  const sample = () => (rssDuringMiB = Math.max(rssDuringMiB, process.memoryUsage.rss() / MiB));
  const sampler = setInterval(sample, 50);
  const [report, v] = await timed(() =>
    compareServers(src, dst, { adminRole: platform.adminRole }).finally(() => clearInterval(sampler)),
  );
  seconds.verify = v;
  const rssAfterMiB = process.resourceUsage().maxRSS / 1024;
  if (!report.ok) throw new BenchError(`verification failed:\n${report.mismatches.slice(0, 20).join('\n')}`);

  const guidePath = join(work, 'guide.sql');
  [, seconds['guide dump']] = await timed(() => shell(GUIDE_DUMP, src, guidePath));
  [, seconds['guide restore']] = await timed(() => shell(GUIDE_RESTORE, raw, guidePath));
  rmSync(guidePath, { force: true });
  return { seconds, rssBeforeMiB, rssAfterMiB, rssDuringMiB };
}

async function main(): Promise<void> {
  const { sizeMiB, rounds } = parseArgs();
  const dir = mkdtempSync(join(tmpdir(), 'pgshift-bench-copy-'));
  const work = join(dir, 'work');
  mkdirSync(work, { mode: 0o700 });
  const platform = createLocalPlatform({ home: join(dir, 'home') });
  const results: Round[] = [];
  let sourceMiB = 0;
  try {
    const src = await createServer(platform, 'bench-src14', '14');
    const dst = await createServer(platform, 'bench-dst17', '17');
    const raw = await createServer(platform, 'bench-raw17', '17');
    console.log(`filling the source to about ${sizeMiB} MiB...`);
    const [dbBytes, fillSeconds] = await timed(() => fill(src, sizeMiB * MiB));
    sourceMiB = (await totalDatabaseSize(src)) / MiB;
    console.log(
      `filled in ${fillSeconds.toFixed(1)} s: pg_database_size(${src.database}) = ${(dbBytes / MiB).toFixed(0)} MiB, ` +
        `all databases ${sourceMiB.toFixed(0)} MiB`,
    );
    for (let i = 1; i <= rounds; i++) {
      if (i > 1) {
        await resetTarget(dst, { adminRole: platform.adminRole });
        await resetTarget(raw, { adminRole: platform.adminRole });
      }
      results.push(await round(platform, src, dst, raw, work));
      console.log(
        `round ${i}/${rounds}: ${STEPS.map((s) => `${s} ${results[i - 1].seconds[s].toFixed(1)} s`).join(', ')}`,
      );
    }
  } finally {
    await platform.destroy().catch((err) => console.error(`platform.destroy failed: ${String(err)}`));
    rmSync(work, { recursive: true, force: true });
  }
  report(results, sourceMiB, dir);
}

function report(results: Round[], sourceMiB: number, dir: string): void {
  const label = results.length > 1 ? `median of ${results.length} rounds` : 'one round';
  const csv = ['round,metric,value,unit'];
  results.forEach((r, i) => STEPS.forEach((s) => csv.push(`${i + 1},${s},${r.seconds[s].toFixed(3)},s`)));
  const secs = Object.fromEntries(STEPS.map((s) => [s, median(results.map((r) => r.seconds[s]))])) as Record<
    Step,
    number
  >;
  console.log(`\nsource: ${sourceMiB.toFixed(0)} MiB on disk (all databases); ${label}\n`);
  console.log(`${'step'.padEnd(16)}${'seconds'.padStart(9)}${'MiB/s'.padStart(9)}`);
  for (const s of STEPS) {
    const rate = sourceMiB / secs[s];
    console.log(`${s.padEnd(16)}${secs[s].toFixed(2).padStart(9)}${rate.toFixed(1).padStart(9)}`);
    csv.push(`median,${s},${secs[s].toFixed(3)},s`, `median,${s} throughput,${rate.toFixed(2)},MiB/s`);
  }
  const copy = secs.dump + secs.restore + secs.carry;
  const share = (100 * secs.verify) / copy;
  const guideCopy = secs['guide dump'] + secs['guide restore'];
  const before = median(results.map((r) => r.rssBeforeMiB));
  const after = median(results.map((r) => r.rssAfterMiB));
  const during = median(results.map((r) => r.rssDuringMiB));
  console.log(
    `\nverify / (dump + restore + carry) = ${secs.verify.toFixed(2)} / ${copy.toFixed(2)} s = ${share.toFixed(0)}%`,
  );
  console.log(
    `pgshift copy / guide copy = ${copy.toFixed(2)} / ${guideCopy.toFixed(2)} s = ${((100 * copy) / guideCopy).toFixed(0)}%`,
  );
  console.log(
    `worker peak RSS: ${before.toFixed(0)} MiB before the verification, ${after.toFixed(0)} MiB after it; ` +
      `RSS while verifying: at most ${during.toFixed(0)} MiB`,
  );
  csv.push(
    `median,source size,${sourceMiB.toFixed(1)},MiB`,
    `median,verify share of dump+restore+carry,${share.toFixed(1)},%`,
    `median,pgshift copy share of guide copy,${((100 * copy) / guideCopy).toFixed(1)},%`,
    `median,peak RSS before verify,${before.toFixed(1)},MiB`,
    `median,peak RSS after verify,${after.toFixed(1)},MiB`,
    `median,RSS sampled during verify,${during.toFixed(1)},MiB`,
  );
  const path = join(dir, `bench-copy-${Math.round(sourceMiB)}MiB.csv`);
  writeFileSync(path, csv.join('\n') + '\n');
  console.log(`\nCSV: ${path}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(err instanceof BadArgumentError ? 2 : 1);
});
