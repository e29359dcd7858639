// The Aptible CLI's output shapes, as aptible/aptible-cli renders them (resource_formatter.rb, renderer/json.rb,
// subcommands/*.rb), and its failure texts (bin/aptible, helpers/*.rb): parsed, or refused with a clear error.
import {
  AptibleOutputError,
  parseApps,
  parseAptibleTime,
  parseBackups,
  parseConfig,
  parseConnectLine,
  parseDatabase,
  parseDatabaseUrl,
  parseDatabases,
  parseOrphanedBackups,
  parseVersions,
  trailingJson,
} from '../src/platform/aptible/parse';
import { classifyFailure, failureMessage } from '../src/platform/aptible/errors';

const env = { id: 7, handle: 'test-environment', created_at: '2023-01-01 00:00:00 UTC' };
const pretty = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

const database = {
  id: 42,
  handle: 'source-db',
  created_at: '2024-01-02 03:04:05 UTC',
  type: 'postgresql',
  version: '14',
  status: 'provisioned',
  connection_url: 'postgresql://aptible:s3cret-pw@db-xyz-1234.aptible.in:12345/db',
  credentials: [
    {
      type: 'postgresql',
      connection_url: 'postgresql://aptible:s3cret-pw@db-xyz-1234.aptible.in:12345/db',
      default: true,
    },
  ],
  environment: env,
  disk_type: 'gp3',
  disk_size: 100,
  container_size: 4096,
  container_profile: 'm',
};

describe('JSON documents', () => {
  it('takes the document at the end of stdout, after operation logs', () => {
    const stdout = 'INFO -- : Provisioning database\n{ not json\n' + pretty(database);
    expect(trailingJson(stdout, 'db:create')).toEqual(database);
    expect(trailingJson('[\n\n]\n', 'apps')).toEqual([]);
  });

  it('refuses empty and non-JSON output with a message naming the command and the CLI version', () => {
    expect(() => trailingJson('', 'db:list')).toThrow(AptibleOutputError);
    expect(() => trailingJson('=== test-environment\nsource-db\n', 'db:list')).toThrow(
      /unexpected output from `aptible db:list` .*aptible version/,
    );
    expect(() => trailingJson('{"truncated": ', 'db:list')).toThrow(/holds no JSON document/);
  });

  it('db:versions: the PostgreSQL versions only, as strings', () => {
    const stdout = pretty([
      { type: 'postgresql', version: '14', default: false, description: 'PostgreSQL 14', docker_repo: 'x' },
      { type: 'redis', version: '7.0', default: true, description: 'Redis 7', docker_repo: 'y' },
      { type: 'postgresql', version: 17, default: true, description: 'PostgreSQL 17', docker_repo: 'z' },
    ]);
    expect(parseVersions(stdout)).toEqual(['14', '17']);
    expect(() => parseVersions(pretty([{ version: '14' }]))).toThrow(/0\.type/);
  });

  it('apps: every service with its container count, unknown keys ignored', () => {
    const stdout = pretty([
      {
        id: 123,
        handle: 'my-app',
        created_at: '2024-01-02 03:04:05 UTC',
        status: 'provisioned',
        git_remote: 'git@beta.aptible.com:test-environment/my-app.git',
        docker_image: 'new-in-0.27',
        services: [
          {
            id: 55,
            service: 'cmd',
            created_at: '2024-01-02 03:04:05 UTC',
            command: 'CMD',
            container_count: 2,
            container_size: 1024,
            container_profile: 'm',
          },
          { id: 56, service: 'worker', command: 'x', container_count: null, container_size: null },
        ],
        environment: env,
      },
    ]);
    expect(parseApps(stdout)).toEqual([
      {
        app: 'my-app',
        environment: 'test-environment',
        service: 'cmd',
        containerCount: 2,
        containerSizeMb: 1024,
      },
      { app: 'my-app', environment: 'test-environment', service: 'worker', containerCount: 0 },
    ]);
    expect(() =>
      parseApps(pretty([{ handle: 'my-app', services: [{ service: 'cmd' }], environment: env }])),
    ).toThrow(/services\.0\.container_count/);
  });

  it('db:list: databases without their URLs; RDS entries skipped', () => {
    const rds = { id: 9, handle: 'aws:rds::legacy', created_at: '2024-01-02 03:04:05 UTC', environment: env };
    const parsed = parseDatabases(pretty([database, rds]));
    expect(parsed).toEqual([
      {
        id: '42',
        handle: 'source-db',
        environment: 'test-environment',
        type: 'postgresql',
        version: '14',
        status: 'provisioned',
        diskSizeGb: 100,
        containerSizeMb: 4096,
        createdAt: '2024-01-02T03:04:05.000Z',
      },
    ]);
    expect(JSON.stringify(parsed)).not.toContain('s3cret-pw');
  });

  it('db:create / backup:restore: the database made', () => {
    expect(parseDatabase(pretty(database), 'db:create')).toMatchObject({
      handle: 'source-db',
      version: '14',
    });
    expect(() => parseDatabase(pretty({ handle: 'x' }), 'backup:restore')).toThrow(
      /`aptible backup:restore`.*id/,
    );
  });

  it('db:url and config: the secrets they carry', () => {
    expect(parseDatabaseUrl(pretty({ connection_url: 'postgresql://aptible:pw@h:1/db' }))).toBe(
      'postgresql://aptible:pw@h:1/db',
    );
    expect(() => parseDatabaseUrl(pretty({}))).toThrow(/connection_url/);
    expect(
      parseConfig(
        pretty([
          { key: 'DB_URL', value: 'postgresql://x', shell_export: 'DB_URL=postgresql://x' },
          { key: 'EMPTY', value: null, shell_export: 'EMPTY=' },
        ]),
      ),
    ).toEqual({ DB_URL: 'postgresql://x', EMPTY: '' });
  });

  it('malformed output never echoes a password', () => {
    const leaky = pretty([{ key: 5, value: 'postgresql://aptible:hunter22@h:1/db' }]);
    try {
      parseConfig(leaky);
      throw new Error('parsed');
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter22');
    }
  });

  it('backup:list and backup:orphaned: ids as strings, times as ISO', () => {
    const backup = {
      id: 1234,
      description: '1234: 2016-06-14 13:24:11 UTC, us-east-1, automatic',
      created_at: '2016-06-14 13:24:11 UTC',
      region: 'us-east-1',
      size: 10,
      manual: false,
    };
    const copy = { ...backup, id: 1235, copied_from: { id: 1234, description: backup.description } };
    expect(parseBackups(pretty([copy, backup]))).toEqual([
      { id: '1235', createdAt: '2016-06-14T13:24:11.000Z', sizeGb: 10, copy: true },
      { id: '1234', createdAt: '2016-06-14T13:24:11.000Z', sizeGb: 10, copy: false },
    ]);
    const orphan = {
      ...backup,
      database: {
        id: 42,
        handle: 'dump-test',
        type: 'postgresql',
        deleted_at: '2016-07-01T00:00:00.000Z',
        environment: env,
      },
    };
    expect(parseOrphanedBackups(pretty([orphan]))).toEqual([
      {
        id: '1234',
        createdAt: '2016-06-14T13:24:11.000Z',
        sizeGb: 10,
        copy: false,
        databaseHandle: 'dump-test',
        environment: 'test-environment',
      },
    ]);
    expect(() => parseOrphanedBackups(pretty([backup]))).toThrow(/database/);
  });

  it("times: Ruby's Time#to_s, offsets and ISO", () => {
    expect(parseAptibleTime('2016-06-14 13:24:11 UTC', 'x')).toBe('2016-06-14T13:24:11.000Z');
    expect(parseAptibleTime('2016-06-14 15:24:11 +0200', 'x')).toBe('2016-06-14T13:24:11.000Z');
    expect(parseAptibleTime('2016-06-14T13:24:11Z', 'x')).toBe('2016-06-14T13:24:11.000Z');
    expect(() => parseAptibleTime('yesterday', 'backup:list')).toThrow(/"yesterday" is not a time/);
  });
});

describe('db:tunnel lines', () => {
  it('reads the "Connect at" URL, percent-decoding the password', () => {
    expect(
      parseConnectLine('Connect at postgresql://aptible:pa%24word@localhost.aptible.in:54321/db'),
    ).toEqual({
      host: 'localhost.aptible.in',
      port: 54321,
      user: 'aptible',
      password: 'pa$word',
      database: 'db',
      url: 'postgresql://aptible:pa%24word@localhost.aptible.in:54321/db',
    });
    expect(parseConnectLine('* Host: localhost.aptible.in')).toBeUndefined();
    expect(parseConnectLine('Creating postgresql tunnel to source-db...')).toBeUndefined();
  });

  it('refuses a "Connect at" line without a usable URL, without echoing it', () => {
    expect(() => parseConnectLine('Connect at nonsense')).toThrow(AptibleOutputError);
    expect(() => parseConnectLine('Connect at mysql://u:secretpw@h/db')).toThrow(/not a postgresql/);
    try {
      parseConnectLine('Connect at postgresql://aptible:secretpw@host/db');
    } catch (err) {
      expect((err as Error).message).not.toContain('secretpw');
    }
  });
});

describe('failures', () => {
  const fail = (stderr: string, command = 'db:create') => classifyFailure({ command, exitCode: 1, stderr });

  it('not logged in, or an expired token: its own error, saying how to log in', () => {
    for (const text of [
      'Could not read token: please run aptible login or set APTIBLE_ACCESS_TOKEN',
      'API authentication error: please run aptible login',
    ]) {
      const err = fail(text);
      expect(err.name).toBe('NotLoggedInError');
      expect(err.message).toMatch(/aptible login.*APTIBLE_ACCESS_TOKEN/);
    }
  });

  it('unknown handles are NotFoundError; an invalid version and ambiguity are PlatformError', () => {
    expect(fail('Could not find database source-db').name).toBe('NotFoundError');
    expect(fail('Could not find environment nowhere').name).toBe('NotFoundError');
    expect(fail('Specified account does not exist', 'apps').name).toBe('NotFoundError');
    expect(fail('Could not find app my-app in environment e (options provided via CLI arguments)').name).toBe(
      'NotFoundError',
    );
    expect(fail('Service with type web does not exist for app my-app. Valid types: cmd.').name).toBe(
      'NotFoundError',
    );
    const version = fail('No Database Image of type postgresql with version 99, valid versions: 14 15 16 17');
    expect(version.name).toBe('PlatformError');
    expect(version.message).toMatch(/target\.version/);
    expect(fail('Multiple databases exist, please specify with --environment').name).toBe('PlatformError');
    expect(fail('An error occurred: Handle has already been taken').name).toBe('TargetExistsError');
    expect(fail('An error occurred: Disk size must be at least 10').name).toBe('PlatformError');
  });

  it('tunnels, operations and the network are retryable', () => {
    for (const text of [
      'Tunnel did not come up: ssh: connect to host bastion port 43: Connection refused',
      'Tunnel timed out',
      'Tunnel crashed (255)',
      'Operation #4242 failed.',
      "/usr/lib/ruby/gems/hyper_resource.rb:12:in `request': 502 Bad Gateway (HyperResource::ServerError)\n\tfrom /usr/lib/ruby/x.rb:1:in `y'",
      'Failed to open TCP connection to api.aptible.com:443 (getaddrinfo: Temporary failure in name resolution) (SocketError)',
    ]) {
      expect(fail(text, 'db:tunnel').name).toBe('TransientPlatformError');
    }
    expect(fail('Operation #4242 failed.', 'apps:scale').message).toMatch(/aptible operation:logs 4242/);
    expect(fail('something nobody expected').message).toMatch(
      /`aptible db:create` failed \(exit 1\): something/,
    );
  });

  it('the error is the last meaningful line, not a progress line before it', () => {
    const err = fail('Deprovisioning orders-error-log...\nOperation #12 failed.', 'db:deprovision');
    expect(err.message).toMatch(/^Operation #12 failed\./);
    expect(err.name).toBe('TransientPlatformError');
  });

  it('a database still provisioning is retried; missing ssh tools and credentials say what to do', () => {
    expect(fail('Database dump-test is not provisioned', 'db:tunnel').name).toBe('TransientPlatformError');
    const ssh = fail("/var/lib/gems/x.rb:3:in `y': ssh-keygen must be installed (RuntimeError)", 'db:tunnel');
    expect(ssh.name).toBe('PlatformError');
    expect(ssh.message).toMatch(/openssh-client/);
    expect(fail('No default credential for database, valid credential types: mysql', 'db:tunnel').name).toBe(
      'PlatformError',
    );
    expect(fail('An error occurred: Too Many Requests').name).toBe('TransientPlatformError');
    expect(fail('Could not find database db-503-archive').name).toBe('NotFoundError');
  });

  it('a missing CLI says how to install it; a timeout is retried', () => {
    const missing = classifyFailure({
      command: 'db:list',
      exitCode: undefined,
      stderr: '',
      spawnError: 'spawn aptible ENOENT',
    });
    expect(missing.name).toBe('PlatformError');
    expect(missing.message).toMatch(/install it .*APTIBLE_CLI_PATH/);
    expect(
      classifyFailure({ command: 'db:create', exitCode: undefined, stderr: '', timedOut: true }).name,
    ).toBe('TransientPlatformError');
  });

  it('messages are scrubbed of URLs with passwords and of given secrets', () => {
    const text = 'An error occurred: bad value postgresql://aptible:topsecret1@h:5432/db and token abcdef123';
    expect(failureMessage(text, ['abcdef123'])).not.toMatch(/topsecret1|abcdef123/);
  });
});
