export {
  LocalPlatform,
  MAX_CONTAINERS_PER_SERVICE,
  createLocalPlatform,
  type CreateAppOptions,
  type LocalAppInfo,
  type LocalBackupInfo,
  type LocalDatabaseInfo,
  type LocalPlatformOptions,
  type LocalRestoreBackupSpec,
  type LocalServiceInfo,
} from './local-platform';
export { resolvePgshiftHome } from './paths';
export { ADMIN_ROLE, DEFAULT_DATABASE } from './cluster';
