// The Temporal CLI's first build takes minutes: goInstall must show it is alive and say why it failed.
// A stand-in `go` (a shell script) prints what `go install -v` prints and waits for the test's go-ahead.
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { GoInstallError, goInstall } from '../src/temporal/go-install';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pgshift-go-install-'));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function fakeGo(body: string): string {
  const path = join(dir, 'go');
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

function collect(tty: boolean): { out: PassThrough & { isTTY: boolean }; text: () => string } {
  const out = Object.assign(new PassThrough(), { isTTY: tty });
  let text = '';
  out.on('data', (d) => (text += d));
  return { out, text: () => text };
}

async function waitUntil(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !check();) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('shows the elapsed time and the packages compiled while Go works, then installs into GOBIN', async () => {
  const release = join(dir, 'release');
  const go = fakeGo(
    [
      '[ "$1 $2 $3" = "install -v example.com/cli@v1" ] || { echo "unexpected args: $*" >&2; exit 3; }',
      'echo "go: downloading example.com/cli v1" >&2',
      'for p in example.com/cli/internal/a example.com/cli/internal/b golang.org/x/net/http2; do echo "$p" >&2; done',
      `while [ ! -e ${JSON.stringify(release)} ]; do sleep 0.05; done`,
      'touch "$GOBIN/temporal"',
    ].join('\n'),
  );
  const { out, text } = collect(false);
  const installing = goInstall({
    go,
    module: 'example.com/cli@v1',
    gobin: join(dir, 'bin'),
    out,
    everyMs: 20,
  });
  await waitUntil(() => text().includes('3 packages compiled, 1 modules downloaded'), 'progress shows');
  expect(text()).toMatch(/^pgshift: building the Temporal CLI: \S+ elapsed, 3 packages compiled/m);
  writeFileSync(release, '');
  await installing;
  expect(existsSync(join(dir, 'bin', 'temporal'))).toBe(true);
  expect(text()).toMatch(/pgshift: built the Temporal CLI in \S+\n$/);
});

test('on a terminal the progress is one line, redrawn', async () => {
  const release = join(dir, 'release');
  const go = fakeGo(
    ['echo example.com/cli/a >&2', `while [ ! -e ${JSON.stringify(release)} ]; do sleep 0.05; done`].join(
      '\n',
    ),
  );
  const { out, text } = collect(true);
  const installing = goInstall({
    go,
    module: 'example.com/cli@v1',
    gobin: join(dir, 'bin'),
    out,
    everyMs: 20,
  });
  await waitUntil(() => text().split('\r\x1b[2K').length > 2, 'the line is redrawn');
  writeFileSync(release, '');
  await installing;
  // Redrawn in place: no line ends until the build does.
  expect(text().split('\n')[0]).toMatch(/1 packages compiled$/);
  expect(text().endsWith('\n')).toBe(true);
});

test('a failed build says so, with what Go said, and no package noise', async () => {
  const go = fakeGo(
    [
      'echo example.com/cli/a >&2',
      'echo "# example.com/cli/b" >&2',
      'echo "b/b.go:3:1: syntax error: non-declaration statement outside function body" >&2',
      'exit 1',
    ].join('\n'),
  );
  const { out } = collect(false);
  const err = await goInstall({ go, module: 'example.com/cli@v1', gobin: join(dir, 'bin'), out }).catch(
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GoInstallError);
  const message = (err as Error).message;
  expect(message).toMatch(/^go install example\.com\/cli@v1 failed \(exit 1\) after /);
  expect(message).toContain('# example.com/cli/b\nb/b.go:3:1: syntax error');
  expect(message).not.toContain('example.com/cli/a');
});

test('a go that cannot run is a GoInstallError too', async () => {
  const err = await goInstall({
    go: join(dir, 'no-such-go'),
    module: 'example.com/cli@v1',
    gobin: join(dir, 'bin'),
    out: collect(false).out,
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(GoInstallError);
  expect((err as Error).message).toMatch(/cannot run .*no-such-go/);
});
