// What a failed `aptible` command means for the workflow: worth a retry, or something the operator must fix.
// Texts come from aptible/aptible-cli: bin/aptible (API errors), lib/aptible/cli/helpers/token.rb (login),
// helpers/{environment,database,app}.rb (lookups), helpers/tunnel.rb (tunnels), helpers/operation.rb.
// Every CLI failure is a bare message on stderr and exit code 1, so the message is all there is to go on.
import {
  NotFoundError,
  NotLoggedInError,
  PlatformError,
  type PgshiftError,
  TargetExistsError,
  TransientPlatformError,
} from '../../errors';
import { redact } from '../../lib/redact';

export interface CliFailure {
  /** The subcommand, e.g. "db:create" (never the arguments, which may hold a secret). */
  command: string;
  exitCode: number | undefined;
  stderr: string;
  /** The process could not be started at all (ENOENT, EACCES). */
  spawnError?: string;
  timedOut?: boolean;
}

type Rule = [RegExp, (message: string, f: CliFailure) => PgshiftError];

const LOGIN_HELP =
  'log in on the worker machine with `aptible login` (tokens expire: 1 week by default, 12 hours with 2FA; ' +
  "`--lifetime` sets it), or set APTIBLE_ACCESS_TOKEN in the worker's environment. Steps that must finish " +
  '(services back up, a rollback) keep retrying for about an hour meanwhile; others stop here';

const RULES: Rule[] = [
  [
    /Could not read token|API authentication error|please run aptible login/i,
    () => new NotLoggedInError(`the aptible CLI is not logged in (or its token expired): ${LOGIN_HELP}`),
  ],
  // A database still being provisioned (or restored): the operation is under way, a later attempt finds it up.
  [/is not provisioned/i, (m) => new TransientPlatformError(`${m} (yet; retrying)`)],
  [
    /Could not find (database|environment|app) |Specified account does not exist|does not exist for app|Backup #\d+ not found/i,
    (m) => new NotFoundError(`${m}: check the handles and environments in the plan`),
  ],
  [
    /ssh-keygen must be installed|ssh: not found|No such file or directory - ssh/i,
    (m) =>
      new PlatformError(
        `${m}: the aptible CLI needs ssh and ssh-keygen on the worker machine (Debian: openssh-client)`,
      ),
  ],
  [
    /No default credential|No credential with type/i,
    (m) =>
      new PlatformError(`${m}: pgshift tunnels with the database's default credential; ask Aptible support`),
  ],
  [
    /No Database Image of type|--type is required|valid versions/i,
    (m) => new PlatformError(`${m}: check target.version in the plan against \`aptible db:versions\``),
  ],
  [
    /Multiple (databases|apps|environments) .*exist|Multiple environments available/i,
    (m) => new PlatformError(`${m}: set the environment explicitly in the plan`),
  ],
  [
    /has already been taken/i,
    (m) =>
      new TargetExistsError(`${m}: a database with that handle exists; choose another handle in the plan`),
  ],
  // Tunnels: did not come up (ssh failed), timed out, crashed. All worth another tunnel.
  [/Tunnel did not come up|Tunnel timed out|Tunnel crashed/i, (m) => new TransientPlatformError(m)],
  // An operation still running, or the portal lost: the CLI polls, and a later run sees the outcome.
  [
    /already (in progress|running)|operation .*(in progress|pending)|try again/i,
    (m) => new TransientPlatformError(`${m} (retrying)`),
  ],
  [
    /Operation #(\d+) failed/i,
    (m, f) =>
      new TransientPlatformError(
        `${m} (\`aptible ${f.command}\`); see \`aptible operation:logs ${/#(\d+)/.exec(m)?.[1]}\`. Retrying`,
      ),
  ],
  // Network and API-side failures (5xx surface as an uncaught Ruby exception with a backtrace).
  [
    /ServerError|Errno::E(CONNREFUSED|CONNRESET|HOSTUNREACH|NETUNREACH|TIMEDOUT)|SocketError|getaddrinfo|Net::(OpenTimeout|ReadTimeout)|Faraday::|timed out|Connection reset|\b50[234] (Bad Gateway|Service Unavailable|Gateway Time-?out)|Too Many Requests|rate limit/i,
    (m) => new TransientPlatformError(`${m} (network or Aptible API trouble; retrying)`),
  ],
  [
    /An error occurred: /i,
    (m) => new PlatformError(`${m}: Aptible refused the request; fix what it names, then start again`),
  ],
];

/** The meaningful line of the CLI's stderr: the last non-noise line, without secrets, at most 500 chars. */
export function failureMessage(stderr: string, secrets: readonly string[] = []): string {
  const lines = redact(stderr, secrets)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^from \//.test(l));
  // The error is printed last (progress lines such as "Deprovisioning X..." come first); Ruby's own
  // exceptions print the message first and the backtrace's "from" lines (dropped above) after it.
  const named = [...lines]
    .reverse()
    .find((l) => /Error|error|Could not|not found|exist|failed|crashed|timed out|must be/.test(l));
  const line = named ?? lines[lines.length - 1] ?? '';
  return line.length > 500 ? `${line.slice(0, 499)}…` : line;
}

/** Turns a failed CLI run into the error the workflow's retry policy understands. */
export function classifyFailure(f: CliFailure, secrets: readonly string[] = []): PgshiftError {
  // Tunnels start the CLI through /bin/sh (tunnel.ts), which reports a missing program as exit 127.
  const missing =
    f.spawnError ?? (f.exitCode === 127 && /not found/.test(f.stderr) ? 'not found' : undefined);
  if (missing) {
    return new PlatformError(
      `the aptible CLI could not be run (${missing}): install it on the worker machine ` +
        '(https://www.aptible.com/docs/reference/aptible-cli/cli-commands/overview) or set APTIBLE_CLI_PATH',
    );
  }
  if (f.timedOut) {
    return new TransientPlatformError(`\`aptible ${f.command}\` did not finish in time; retrying`);
  }
  const message = failureMessage(f.stderr, secrets);
  for (const [pattern, make] of RULES) {
    if (pattern.test(message)) return make(message, f);
  }
  // Unknown failures are retried (the workflow bounds the attempts); the message shows what happened.
  return new TransientPlatformError(
    `\`aptible ${f.command}\` failed (exit ${f.exitCode ?? 'signal'}): ${message || 'no message'}`,
  );
}
