// Thor 0.20.3's command line, as the real CLI parses it (aptible-cli pins thor 0.20.3 in Gemfile.lock):
// the first word is the command; options may come anywhere after it, as `--opt value` or `--opt=value`,
// with `_` and `-` interchangeable in their names; unknown `--flags` are not rejected but stay among the
// positional arguments; `--` ends the options; a string option given without a value takes its own name
// (thor/parser/options.rb:206-219); a numeric option needs a number; a boolean option takes no value
// unless the next word is true/false, and `--no-x`/`--skip-x` set it false (options.rb parse_boolean). Every usage string below is the
// command's `desc` in aptible/aptible-cli@04255732, which Thor prints in its arity errors.

export type OptionType = 'string' | 'numeric' | 'boolean';

export interface OptionSpec {
  /** Thor's name, with underscores: `container_count`. */
  name: string;
  type: OptionType;
  aliases?: string[];
  default?: string | number;
}

export interface CommandSpec {
  name: string;
  /** Thor's usage banner (the command's `desc`). */
  usage: string;
  /** Number of positional arguments, or 'variadic' (`define_method 'x' do |*args|`). */
  arity: number | 'variadic';
  options: OptionSpec[];
}

export class ThorError extends Error {}

const environment: OptionSpec = { name: 'environment', type: 'string', aliases: ['--env'] };
// helpers/app.rb:15-20 (app_options)
const appOptions: OptionSpec[] = [
  { name: 'app', type: 'string' },
  environment,
  { name: 'remote', type: 'string', aliases: ['-r'] },
];
const str = (name: string, extra: Partial<OptionSpec> = {}): OptionSpec => ({
  name,
  type: 'string',
  ...extra,
});
const num = (name: string, extra: Partial<OptionSpec> = {}): OptionSpec => ({
  name,
  type: 'numeric',
  ...extra,
});
const bool = (name: string): OptionSpec => ({ name, type: 'boolean' });

export const COMMANDS: Record<string, CommandSpec> = {
  // lib/aptible/cli/agent.rb:108-115
  version: { name: 'version', usage: 'version', arity: 0, options: [] },
  // lib/aptible/cli/subcommands/db.rb:17-108
  'db:list': { name: 'db:list', usage: 'db:list', arity: 0, options: [environment] },
  // lib/aptible/cli/subcommands/db.rb:110-129
  'db:versions': { name: 'db:versions', usage: 'db:versions', arity: 0, options: [] },
  // lib/aptible/cli/subcommands/db.rb:131-205
  'db:create': {
    name: 'db:create',
    usage:
      'db:create HANDLE [--type TYPE] [--version VERSION] [--container-size SIZE_MB] [--disk-size SIZE_GB] ' +
      '[--container-profile PROFILE] [--iops IOPS] [--key-arn KEY_ARN]',
    arity: 1,
    options: [
      str('type'),
      str('version'),
      num('container_size'),
      num('disk_size', { default: 10 }),
      num('size'),
      str('key_arn'),
      environment,
      str('container_profile'),
      num('iops'),
    ],
  },
  // lib/aptible/cli/subcommands/db.rb:222-281
  'db:replicate': {
    name: 'db:replicate',
    usage:
      'db:replicate HANDLE REPLICA_HANDLE [--container-size SIZE_MB] [--disk-size SIZE_GB] ' +
      '[--container-profile PROFILE] [--iops IOPS] [--logical --version VERSION] [--key-arn KEY_ARN]',
    arity: 2,
    options: [
      environment,
      num('container_size'),
      num('size'),
      num('disk_size'),
      bool('logical'),
      str('version'),
      str('key_arn'),
      str('container_profile'),
      num('iops'),
    ],
  },
  // lib/aptible/cli/subcommands/db.rb:326-373
  'db:tunnel': {
    name: 'db:tunnel',
    usage: 'db:tunnel HANDLE',
    arity: 1,
    options: [environment, num('port'), str('type')],
  },
  // lib/aptible/cli/subcommands/db.rb:375-391
  'db:deprovision': {
    name: 'db:deprovision',
    usage: 'db:deprovision HANDLE',
    arity: 1,
    options: [environment],
  },
  // lib/aptible/cli/subcommands/db.rb:393-402
  'db:backup': { name: 'db:backup', usage: 'db:backup HANDLE', arity: 1, options: [environment] },
  // lib/aptible/cli/subcommands/db.rb:477-492
  'db:url': { name: 'db:url', usage: 'db:url HANDLE', arity: 1, options: [environment, str('type')] },
  // lib/aptible/cli/subcommands/apps.rb:12-45
  apps: { name: 'apps', usage: 'apps', arity: 0, options: [environment] },
  // lib/aptible/cli/subcommands/apps.rb:68-108
  'apps:scale': {
    name: 'apps:scale',
    usage:
      'apps:scale [--app APP] SERVICE [--container-count COUNT] [--container-size SIZE_MB] ' +
      '[--container-profile PROFILE]',
    arity: 1,
    options: [...appOptions, num('container_count'), num('container_size'), str('container_profile')],
  },
  // lib/aptible/cli/subcommands/config.rb:12-32
  config: { name: 'config', usage: 'config [--app APP]', arity: 0, options: appOptions },
  // lib/aptible/cli/subcommands/config.rb:67-73 (an alias of config:add, config.rb:53-65)
  'config:set': {
    name: 'config:set',
    usage: 'config:set [--app APP] [VAR1=VAL1] [VAR2=VAL2] [...]',
    arity: 'variadic',
    options: appOptions,
  },
  // lib/aptible/cli/subcommands/backup.rb:11-72
  'backup:restore': {
    name: 'backup:restore',
    usage:
      'backup:restore BACKUP_ID [--environment ENVIRONMENT_HANDLE] [--handle HANDLE] [--container-size SIZE_MB] ' +
      '[--disk-size SIZE_GB] [--container-profile PROFILE] [--iops IOPS] [--key-arn KEY_ARN]',
    arity: 1,
    options: [
      str('handle'),
      environment,
      num('container_size'),
      num('size'),
      num('disk_size'),
      str('key_arn'),
      str('container_profile'),
      num('iops'),
    ],
  },
  // lib/aptible/cli/subcommands/backup.rb:74-100
  'backup:list': {
    name: 'backup:list',
    usage: 'backup:list DB_HANDLE',
    arity: 1,
    options: [environment, str('max_age', { default: '99y' })],
  },
  // lib/aptible/cli/subcommands/backup.rb:102-131
  'backup:orphaned': {
    name: 'backup:orphaned',
    usage: 'backup:orphaned',
    arity: 0,
    options: [environment, str('max_age', { default: '99y' })],
  },
  // lib/aptible/cli/subcommands/backup.rb:133-151
  'backup:purge': { name: 'backup:purge', usage: 'backup:purge BACKUP_ID', arity: 1, options: [] },
};

export type OptionValue = string | number | boolean;

export interface ParsedArgs {
  args: string[];
  options: Record<string, OptionValue>;
}

const TRUE_WORDS = ['true', 'TRUE', 't', 'T'];
const FALSE_WORDS = ['false', 'FALSE', 'f', 'F'];

/** Ruby's String#inspect for the strings Thor shows (double quotes, backslash escapes). */
export function rubyInspect(value: string): string {
  return JSON.stringify(value).replace(/#\{/g, '\\#{');
}

/** Thor::Options#parse (thor/parser/options.rb) for one command's options. */
export function parseOptions(spec: CommandSpec, argv: string[]): ParsedArgs {
  const bySwitch = new Map<string, OptionSpec>();
  for (const option of spec.options) {
    bySwitch.set('--' + option.name.replace(/_/g, '-'), option);
    for (const alias of option.aliases ?? []) bySwitch.set(alias, option);
  }
  const negated = new Map<string, OptionSpec>();
  for (const option of spec.options.filter((o) => o.type === 'boolean')) {
    for (const prefix of ['--no-', '--skip-']) negated.set(prefix + option.name.replace(/_/g, '-'), option);
  }
  const options: Record<string, OptionValue> = {};
  for (const option of spec.options) if (option.default !== undefined) options[option.name] = option.default;
  const args: string[] = [];
  const rest = [...argv];
  let parsing = true;
  const looksLikeSwitch = (arg: string | undefined) => arg !== undefined && /^-/.test(arg);
  while (rest.length > 0) {
    const arg = rest.shift() as string;
    if (!parsing || !looksLikeSwitch(arg)) {
      args.push(arg);
      continue;
    }
    if (arg === '--') {
      parsing = false;
      continue;
    }
    let switchName = arg;
    let inlineValue: string | undefined;
    const eq = /^(--\w+(?:-\w+)*|-[a-z])=(.*)$/is.exec(arg);
    if (eq) {
      switchName = eq[1];
      inlineValue = eq[2];
    }
    const normalized = switchName.startsWith('--') ? switchName.replace(/_/g, '-') : switchName;
    const off = negated.get(normalized);
    if (off && inlineValue === undefined) {
      options[off.name] = false;
      continue;
    }
    const option = bySwitch.get(normalized);
    if (option?.type === 'boolean') {
      const word = inlineValue ?? rest[0];
      if (inlineValue === undefined && (TRUE_WORDS.includes(word) || FALSE_WORDS.includes(word)))
        rest.shift();
      options[option.name] = !FALSE_WORDS.includes(word ?? '');
      continue;
    }
    if (!option) {
      // Unknown switches are kept as arguments (check_unknown_options! is not set).
      args.push(arg);
      continue;
    }
    let value: string | undefined = inlineValue;
    if (value === undefined) {
      const next = rest[0];
      if (next === undefined || looksLikeSwitch(next)) {
        // parse_peek: a string option without a value takes its default, else its own name.
        if (option.type === 'string') {
          options[option.name] = option.default ?? option.name;
          continue;
        }
        if (option.default !== undefined) {
          options[option.name] = option.default;
          continue;
        }
        throw new ThorError(`No value provided for option '${switchName}'`);
      }
      value = rest.shift() as string;
    }
    if (option.type === 'numeric') {
      // parse_numeric: NUMERIC = /[-+]?(\d*\.\d+|\d+)/, the whole value must match.
      if (!/^[-+]?(\d*\.\d+|\d+)$/.test(value)) {
        throw new ThorError(`Expected numeric value for '${switchName}'; got ${rubyInspect(value)}`);
      }
      options[option.name] = value.includes('.') ? parseFloat(value) : parseInt(value, 10);
    } else {
      options[option.name] = value;
    }
  }
  return { args, options };
}

/** Thor::Base.handle_argument_error: the command was given the wrong number of positional arguments. */
export function checkArity(spec: CommandSpec, args: string[]): void {
  if (spec.arity === 'variadic' || args.length === spec.arity) return;
  const called = args.length === 0 ? 'no arguments' : `arguments [${args.map(rubyInspect).join(', ')}]`;
  throw new ThorError(
    `ERROR: "aptible ${spec.name}" was called with ${called}\nUsage: ${rubyInspect(`aptible ${spec.usage}`)}`,
  );
}

/** What `aptible help` lists (a short version of Thor's help). */
export function helpText(): string {
  const lines = Object.values(COMMANDS).map((c) => `  aptible ${c.usage}`);
  return `Commands:\n${lines.join('\n')}\n`;
}
