// Benchmark: how long `pgshift --help` and `pgshift status ID` take, run the way the CLI used to run (the
// TypeScript sources through tsx) and the way it runs now (the compiled dist/, through bin/pgshift.js), as
// medians of several runs. `status` asks a Temporal server about an id it does not know: start-up, connect
// and one answer; the answer alone is measured in this process too, so the start-up is what remains.
// Usage: npm run bench:cli -- [runs=7]   (TEMPORAL_ADDRESS: a server to ask; default: a dev server of its own)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectClient } from '../src/client/temporal-client';
import { staleSource } from '../bin/stale-build';
import { isPortOpen, startDevServer, type DevServer } from '../src/temporal/dev-server';

const RUNS = Number(process.argv[2] ?? 7);
const ROOT = join(__dirname, '..');
const MISSING_ID = 'pgshift-bench-no-such-migration';

class BenchError extends Error {}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** Builds dist/ as `npm ci` does, when src/ changed since (bin/pgshift.js would run tsx otherwise). */
function ensureBuilt(): void {
  if (staleSource() === undefined) return;
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
}

/**
 * Median wall time of `node ARGS`, after one run that warms the disk cache (and tsx's compile cache);
 * `prepare` runs before each run, untimed.
 */
function timeNode(args: string[], env: NodeJS.ProcessEnv, expectedCode: number, prepare = () => {}): number {
  const once = (): number => {
    prepare();
    const started = process.hrtime.bigint();
    const res = spawnSync(process.execPath, args, { cwd: ROOT, env, encoding: 'utf8' });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (res.status !== expectedCode) {
      throw new BenchError(
        `node ${args.join(' ')} exited ${res.status}, expected ${expectedCode}: ${res.stderr.trim()}`,
      );
    }
    return seconds;
  };
  once();
  return median(Array.from({ length: RUNS }, once));
}

/** One answer of the server to `status` (connect, then describe an unknown id), without any start-up. */
async function serverAnswerSeconds(): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const started = process.hrtime.bigint();
    const client = await connectClient();
    await client.workflow
      .getHandle(MISSING_ID)
      .describe()
      .catch(() => undefined);
    if (i > 0) samples.push(Number(process.hrtime.bigint() - started) / 1e9);
    await client.connection.close();
  }
  return median(samples);
}

async function withTemporal<T>(body: () => Promise<T>): Promise<T> {
  const address = process.env.TEMPORAL_ADDRESS;
  if (address) {
    const [host, port] = address.split(':');
    if (!(await isPortOpen(host, Number(port)))) throw new BenchError(`nothing listens on ${address}`);
    return body();
  }
  const home = mkdtempSync(join(tmpdir(), 'pgshift-bench-cli-'));
  let server: DevServer | undefined;
  try {
    server = await startDevServer({ home, port: await freePort(), uiPort: await freePort() });
    process.env.TEMPORAL_ADDRESS = server.address;
    return await body();
  } finally {
    await server?.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!Number.isInteger(RUNS) || RUNS < 1) throw new BenchError(`runs must be a whole number ≥ 1`);
  // As bin/pgshift.js used to run (`require('tsx/cjs')`), plus tsx's ESM hook that the lazy imports need.
  const tsx = ['--import', 'tsx', join(ROOT, 'src', 'client', 'cli.ts')];
  const compiled = [join(ROOT, 'bin', 'pgshift.js')];
  const load = loadavg()[0].toFixed(2);

  await withTemporal(async () => {
    const warm = { ...process.env };
    // tsx caches what it compiled; a fresh clone, and every edited file, starts without that cache.
    const cold = { ...process.env, TSX_DISABLE_CACHE: '1' };
    const rows: { label: string; cold: number; warm: number; compiled: number }[] = [];
    for (const [label, args, code] of [
      ['pgshift --help', ['--help'], 0],
      [`pgshift status ID`, ['status', MISSING_ID], 2],
    ] as const) {
      rows.push({
        label,
        cold: timeNode([...tsx, ...args], cold, code),
        warm: timeNode([...tsx, ...args], warm, code),
        compiled: timeNode([...compiled, ...args], warm, code, ensureBuilt),
      });
    }
    const answer = await serverAnswerSeconds();

    const cell = (seconds: number, width: number) => `${seconds.toFixed(2)} s`.padStart(width);
    console.log(`\nCLI start-up, median of ${RUNS} runs (load average ${load} at the start)\n`);
    console.log('command             tsx, no cache   tsx, cached   compiled   speed-up (vs cached)');
    for (const r of rows) {
      console.log(
        `${r.label.padEnd(18)}${cell(r.cold, 15)}${cell(r.warm, 14)}${cell(r.compiled, 11)}` +
          `${(r.warm / r.compiled).toFixed(1).padStart(10)}x`,
      );
    }
    console.log(
      `\nThe server's answer alone (connect + describe, in process): ${answer.toFixed(2)} s; ` +
        `so status starts in about ${Math.max(0, rows[1].compiled - answer).toFixed(2)} s compiled.`,
    );
    console.log("Goals: --help ≤ 0.5 s; status ≤ 1 s plus the server's answer (on an idle machine).");
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-cli-startup: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = err instanceof BenchError ? 2 : 1;
});
