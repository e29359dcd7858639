// `aptible db:replicate HANDLE REPLICA_HANDLE --logical --version V` (lib/aptible/cli/subcommands/db.rb:222-281,
// helpers/database.rb:160-186): the checks the CLI makes, the replica's record in the source's environment,
// the source's replicate_logical operation and the replica's provision, each attached to as the CLI does,
// then render_database of the replica. The provision is logical.ts (native replication standing in for
// pglogical). Physical replicas (without --logical) are not modelled.
import { ThorError } from './argv';
import {
  availableVersions,
  checkImage,
  checkNewHandle,
  loadLogical,
  renderDatabase,
  setDatabaseStatus,
} from './commands';
import { type Ctx, newOperation, numberOption, runOperation, stringOption } from './context';
import type { Doc } from './render';
import { databaseKey, ensureDatabase } from './resolve';
import { type DatabaseRecord, nextId, readState, updateState } from './state';

export async function dbReplicate(ctx: Ctx): Promise<Doc> {
  const [sourceHandle, destHandle] = ctx.args;
  const source = ensureDatabase(await readState(ctx.home), sourceHandle, stringOption(ctx, 'environment'));
  const logical = ctx.options.logical === true;
  let version: string | undefined;
  if (logical) {
    if (source.type !== 'postgresql') throw new ThorError('Logical replication only works for PostgreSQL');
    version = stringOption(ctx, 'version');
    if (version === undefined) throw new ThorError('--version is required for logical replication');
    checkImage(await availableVersions(ctx), source.type, version);
  }
  ctx.log(`Replicating ${sourceHandle}...`);
  if (ctx.options.size !== undefined) {
    throw new ThorError(
      'You have used the "--size" option to specify a disk size.This abiguous option has been removed.' +
        'Please use the "--disk-size" option, instead.',
    );
  }
  if (!logical) throw new Error('the fake aptible does not model physical replicas: use --logical');

  // The API's defaults for what the CLI does not send (assumed): the source's sizes.
  const { replica, replicateOp } = await updateState(ctx.home, (state) => {
    checkNewHandle(state, source.environment, destHandle);
    const created: DatabaseRecord = {
      id: nextId(state),
      handle: destHandle,
      environment: source.environment,
      type: 'postgresql',
      version: version as string,
      status: 'provisioning',
      diskSizeGb: numberOption(ctx, 'disk_size') ?? source.diskSizeGb,
      containerSizeMb: numberOption(ctx, 'container_size') ?? source.containerSizeMb,
      containerProfile: stringOption(ctx, 'container_profile') ?? null,
      createdAt: new Date().toISOString(),
      replicaOf: source.id,
    };
    state.databases[databaseKey(created)] = created;
    return {
      replica: created,
      replicateOp: newOperation(state, 'replicate_logical', `database ${source.handle}`, ctx.userEmail),
    };
  });
  // The source's operation creates the replica and starts its provision; the CLI then attaches to the
  // replica's last operation, which does the work.
  await runOperation(ctx, replicateOp, 'Database replicate_logical', async () => undefined);
  const provision = await updateState(ctx.home, (state) =>
    newOperation(state, 'provision', `database ${replica.handle}`, ctx.userEmail),
  );
  await runOperation(ctx, provision, 'Database provision', async () => {
    try {
      await loadLogical().provisionLogicalReplica({
        local: ctx.local(),
        source,
        replica,
        log: (line) => ctx.out(`INFO -- : ${line}\n`),
      });
    } catch (err) {
      await setDatabaseStatus(ctx, replica, 'pending');
      throw err;
    }
  });
  await setDatabaseStatus(ctx, replica, 'provisioned');
  return renderDatabase(ctx, replica);
}
