// `go install` of the Temporal CLI compiles about a thousand packages: 8-17 minutes on 2 cores the first
// time, and Go prints nothing meanwhile. Run with `-v`, Go names each package it compiles; this turns those
// names into one progress line with the elapsed time, so the person waiting sees it is alive.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { PgshiftError } from '../errors';
import { formatDuration } from '../lib/duration';

export class GoInstallError extends PgshiftError {}

export interface GoInstallOptions {
  go: string;
  /** `module@version`, as `go install` takes it. */
  module: string;
  /** Where the binary goes (GOBIN). */
  gobin: string;
  /** Where the progress goes; default stderr. On a terminal one line is redrawn, elsewhere lines follow. */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
  /** How often the elapsed time is shown at the least; default 15 s on a terminal, 30 s elsewhere. */
  everyMs?: number;
}

/** A package path as `go build -v` prints it, e.g. `github.com/temporalio/cli/internal/temporalcli`. */
const PACKAGE_LINE = /^[\w.~-]+(\/[\w.~+-]+)*$/;
const KEPT_LINES = 30;

export function goInstall(options: GoInstallOptions): Promise<void> {
  const out = options.out ?? process.stderr;
  const tty = out.isTTY === true;
  const everyMs = options.everyMs ?? (tty ? 15_000 : 30_000);
  const started = Date.now();
  let packages = 0;
  let downloads = 0;
  // What is neither a package nor a download (compiler errors, say): shown when the build fails.
  const other: string[] = [];
  let drawnAt = 0;

  const progress = (): string =>
    `pgshift: building the Temporal CLI: ${formatDuration(Date.now() - started)} elapsed, ` +
    `${packages} packages compiled${downloads ? `, ${downloads} modules downloaded` : ''}`;
  const draw = (): void => {
    drawnAt = Date.now();
    out.write(tty ? `\r\x1b[2K${progress()}` : `${progress()}\n`);
  };
  const endLine = (): void => {
    if (tty && drawnAt) out.write('\n');
  };

  mkdirSync(options.gobin, { recursive: true });
  return new Promise((resolve, reject) => {
    const child = spawn(options.go, ['install', '-v', options.module], {
      env: { ...process.env, GOBIN: options.gobin },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setInterval(draw, everyMs);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (line.startsWith('go: downloading ')) downloads += 1;
        else if (PACKAGE_LINE.test(line)) packages += 1;
        else {
          other.push(line);
          if (other.length > KEPT_LINES) other.shift();
          return;
        }
        // On a terminal the line follows the packages, at most once a second.
        if (tty && Date.now() - drawnAt >= 1000) draw();
      });
    }
    let finished = false;
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      endLine();
      if (err) reject(err);
      else resolve();
    };
    child.once('error', (err) => finish(new GoInstallError(`cannot run ${options.go}: ${err.message}`)));
    child.once('close', (code, signal) => {
      if (code === 0) {
        finish();
        if (drawnAt)
          out.write(`pgshift: built the Temporal CLI in ${formatDuration(Date.now() - started)}\n`);
        return;
      }
      const tail = other.length ? `:\n${other.join('\n')}` : '';
      finish(
        new GoInstallError(
          `go install ${options.module} failed (${signal ?? `exit ${code}`}) after ` +
            `${formatDuration(Date.now() - started)}${tail}`,
        ),
      );
    });
  });
}
