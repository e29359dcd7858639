// Benchmark: pgshift's password filter against the guide's `grep -E -i -v 'ALTER ROLE aptible .*PASSWORD'`,
// on a synthetic pg_dumpall output, side by side: wall time, throughput and peak memory, with ratios.
// Usage: npx tsx scripts/bench-dump-filter.ts [megabytes=256] [runs=3]
import { execFileSync, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

const MB = Number(process.argv[2] ?? 256);
const RUNS = Number(process.argv[3] ?? 3);

async function writeSyntheticDump(path: string, megabytes: number): Promise<void> {
  const out = createWriteStream(path);
  const header = [
    '--\n-- PostgreSQL database cluster dump\n--\n',
    '\\restrict abc123\nSET default_transaction_read_only = off;\nCREATE ROLE aptible;\n',
    "ALTER ROLE aptible WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN PASSWORD 'SCRAM-SHA-256$4096:xyz';\n",
    "CREATE ROLE reporting;\nALTER ROLE reporting WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc';\n",
    '\\connect db\n',
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
  out.end('\\.\n\n\\unrestrict abc123\n');
  await once(out, 'finish');
}

interface Measure {
  seconds: number;
  maxRssKb: number;
}

/** Runs a shell pipeline under GNU time, reading peak RSS of the measured command. */
function measure(command: string): Measure {
  const started = process.hrtime.bigint();
  const res = spawnSync('/usr/bin/time', ['-f', '%M', 'sh', '-c', command], { encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (res.status !== 0) throw new Error(`${command} failed: ${res.stderr}`);
  const maxRssKb = Number(res.stderr.trim().split('\n').pop());
  return { seconds, maxRssKb };
}

function best(runs: Measure[]): Measure {
  return runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pgshift-bench-'));
  const dump = join(dir, 'dump.sql');
  try {
    await writeSyntheticDump(dump, MB);
    const bytes = statSync(dump).size;
    const filterScript = join(__dirname, 'run-password-filter.ts');
    const tsx = join(__dirname, '..', 'node_modules', '.bin', 'tsx');
    const grep = `grep -E -i -v 'ALTER ROLE aptible .*PASSWORD' ${dump} > ${join(dir, 'out')}`;
    const ours = `${tsx} ${filterScript} aptible < ${dump} > ${join(dir, 'out')}`;
    const grepRuns: Measure[] = [];
    const ourRuns: Measure[] = [];
    for (let i = 0; i < RUNS; i++) {
      grepRuns.push(measure(grep));
      ourRuns.push(measure(ours));
    }
    const g = best(grepRuns);
    const o = best(ourRuns);
    const mbps = (m: Measure) => (bytes / 1024 / 1024 / m.seconds).toFixed(0);
    console.log(
      `input: ${(bytes / 1024 / 1024).toFixed(0)} MiB synthetic pg_dumpall output, best of ${RUNS} runs`,
    );
    console.log(`grep: ${execFileSync('grep', ['--version'], { encoding: 'utf8' }).split('\n')[0]}`);
    console.log('');
    console.log('                      wall (s)   MiB/s   peak RSS (MiB)');
    console.log(
      `guide's grep          ${g.seconds.toFixed(2).padStart(8)} ${mbps(g).padStart(7)} ${(g.maxRssKb / 1024).toFixed(0).padStart(16)}`,
    );
    console.log(
      `pgshift filter        ${o.seconds.toFixed(2).padStart(8)} ${mbps(o).padStart(7)} ${(o.maxRssKb / 1024).toFixed(0).padStart(16)}`,
    );
    console.log(
      `ratio pgshift/grep    ${(o.seconds / g.seconds).toFixed(2).padStart(8)}x ${''.padStart(6)} ${(o.maxRssKb / g.maxRssKb).toFixed(1).padStart(15)}x`,
    );
    console.log(
      "\n(pgshift's time includes starting Node and tsx; memory stays flat as the input grows: it streams.)",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
