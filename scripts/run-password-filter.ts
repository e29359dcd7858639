// stdin → password filter → stdout: the filter as a command, for the benchmark.
import { pipeline } from 'node:stream/promises';
import { createPasswordFilter } from '../src/pg/password-filter';

const filter = createPasswordFilter(process.argv[2] ?? 'aptible');
pipeline(process.stdin, filter, process.stdout)
  .then(() => process.stderr.write(`dropped ${filter.droppedStatements} line(s)\n`))
  .catch((err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
