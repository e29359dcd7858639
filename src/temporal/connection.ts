import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';

// The usual Temporal environment variables, so pgshift talks to a dev server, a self-hosted cluster
// or Temporal Cloud without flags: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
// TEMPORAL_TLS (true/false), TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH.

export interface TemporalSettings {
  address: string;
  namespace: string;
  apiKey?: string;
  tls?: TLSConfig | boolean;
  uiUrl: string;
}

export function temporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const address = env.TEMPORAL_ADDRESS || 'localhost:7233';
  const namespace = env.TEMPORAL_NAMESPACE || 'default';
  const apiKey = env.TEMPORAL_API_KEY || undefined;
  const certPath = env.TEMPORAL_TLS_CLIENT_CERT_PATH;
  const keyPath = env.TEMPORAL_TLS_CLIENT_KEY_PATH;
  let tls: TLSConfig | boolean | undefined;
  if (certPath && keyPath) {
    tls = { clientCertPair: { crt: readFileSync(certPath), key: readFileSync(keyPath) } };
  } else if (env.TEMPORAL_TLS) {
    tls = env.TEMPORAL_TLS === 'true' || env.TEMPORAL_TLS === '1';
  } else if (apiKey) {
    tls = true;
  }
  return { address, namespace, apiKey, tls, uiUrl: uiUrlFor(address, namespace, env) };
}

/** Where a person can read the history: PGSHIFT_UI_URL, Temporal Cloud's UI, or the dev server's UI port. */
function uiUrlFor(address: string, namespace: string, env: NodeJS.ProcessEnv): string {
  if (env.PGSHIFT_UI_URL) return env.PGSHIFT_UI_URL.replace(/\/$/, '');
  if (address.endsWith('.tmprl.cloud:7233')) return `https://cloud.temporal.io/namespaces/${namespace}`;
  const host = address.replace(/:\d+$/, '').replace('127.0.0.1', 'localhost');
  return `http://${host}:${uiPort(env)}/namespaces/${namespace}`;
}

/** The dev server's Web UI port: PGSHIFT_UI_PORT, or the dev server's default. */
export function uiPort(env: NodeJS.ProcessEnv = process.env): number {
  return Number(env.PGSHIFT_UI_PORT) || 8233;
}

export function workflowUiUrl(settings: TemporalSettings, workflowId: string): string {
  return `${settings.uiUrl}/workflows/${encodeURIComponent(workflowId)}`;
}
