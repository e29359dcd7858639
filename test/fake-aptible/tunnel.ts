// `aptible db:tunnel HANDLE [--environment ENV] [--port N] [--type TYPE]`
// (lib/aptible/cli/subcommands/db.rb:326-373, helpers/database.rb:312-351, helpers/tunnel.rb).
// The real CLI runs `ssh -L <port>:<socket>` to the database; the fake is a TCP proxy in its own process
// from 127.0.0.1:<port> (and [::1]:<port>, as ssh's -L binds localhost) to the backing cluster.
// Every line goes to stderr, in the real order; nothing to stdout. SIGINT → `Closing tunnel`, exit 0.
// SIGTERM is not handled: the process dies of it, as Ruby does (only Interrupt is rescued).
//
// Deviation: the real CLI prints the host `localhost.<stack internal domain>` (`localhost.aptible.in` on
// standard stacks, helpers/database.rb:312-319), which resolves to 127.0.0.1 through Aptible's public DNS;
// this machine has no DNS, so the fake prints `localhost` (or FAKE_APTIBLE_TUNNEL_HOST).
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { UserError } from './render';
import { type Ctx, numberOption, stringOption } from './context';
import { findCredential } from './commands';
import type { FaultAction } from './faults';
import { ensureDatabase } from './resolve';
import { readState } from './state';

export const TUNNEL_HOST_ENV = 'FAKE_APTIBLE_TUNNEL_HOST';

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', onError);
      resolve((server.address() as { port: number }).port);
    });
  });
}

/** Resolves with the exit code once the tunnel ends (SIGINT: 0; a crash fault: 1). */
export async function dbTunnel(ctx: Ctx): Promise<number> {
  const desiredPort = numberOption(ctx, 'port') ?? 0;
  const type = stringOption(ctx, 'type');
  const state = await readState(ctx.home);
  const db = ensureDatabase(state, ctx.args[0], stringOption(ctx, 'environment'));
  findCredential(db, type);

  ctx.log(`Creating postgresql tunnel to ${db.handle}...`);
  if (type === undefined) {
    ctx.log('Use --type TYPE to specify a tunnel type');
    ctx.log(`Valid types for ${db.handle}: postgresql`);
  }

  // Connects to the backing cluster (starting it if a reboot stopped it).
  const conn = await ctx.local().connect(db.handle, db.environment);
  const target = { host: conn.host, port: conn.port };

  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  let crashed = false;
  let done: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (done = resolve));

  const bytesLimit = ctx.faults.find(
    (f): f is Extract<FaultAction, { type: 'dieAfterBytes' }> => f.type === 'dieAfterBytes',
  )?.bytes;
  const msLimit = ctx.faults.find(
    (f): f is Extract<FaultAction, { type: 'dieAfterMs' }> => f.type === 'dieAfterMs',
  )?.ms;
  let forwarded = 0;

  const closeAll = () => {
    for (const server of servers) server.close();
    for (const socket of sockets) socket.destroy();
  };
  // helpers/tunnel.rb:83-98: ssh died with 255 (connection lost) → Thor::Error "Tunnel crashed (255)".
  const crash = () => {
    if (crashed) return;
    crashed = true;
    closeAll();
    ctx.log('Tunnel crashed (255)');
    done(1);
  };

  const onConnection = (client: Socket) => {
    if (crashed) return client.destroy();
    const upstream = createConnection(target);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      if (bytesLimit !== undefined && forwarded + chunk.length >= bytesLimit) {
        const allowed = Math.max(0, bytesLimit - forwarded);
        forwarded += allowed;
        if (allowed > 0) client.write(chunk.subarray(0, allowed), () => crash());
        else crash();
        // In case the write never completes (a client that stopped reading).
        setTimeout(crash, 200).unref();
        upstream.pause();
        return;
      }
      forwarded += chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  };

  const v4 = createServer({ pauseOnConnect: false }, onConnection);
  servers.push(v4);
  let port: number;
  try {
    port = await listen(v4, desiredPort, '127.0.0.1');
  } catch (err) {
    // ssh -o ExitOnForwardFailure=yes exits before its "ready" line (helpers/tunnel.rb:53-57).
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'Address already in use' : String((err as Error).message);
    throw new UserError(
      `Tunnel did not come up: bind [127.0.0.1]:${desiredPort}: ${why}\n` +
        `channel_setup_fwd_listener_tcpip: cannot listen to port: ${desiredPort}\n` +
        'Could not request local forwarding.\n',
    );
  }
  const v6 = createServer(onConnection);
  try {
    await listen(v6, port, '::1');
    servers.push(v6);
  } catch {
    // No IPv6 loopback here, or that port is taken on it: ssh also goes on with the address it could bind.
  }

  const host = process.env[TUNNEL_HOST_ENV] || 'localhost';
  const url = `postgresql://${conn.user}:${conn.password}@${host}:${port}/${conn.database}`;
  ctx.log(`Connect at ${url}`);
  ctx.log('Or, use the following arguments:');
  ctx.log(`* Host: ${host}`);
  ctx.log(`* Port: ${port}`);
  ctx.log(`* Username: ${conn.user}`);
  ctx.log(`* Password: ${conn.password}`);
  ctx.log(`* Database: ${conn.database}`);
  ctx.log('Connected. Ctrl-C to close connection.');

  process.once('SIGINT', () => {
    if (crashed) return;
    ctx.log('Closing tunnel');
    closeAll();
    done(0);
  });
  if (bytesLimit === 0) crash();
  if (msLimit !== undefined) setTimeout(crash, msLimit);
  // Keeps the process alive until one of the above ends the tunnel.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const code = await finished;
  clearInterval(keepAlive);
  return code;
}
