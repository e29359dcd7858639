// `npm run bench`: pgshift side by side with what people would do instead, on the same data and machine.
// A PostgreSQL 14 source of the local platform is filled in-server to the given size (a pgbench-style
// database and an orders database with jsonb and a GIN index), with a tenth-size and a ~1 MiB source
// beside it. Then, in interleaved rounds, each method copies it to a fresh PostgreSQL 17 target: the raw
// seed commands (pg_dumpall | grep > file; psql -f file), a raw pipe (pg_dumpall | grep | psql), pgcopydb
// clone when installed, and pgshift end to end through the real workflow (method dump with copy.strategy
// guide, stream and parallel, method logical with the writer app running) served by a worker process whose memory
// is read from /proc. Every target is verified against its source (compareServers). Printed: medians,
// ratios, the overhead on a tiny database, the worker's memory, the verification's share, linearity, the
// downtime, and the goals of issues 11 and 9; one CSV row per run. Ctrl-C removes everything it made.
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { compareServers } from '../src/pg/verify';
import { type BenchEnv, createSetup, ENV, REPO, type Setup } from './bench/env';
import { findPgcopydb, pgcopydbClone, rawPipe, rawSeed, timed } from './bench/raw';
import { buildSource, databaseSpec, type Source } from './bench/source';
import { createWriterApp, runPgshift } from './bench/pgshift';
import {
  DUMP_STRATEGIES,
  isPgshift,
  LABELS,
  METHODS,
  type MethodKey,
  Results,
  type Row,
  type Scale,
  writeCsv,
} from './bench/results';
import { printReport } from './bench/report';

const USAGE = `usage: npm run bench -- [sizeMiB] [rounds] [--methods LIST] [--csv FILE] [--keep]
  sizeMiB        data in the source, 10 to 1048576 (default 1024); a tenth-size source is built too
  rounds         interleaved rounds of every method, 1 to 20 (default 3)
  --methods LIST comma-separated, of ${METHODS.join(',')} (default: all)
  --csv FILE     where the CSV goes (default .cache/bench/<timestamp>.csv)
  --keep         keep the bench's directory (worker and tool logs) at the end`;

class BadArgumentError extends Error {}

interface Args {
  sizeMiB: number;
  rounds: number;
  methods: MethodKey[];
  csv: string;
  keep: boolean;
}

function integer(text: string, name: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw new BadArgumentError(`${name} must be an integer from ${min} to ${max}, got "${text}"`);
  return n;
}

function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const args: Args = { sizeMiB: 1024, rounds: 3, methods: [...METHODS], csv: '', keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new BadArgumentError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--help' || a === '-h') throw new BadArgumentError('');
    else if (a === '--keep') args.keep = true;
    else if (a === '--csv') args.csv = value();
    else if (a === '--methods') {
      const list = value().split(',').filter(Boolean);
      const unknown = list.filter((m) => !METHODS.includes(m as MethodKey));
      if (unknown.length || !list.length)
        throw new BadArgumentError(`--methods: unknown "${unknown.join(',')}" (of ${METHODS.join(',')})`);
      args.methods = METHODS.filter((m) => list.includes(m));
    } else if (a.startsWith('-')) throw new BadArgumentError(`unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length > 2) throw new BadArgumentError(`too many arguments: ${positional.join(' ')}`);
  if (positional[0] !== undefined) args.sizeMiB = integer(positional[0], 'sizeMiB', 10, 1_048_576);
  if (positional[1] !== undefined) args.rounds = integer(positional[1], 'rounds', 1, 20);
  const stamp = new Date()
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d+Z$/, 'Z');
  args.csv ||= join(REPO, '.cache', 'bench', `${stamp}.csv`);
  return args;
}

const say = (text: string) => console.log(`bench: ${text}`);
const f = (x: number | undefined, digits = 1) => (x === undefined ? '-' : x.toFixed(digits));

/** Which code the worker runs: bin/pgshift.js takes the sources through tsx when dist/ is stale. */
function workerCode(): string {
  const { staleSource } = createRequire(__filename)(join(REPO, 'bin', 'stale-build.js')) as {
    staleSource(): string | undefined;
  };
  const stale = staleSource();
  return stale === undefined
    ? 'compiled CLI (dist/)'
    : `sources through tsx (dist/ is stale: ${stale}; npm run build)`;
}

interface Case {
  method: MethodKey;
  scale: Scale;
  source: Source;
}

async function verify(env: BenchEnv, c: Case, target: string, row: Row): Promise<void> {
  const dst = await env.platform.connect(target, ENV);
  // Method logical's writer keeps writing to the target after the cutover: its database is checked row by
  // row instead (every row written to the source is on the target).
  // pgcopydb is given the databases that hold data (FILLED_DATABASES): postgres and template1 keep the
  // target's own public schema (owner pg_database_owner from 15 on), which a verification would report.
  const skipDatabases =
    c.method === 'logical' ? ['db'] : c.method === 'pgcopydb' ? ['postgres', 'template1'] : [];
  const [report, seconds] = await timed(() =>
    compareServers(c.source.conn, dst, { adminRole: env.platform.adminRole, skipDatabases }),
  );
  row.verifySeconds = seconds;
  const first = report.mismatches.slice(0, 2).map((m) => m.slice(0, 160));
  row.verified = report.ok ? 'ok' : `${report.mismatches.length} mismatch(es): ${first.join('; ')}`;
}

async function runCase(env: BenchEnv, c: Case, round: number): Promise<Row> {
  const target = `b${round}-${c.method}-${c.scale}`;
  const row: Row = {
    round,
    method: c.method,
    scale: c.scale,
    sizeMiB: c.source.sizeMiB,
    dataMiB: c.source.dataMiB,
    load1: loadavg()[0],
  };
  try {
    if (isPgshift(c.method)) {
      const method = c.method === 'logical' ? 'logical' : 'dump';
      const run = await runPgshift(
        env,
        c.source,
        target,
        method,
        c.method === 'parallel' || c.method === 'stream' ? c.method : 'guide',
      );
      Object.assign(row, run);
    } else {
      [, row.createSeconds] = await timed(() => env.platform.createDatabase(databaseSpec(target, '17')));
      const dst = await env.platform.connect(target, ENV);
      const work = join(env.dir, 'raw', target);
      const copy = c.method === 'seed' ? rawSeed : c.method === 'pipe' ? rawPipe : pgcopydbClone;
      const t = await copy(env, c.source.conn, dst, work);
      Object.assign(row, {
        seconds: t.seconds,
        dumpSeconds: t.dumpSeconds,
        restoreSeconds: t.restoreSeconds,
      });
      rmSync(work, { recursive: true, force: true });
    }
    if (!row.error && (await env.platform.getDatabase(target, ENV))) await verify(env, c, target, row);
  } catch (err) {
    row.error ??= (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 600);
  } finally {
    await env.platform
      .deprovisionDatabase(target, ENV)
      .catch((err: unknown) => say(`removing ${target}: ${String(err)}`));
  }
  return row;
}

function describe(r: Row): string {
  const parts = [`${f(r.seconds)} s`];
  if (!isPgshift(r.method)) parts.push(`+ target ${f(r.createSeconds)} s`);
  else {
    const steps = `create ${f(r.createSeconds)}, copy ${f(r.copySeconds)}, verify step ${f(r.verifyStepSeconds)}`;
    parts.push(`(${steps}; downtime ${f(r.downtimeSeconds)} s; worker peak ${f(r.peakRssMiB, 0)} MiB)`);
  }
  if (r.steps) parts.push(`\n    steps: ${r.steps}\n   `);
  if (r.writer) parts.push(`writer: ${r.writer.written} rows, ${r.writer.missing} missing`);
  if (r.verified) parts.push(`· verified ${r.verified.slice(0, 200)} (${f(r.verifySeconds)} s)`);
  if (r.error) parts.push(`· FAILED: ${r.error}`);
  return parts.join(' ');
}

async function bench(args: Args, env: BenchEnv): Promise<number> {
  const code = workerCode();
  say(`worker pid ${env.worker.pid} runs the ${code}; directory ${env.dir}`);
  const pgcopydb = findPgcopydb() !== undefined;
  if (!pgcopydb && args.methods.includes('pgcopydb'))
    say('pgcopydb: not installed (apt-get install pgcopydb)');
  const methods = args.methods.filter((m) => m !== 'pgcopydb' || pgcopydb);

  const sources = {} as Record<Scale, Source>;
  const sizes: [Scale, number][] = [
    ['main', args.sizeMiB],
    ['tenth', args.sizeMiB / 10],
    ['tiny', 1],
  ];
  for (const [scale, size] of sizes) {
    const [source, seconds] = await timed(() => buildSource(env, `bench-src-${scale}`, size));
    sources[scale] = source;
    say(
      `source ${scale}: ${f(source.dataMiB)} MiB of data (${f(source.onDiskMiB)} MiB on disk), filled in ${f(seconds)} s`,
    );
  }
  if (methods.includes('logical')) await createWriterApp(env);

  const cold = env.worker.memory().rssMiB;
  const idleRssMiB = { cold, warm: cold };
  if (methods.some(isPgshift)) {
    say('warm-up: one pgshift migration of the tiny source (not counted)...');
    const warm = await runPgshift(env, sources.tiny, 'b0-warmup', 'dump', 'guide');
    await env.platform.deprovisionDatabase('b0-warmup', ENV);
    if (warm.error) say(`warm-up failed: ${warm.error}`);
    await new Promise((r) => setTimeout(r, 3000)); // let the worker settle before reading its idle memory
    idleRssMiB.warm = env.worker.memory().rssMiB;
  }

  const results = new Results();
  const main = methods.map((method) => ({ method, scale: 'main' as Scale, source: sources.main }));
  for (let round = 1; round <= args.rounds; round++) {
    // Rotated each round, so no method always runs first (or right after the heaviest one).
    const shift = (round - 1) % main.length;
    const cases: Case[] = [
      ...main.slice(shift),
      ...main.slice(0, shift),
      ...DUMP_STRATEGIES.filter((m) => methods.includes(m)).map((method) => ({
        method,
        scale: 'tenth' as Scale,
        source: sources.tenth,
      })),
      ...(['seed', 'guide'] as const)
        .filter(() => methods.includes('seed') && methods.includes('guide'))
        .map((method) => ({ method, scale: 'tiny' as Scale, source: sources.tiny })),
    ];
    for (const c of cases) {
      const row = await runCase(env, c, round);
      results.rows.push(row);
      say(
        `round ${round}/${args.rounds} ${LABELS[c.method].padEnd(21)} ${c.scale.padEnd(5)} ${describe(row)}`,
      );
    }
  }
  printReport(results, {
    sizeMiB: args.sizeMiB,
    rounds: args.rounds,
    dataMiB: { main: sources.main.dataMiB, tenth: sources.tenth.dataMiB, tiny: sources.tiny.dataMiB },
    idleRssMiB,
    pgcopydb,
    workerCode: code,
  });
  writeCsv(args.csv, results.rows);
  console.log(`\nCSV (one row per run): ${args.csv}`);
  return results.rows.some((r) => r.error || (r.verified && r.verified !== 'ok')) ? 1 : 0;
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof BadArgumentError)) throw err;
    if (!err.message) {
      console.log(USAGE); // --help
      return 0;
    }
    console.error(`bench: ${err.message}\n${USAGE}`);
    return 2;
  }
  const { setup, ready } = createSetup(args.keep);
  onSignals(setup);
  try {
    return await bench(args, await ready);
  } catch (err) {
    if (!interrupted) console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await setup.cleanup();
  }
}

let interrupted: NodeJS.Signals | undefined;

function onSignals(setup: Setup): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) return say('still cleaning up...');
      interrupted = signal;
      console.error(`\nbench: ${signal}: removing the clusters, the worker and the dev server...`);
      void setup.cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    });
  }
}

main().then(
  (code) => process.exit(interrupted ? 130 : code),
  (err: unknown) => {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
