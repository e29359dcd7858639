// The PostgreSQL-layer tests' servers: a 14 source and a 17 target of the local platform, created side by side.
import { createLocalPlatform, type LocalPlatform } from '../../src/platform/local';
import type { DatabaseConnection } from '../../src/platform/platform';

export interface ClusterPair {
  platform: LocalPlatform;
  source: DatabaseConnection;
  target: DatabaseConnection;
}

/** The caller ends it with `platform.destroy()` (clusters may live outside `home`). */
export async function startClusterPair(
  home: string,
  {
    environment,
    createdBy,
    handles = { source: 'source14', target: 'target17' },
  }: {
    environment: string;
    createdBy: string;
    handles?: { source: string; target: string };
  },
): Promise<ClusterPair> {
  const platform = createLocalPlatform({ home });
  const spec = { environment, diskSizeGb: 1, containerSizeMb: 512, createdBy };
  await Promise.all([
    platform.createDatabase({ ...spec, handle: handles.source, version: '14' }),
    platform.createDatabase({ ...spec, handle: handles.target, version: '17' }),
  ]);
  const [source, target] = await Promise.all([
    platform.connect(handles.source, environment),
    platform.connect(handles.target, environment),
  ]);
  return { platform, source, target };
}
