// Jest's Node environment, plus the other half of test/helpers/sdk-log.ts: each test starts with an empty
// SDK log, and a test that fails gets the SDK's log of its run printed under its name.
import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import type { Circus } from '@jest/types';
import { TestEnvironment } from 'jest-environment-node';
import { formatSdkLogEntry, SDK_LOG_KEY, type SdkLogBuffer } from './sdk-log';

function fullName(test: Circus.TestEntry): string {
  const names = [test.name];
  for (let block = test.parent; block && block.parent; block = block.parent) names.unshift(block.name);
  return names.join(' › ');
}

export default class SdkLogEnvironment extends TestEnvironment {
  private readonly buffer: SdkLogBuffer = { entries: [], dropped: 0 };

  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    this.global[SDK_LOG_KEY] = this.buffer;
  }

  private print(title: string): void {
    const { entries, dropped } = this.buffer;
    if (entries.length === 0) return;
    const skipped = dropped ? ` (the first ${dropped} entries dropped)` : '';
    process.stderr.write(
      `\n── Temporal SDK log of ${title}${skipped} ──\n${entries.map(formatSdkLogEntry).join('')}── end ──\n`,
    );
  }

  handleTestEvent(event: Circus.Event): void {
    if (event.name === 'test_start') {
      this.buffer.entries.length = 0;
      this.buffer.dropped = 0;
    } else if (event.name === 'test_done' && event.test.errors.length > 0) {
      this.print(`the failed test "${fullName(event.test)}"`);
    } else if (event.name === 'hook_failure') {
      this.print(`the failed ${event.hook.type} hook`);
    }
  }
}
