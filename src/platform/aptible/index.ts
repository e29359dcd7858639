export { AptiblePlatform, createAptiblePlatform, type AptiblePlatformOptions } from './aptible-platform';
export { AptibleCli } from './cli';
