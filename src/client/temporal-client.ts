import { Client, Connection } from '@temporalio/client';
import { type TemporalSettings, temporalSettings } from '../temporal/connection';

export async function connectClient(settings: TemporalSettings = temporalSettings()): Promise<Client> {
  const connection = await Connection.connect({
    address: settings.address,
    tls: settings.tls,
    apiKey: settings.apiKey,
    connectTimeout: '5s',
  }).catch((err: Error) => {
    throw new Error(
      `cannot reach Temporal at ${settings.address} (${err.message}); start one with \`pgshift dev\` or set TEMPORAL_ADDRESS`,
    );
  });
  return new Client({ connection, namespace: settings.namespace });
}
