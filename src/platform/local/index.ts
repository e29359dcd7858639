export {
  LocalPlatform,
  createLocalPlatform,
  type CreateAppOptions,
  type LocalAppInfo,
  type LocalDatabaseInfo,
  type LocalPlatformOptions,
  type LocalServiceInfo,
} from './local-platform';
export { resolvePgshiftHome } from './paths';
export { ADMIN_ROLE, DEFAULT_DATABASE } from './cluster';
