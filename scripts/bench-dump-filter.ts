// Benchmark: pgshift's password filter against the guide's `grep -E -i -v 'ALTER ROLE aptible .*PASSWORD'`,
// on a synthetic pg_dumpall output fed through a pipe by `cat` (a producer far faster than pg_dumpall, so
// the filter's cost shows as much as it can): wall time, throughput, peak memory, and the ratio. The last
// row is the dump step's whole path (dumpAll: filter, sha256, batched writes, rename) with a stand-in
// pg_dumpall that cats the same file (PGSHIFT_PG_BIN), against `cat | grep > file`.
// Usage: npx tsx scripts/bench-dump-filter.ts [megabytes=256] [runs=3]
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findClientTools } from '../src/pg/client-tools';
import { dumpAll } from '../src/pg/dump';

const DUMP_ALL = '--dump-all';
const MB = Number(process.argv[2] === DUMP_ALL ? 0 : (process.argv[2] ?? 256));
const RUNS = Number(process.argv[3] ?? 3);
const ADMIN_PASSWORD_LINE =
  "ALTER ROLE aptible WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:eHl6$abc:def';\n";

/** The role section pg_dumpall writes first: what the filter reads, token by token. */
function roleSection(): string {
  const parts = [
    '--\n-- PostgreSQL database cluster dump\n--\n\n\\restrict abc123\n\n',
    "SET default_transaction_read_only = off;\n\nSET client_encoding = 'UTF8';\n",
    'SET standard_conforming_strings = on;\n\n--\n-- Roles\n--\n\n',
    'CREATE ROLE aptible;\n',
    ADMIN_PASSWORD_LINE,
    "COMMENT ON ROLE aptible IS 'admin\nALTER ROLE aptible WITH PASSWORD ''x'';\n';\n",
  ];
  for (let i = 0; i < 500; i++) {
    parts.push(
      `CREATE ROLE app_${i};\n`,
      `ALTER ROLE app_${i} WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:${i}$abc:def';\n`,
    );
  }
  parts.push(
    '\n--\n-- User Config "aptible"\n--\n\nALTER ROLE aptible SET application_name TO \'PASSWORD\';\n',
  );
  parts.push('\n\\unrestrict abc123\n\n--\n-- Databases\n--\n\n');
  return parts.join('');
}

async function writeSyntheticDump(path: string, megabytes: number): Promise<number> {
  const out = createWriteStream(path);
  const roles = roleSection();
  const header = [
    roles,
    '\\connect db\n\n\\restrict def456\n\n',
    "CREATE FUNCTION public.f() RETURNS void\n    LANGUAGE sql\n    AS $$\nALTER ROLE aptible WITH PASSWORD 'in a body';\n$$;\n\n",
    'COPY public.orders (id, customer_id, details, created_at) FROM stdin;\n',
  ].join('');
  out.write(header);
  let written = header.length;
  let id = 0;
  const target = megabytes * 1024 * 1024;
  while (written < target) {
    const rows: string[] = [];
    for (let i = 0; i < 1000; i++, id++) {
      rows.push(
        `${id}\t${id % 2000}\t{"sku": "SKU-${id % 97}", "qty": ${id % 7}, "tags": ["demo", ${id % 3}]}\t2026-11-24 20:49:00+00\n`,
      );
    }
    const chunk = rows.join('');
    written += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end('\\.\n\n\\unrestrict def456\n');
  await once(out, 'finish');
  return Buffer.byteLength(roles);
}

interface Measure {
  /** Wall time of the whole command, including process start. */
  seconds: number;
  /** For the Node rows: the pipeline's own time, without Node's and tsx's start. */
  pipelineSeconds: number;
  maxRssKb: number;
  dropped?: number;
}

/** Runs a shell pipeline under GNU time, reading the peak RSS of its largest process. */
function measure(command: string): Measure {
  const started = process.hrtime.bigint();
  const res = spawnSync('/usr/bin/time', ['-f', '%M', 'sh', '-c', command], { encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (res.status !== 0) throw new Error(`${command} failed: ${res.stderr}`);
  const maxRssKb = Number(res.stderr.trim().split('\n').pop());
  const report = res.stdout.trim()
    ? (JSON.parse(res.stdout) as { seconds: number; dropped: number })
    : undefined;
  return { seconds, pipelineSeconds: report?.seconds ?? seconds, maxRssKb, dropped: report?.dropped };
}

function best(runs: Measure[]): Measure {
  return runs.reduce((a, b) => (b.pipelineSeconds < a.pipelineSeconds ? b : a));
}

/**
 * A directory for PGSHIFT_PG_BIN whose pg_dumpall cats $BENCH_DUMP (and answers --version as the real one);
 * psql and pg_dump are the real ones, which dumpAll only looks for.
 */
async function standInTools(dir: string): Promise<string> {
  const real = await findClientTools();
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const version = execFileSync(real.pgDumpall, ['--version'], { encoding: 'utf8' }).trim();
  const script = join(bin, 'pg_dumpall');
  writeFileSync(
    script,
    `#!/bin/sh\nif [ "$1" = --version ]; then echo '${version.replace(/'/g, '')}'; exit 0; fi\nexec cat "$BENCH_DUMP"\n`,
  );
  chmodSync(script, 0o755);
  symlinkSync(real.psql, join(bin, 'psql'));
  symlinkSync(real.pgDump, join(bin, 'pg_dump'));
  return bin;
}

/** The child of the dumpAll row: dumpAll of the stand-in, timed from the call to its return. */
async function runDumpAll(outPath: string): Promise<void> {
  const started = process.hrtime.bigint();
  const target = { host: 'localhost', port: 5432, user: 'bench', password: 'unused', database: 'db' };
  const result = await dumpAll(target, outPath, { adminRole: 'aptible' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`${JSON.stringify({ seconds, dropped: result.droppedStatements })}\n`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pgshift-bench-'));
  const dump = join(dir, 'dump.sql');
  const out = (name: string) => join(dir, `${name}.out.sql`);
  try {
    const roleBytes = await writeSyntheticDump(dump, MB);
    const bytes = statSync(dump).size;
    const script = join(__dirname, 'run-password-filter.ts');
    const tsx = join(__dirname, '..', 'node_modules', '.bin', 'tsx');
    const bin = await standInTools(dir);
    const commands = {
      grep: `cat ${dump} | grep -E -i -v 'ALTER ROLE aptible .*PASSWORD' > ${out('grep')}`,
      pipe: `cat ${dump} | ${tsx} ${script} aptible ${out('pipe')} --no-filter`,
      filter: `cat ${dump} | ${tsx} ${script} aptible ${out('filter')}`,
      dumpAll: `PGSHIFT_PG_BIN=${bin} BENCH_DUMP=${dump} ${tsx} ${__filename} ${DUMP_ALL} ${out('dumpAll')}`,
    };
    const runs: Record<keyof typeof commands, Measure[]> = { grep: [], pipe: [], filter: [], dumpAll: [] };
    const keys = Object.keys(commands) as Array<keyof typeof commands>;
    for (let i = 0; i < RUNS; i++) {
      // Each round in another order, so that no command always runs right after the same other one.
      for (let k = 0; k < keys.length; k++) {
        const key = keys[(i + k) % keys.length];
        runs[key].push(measure(commands[key]));
      }
    }
    // The filter's output must be the input minus the admin's password statement, and nothing else.
    const filtered = best(runs.filter);
    if (
      filtered.dropped !== 1 ||
      statSync(out('filter')).size !== bytes - Buffer.byteLength(ADMIN_PASSWORD_LINE)
    ) {
      throw new Error(
        `the filter removed ${filtered.dropped} statement(s) and left ${statSync(out('filter')).size} bytes`,
      );
    }

    const whole = best(runs.dumpAll);
    if (whole.dropped !== 1 || statSync(out('dumpAll')).size !== statSync(out('filter')).size) {
      throw new Error(
        `dumpAll removed ${whole.dropped} statement(s) and wrote ${statSync(out('dumpAll')).size} bytes`,
      );
    }

    const g = best(runs.grep);
    const p = best(runs.pipe);
    const mib = bytes / 1024 / 1024;
    const row = (name: string, m: Measure, seconds: number) =>
      `${name.padEnd(36)}${seconds.toFixed(2).padStart(8)} ${(mib / seconds).toFixed(0).padStart(7)} ${(m.maxRssKb / 1024).toFixed(0).padStart(16)}`;
    console.log(
      `input: ${mib.toFixed(0)} MiB synthetic pg_dumpall output (role section ${(roleBytes / 1024).toFixed(0)} KiB), ` +
        `fed by cat through a pipe; best of ${RUNS} runs`,
    );
    console.log(`grep: ${execFileSync('grep', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`);
    console.log('');
    console.log(`${''.padEnd(36)}wall (s)   MiB/s   peak RSS (MiB)`);
    console.log(row("cat | guide's grep", g, g.seconds));
    console.log(row('cat | Node pipe, no filter', p, p.pipelineSeconds));
    console.log(row('cat | Node pipe, pgshift filter', filtered, filtered.pipelineSeconds));
    console.log(row('dumpAll, stand-in pg_dumpall = cat', whole, whole.pipelineSeconds));
    console.log(
      `${'ratio dumpAll/grep'.padEnd(36)}${(whole.pipelineSeconds / g.seconds).toFixed(2).padStart(8)}x`,
    );
    console.log(
      `${'ratio filter/grep'.padEnd(36)}${(filtered.pipelineSeconds / g.seconds).toFixed(2).padStart(8)}x` +
        `   (filter/no filter ${(filtered.pipelineSeconds / p.pipelineSeconds).toFixed(2)}x)`,
    );
    console.log(
      `\nThe Node rows leave out starting Node and tsx (${(filtered.seconds - filtered.pipelineSeconds).toFixed(2)} s), ` +
        'which a worker pays once, not per dump; with it the filter took ' +
        `${filtered.seconds.toFixed(2)} s (${(filtered.seconds / g.seconds).toFixed(2)}x grep).`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const run = process.argv[2] === DUMP_ALL ? runDumpAll(process.argv[3]) : main();
run.catch((err) => {
  console.error(err);
  process.exit(1);
});
