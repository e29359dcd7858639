// stdin → password filter → OUT_FILE, as dumpAll pipes pg_dumpall's stdout into the dump file; for the
// benchmark. Prints {"seconds", "dropped"} on stdout: the time from the first read to the file's close,
// without Node's and tsx's start, which a worker pays once and not per dump.
// Usage: tsx scripts/run-password-filter.ts ADMIN_ROLE OUT_FILE [--no-filter]
import { createWriteStream } from 'node:fs';
import { PassThrough, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createPasswordFilter } from '../src/pg/password-filter';

async function main(): Promise<void> {
  const [role, outPath, option] = process.argv.slice(2);
  if (!role || !outPath || (option !== undefined && option !== '--no-filter')) {
    process.stderr.write('usage: run-password-filter.ts ADMIN_ROLE OUT_FILE [--no-filter]\n');
    process.exit(2);
  }
  const filter = option === '--no-filter' ? undefined : createPasswordFilter(role);
  const stage: Transform = filter ?? new PassThrough();
  const started = process.hrtime.bigint();
  await pipeline(process.stdin, stage, createWriteStream(outPath));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`${JSON.stringify({ seconds, dropped: filter?.droppedStatements ?? 0 })}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
