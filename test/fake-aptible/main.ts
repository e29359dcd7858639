// The fake `aptible` (see README.md here): parses argv as Thor does, logs the invocation, applies the
// test's faults, authenticates as the real CLI does, runs the command against the fake's state and the
// backing local platform, prints the one document at the end, and exits as bin/aptible does.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LocalPlatform } from '../../src/platform/local';
import { redact } from '../../src/lib/redact';
import {
  COMMANDS,
  type OptionValue,
  ThorError,
  checkArity,
  helpText,
  parseOptions,
  rubyInspect,
} from './argv';
import * as commands from './commands';
import type { Ctx } from './context';
import { type FaultAction, type Invocation, claimFaults } from './faults';
import { type Doc, UserError, renderDoc } from './render';
import { AUTH_ERROR, ApiError } from './resolve';
import { HOME_ENV, appendLine, paths, readState } from './state';
import { dbReplicate } from './replicate';
import { dbTunnel } from './tunnel';

type Run = (ctx: Ctx) => Promise<Doc | undefined | number> | Doc;

const RUNNERS: Record<string, Run> = {
  version: () => commands.version(),
  'db:list': commands.dbList,
  'db:versions': commands.dbVersions,
  'db:create': commands.dbCreate,
  'db:url': commands.dbUrl,
  'db:replicate': dbReplicate,
  'db:tunnel': dbTunnel,
  'db:deprovision': commands.dbDeprovision,
  'db:backup': commands.dbBackup,
  apps: commands.apps,
  'apps:scale': commands.appsScale,
  config: commands.config,
  'config:set': commands.configSet,
  'backup:list': commands.backupList,
  'backup:orphaned': commands.backupOrphaned,
  'backup:purge': commands.backupPurge,
  'backup:restore': commands.backupRestore,
};

/** An uncaught Ruby exception (not a Thor::Error/UserError/ClientError): message (Class), exit 1. */
class RubyException extends Error {}

const stdout = (text: string) => void process.stdout.write(text);
// CLI.logger with PlainLogFormatter (lib/aptible/cli.rb:57-67): "#{msg}\n", no level, no time.
const log = (line: string) => void process.stderr.write(line + '\n');

/** No password, token or secret value reaches the invocation log. */
export function maskArg(arg: string, previous: string | undefined): string {
  if (previous !== undefined && /^--(password|otp-token|sso)$/.test(previous)) return '***';
  let out = redact(arg).replace(/^(--(?:password|otp-token|sso)=).*$/s, '$1***');
  const assignment = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/s.exec(out);
  if (assignment && /PASS|SECRET|TOKEN|KEY/i.test(assignment[1])) out = `${assignment[1]}=***`;
  return out;
}

function logInvocation(home: string, argv: string[]): void {
  const env: Record<string, string> = {};
  if (process.env.APTIBLE_OUTPUT_FORMAT !== undefined)
    env.APTIBLE_OUTPUT_FORMAT = process.env.APTIBLE_OUTPUT_FORMAT;
  if (process.env.APTIBLE_ACCESS_TOKEN !== undefined) env.APTIBLE_ACCESS_TOKEN = '***';
  appendLine(paths.invocations(home), {
    argv: argv.map((a, i) => maskArg(a, argv[i - 1])),
    env,
    pid: process.pid,
    at: new Date().toISOString(),
  });
}

/** agent.rb:322-350 nag_toolbelt (opt-in: FAKE_APTIBLE_NAG=1; the real CLI installed from source shows it). */
function nagToolbelt(): void {
  if (process.env.FAKE_APTIBLE_NAG !== '1' || process.env.APTIBLE_TOOLBELT) return;
  const file = join(configPath(), 'nag_toolbelt');
  let last = 0;
  try {
    last = Number.parseInt(readFileSync(file, 'utf8'), 10) || 0;
  } catch {
    last = 0;
  }
  const now = Math.floor(Date.now() / 1000);
  if (last >= now - 12 * 3600) return;
  log(
    [
      'You have installed the Aptible CLI from source.',
      'This is not recommended: some functionality may not work!',
      'Review this support topic for more information:',
      'https://www.aptible.com/support/topics/cli/how-to-install-cli/',
    ].join('\n'),
  );
  try {
    mkdirSync(configPath(), { recursive: true });
    writeFileSync(file, String(now), { mode: 0o600 });
  } catch {
    // as Ruby would, this would raise; the fake does not care
  }
}

/** helpers/config_path.rb:6 (Ruby's `||`: only a missing variable falls back). */
function configPath(): string {
  return process.env.APTIBLE_CONFIG_PATH ?? join(process.env.HOME ?? '', '.aptible');
}

/** helpers/token.rb:12-49 fetch_token: APTIBLE_ACCESS_TOKEN first, then tokens.json under the auth root URL. */
function fetchToken(): string {
  const fromEnv = process.env.APTIBLE_ACCESS_TOKEN;
  if (fromEnv !== undefined) return fromEnv;
  let hash: Record<string, unknown> = {};
  try {
    hash = JSON.parse(readFileSync(join(configPath(), 'tokens.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    hash = {};
  }
  const token = hash[process.env.APTIBLE_AUTH_ROOT_URL ?? 'https://auth.aptible.com'];
  if (typeof token === 'string') return token;
  throw new ThorError('Could not read token: please run aptible login or set APTIBLE_ACCESS_TOKEN');
}

/**
 * helpers/telemetry.rb:9-16 → decode_token: `JWT.decode(token, nil, false)` (jwt 2.3.0, no verification),
 * then `URI.parse(payload['sub'])`. Failures escape uncaught (backtrace, exit 1). Returns the payload.
 */
function decodeToken(token: string): Record<string, unknown> {
  const segments = token.split('.');
  while (segments.length > 0 && segments[segments.length - 1] === '') segments.pop(); // Ruby's split
  if (segments.length !== 2 && segments.length !== 3) {
    throw new RubyException('Not enough or too many segments (JWT::DecodeError)');
  }
  let payload: Record<string, unknown>;
  try {
    JSON.parse(Buffer.from(segments[0], 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(segments[1], 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new RubyException('Invalid segment encoding (JWT::DecodeError)');
  }
  if (typeof payload.sub !== 'string') {
    throw new RubyException(
      `bad URI(is not URI?): ${payload.sub === undefined ? 'nil' : JSON.stringify(payload.sub)} (URI::InvalidURIError)`,
    );
  }
  return payload;
}

/** The resource a fault rule's `handle` names (see faults.ts). */
function faultHandle(
  command: string,
  args: string[],
  options: Record<string, OptionValue>,
): string | undefined {
  if (command === 'backup:restore') return options.handle === undefined ? undefined : String(options.handle);
  if (['apps:scale', 'config', 'config:set'].includes(command)) {
    return options.app === undefined ? undefined : String(options.app);
  }
  return args[0];
}

async function applyFail(action: Extract<FaultAction, { type: 'fail' }>): Promise<number> {
  if (action.stdout) stdout(action.stdout);
  log(action.stderr ?? 'An error occurred: Internal Server Error (fake fault)');
  return action.exitCode ?? 1;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function run(home: string, argv: string[]): Promise<number> {
  nagToolbelt();
  const name = argv[0];
  if (name === undefined || name === 'help' || name.startsWith('-')) {
    stdout(helpText());
    return 0;
  }
  const spec = COMMANDS[name];
  if (!spec) throw new ThorError(`Could not find command ${rubyInspect(name)}.`);
  const { args, options } = parseOptions(spec, argv.slice(1));
  checkArity(spec, args);

  const invocation: Invocation = {
    command: name,
    argv,
    handle: faultHandle(name, args, options),
    environment: options.environment === undefined ? undefined : String(options.environment),
  };
  const faults = await claimFaults(home, invocation);
  for (const f of faults) if (f.type === 'delayMs' && !f.after) await sleep(f.ms);
  for (const f of faults) if (f.type === 'fail' && !f.after) return applyFail(f);

  let userEmail = 'unknown';
  if (name !== 'version') {
    const token = fetchToken();
    const payload = decodeToken(token);
    if (typeof payload.email === 'string') userEmail = payload.email;
    // The first API call answers 401 expired_token (bin/aptible).
    if ((await readState(home)).expiredTokens.includes(token)) throw new AuthFailure();
  }

  let platform: LocalPlatform | undefined;
  const ctx: Ctx = {
    home,
    command: name,
    args,
    options,
    userEmail,
    out: stdout,
    log,
    faults,
    local: () => {
      if (!platform) {
        const { LocalPlatform: Local } = loadLocalPlatform();
        platform = new Local({ home: paths.local(home), stopGraceMs: 3_000 });
      }
      return platform;
    },
  };
  const result = await RUNNERS[name](ctx);

  for (const f of faults) if (f.type === 'delayMs' && f.after) await sleep(f.ms);
  for (const f of faults) if (f.type === 'fail' && f.after) return applyFail(f);
  if (typeof result === 'number') return result;
  if (result) stdout(renderDoc(result, process.env.APTIBLE_OUTPUT_FORMAT));
  return 0;
}

class AuthFailure extends Error {}

type LocalPlatformModule = typeof import('../../src/platform/local/local-platform');

/** Loaded only by the commands that need it (it pulls in pg and the cluster code): start-up stays fast. */
function loadLocalPlatform(): LocalPlatformModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../../src/platform/local/local-platform') as LocalPlatformModule;
}

function errorMessage(err: unknown): string {
  if (err instanceof ThorError || err instanceof UserError || err instanceof RubyException)
    return err.message;
  if (err instanceof AuthFailure) return AUTH_ERROR;
  if (err instanceof ApiError) return `An error occurred: ${err.message}`;
  // Anything else is a bug or an environment problem of the fake (or its backing clusters): Ruby would
  // print an uncaught exception's message and backtrace.
  return `${redact(err instanceof Error ? err.message : String(err))} (RuntimeError)`;
}

async function flush(): Promise<void> {
  await Promise.all(
    [process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))),
  );
}

export async function main(argv: string[]): Promise<void> {
  const home = process.env[HOME_ENV] ? resolve(process.env[HOME_ENV]) : undefined;
  if (!home) {
    log(
      `fake aptible: ${HOME_ENV} must name the fake's state directory (test/fake-aptible/fixture.ts sets it)`,
    );
    await flush();
    process.exit(1);
  }
  mkdirSync(home, { recursive: true, mode: 0o700 });
  mkdirSync(paths.procs(home), { recursive: true, mode: 0o700 });
  const procFile = join(paths.procs(home), String(process.pid));
  writeFileSync(procFile, JSON.stringify({ pid: process.pid, argv: argv.slice(0, 1) }));
  logInvocation(home, argv);

  let code: number;
  try {
    code = await run(home, argv);
  } catch (err) {
    log(errorMessage(err));
    code = 1;
  }
  try {
    appendLine(paths.invocations(home), { pid: process.pid, exitCode: code });
    rmSync(procFile, { force: true });
  } catch {
    // the home may be gone already (a fixture destroyed it)
  }
  await flush();
  process.exit(code);
}
