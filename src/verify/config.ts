/** VERIFY's variables (issue 19 item 2), read once at start. */
import { ConfigError, parseBool, parseDuration, splitHostPort, str, type Env } from '../env.js';

export interface VerifyConfig {
  enabled: boolean;
  /** VERIFY_ADDRS: where the balancers listen, "host:port"; undefined: the orchestrator's own (Rancher publicEndpoints). */
  addrs: string[] | undefined;
  /** How long a pushed certificate may take to be served, before and again after one more reload. */
  timeoutMs: number;
}

// Issue 19: 2 minutes. A Rancher balancer polls metadata every 5 s and reloads HAProxy within seconds; a hook
// that reloads nginx takes less. Two minutes covers a busy host without holding a pass for long.
const VERIFY_TIMEOUT_MS = 120_000;
const HTTPS_PORT = 443;

export function parseVerify(env: Env): VerifyConfig {
  const raw = str(env, 'VERIFY_ADDRS');
  let addrs: string[] | undefined;
  if (raw !== undefined) {
    addrs = raw.split(',').map((a) => a.trim()).filter((a) => a !== '').map((a) => {
      const at = splitHostPort(a);
      if (!at || at.host === '') throw new ConfigError('VERIFY_ADDRS', raw, 'comma-separated host:port of the balancers that serve the certificates, e.g. 10.0.0.5:443,lb.internal:8443 (port 443 when left out)');
      return at.host.includes(':') ? `[${at.host}]:${at.port ?? HTTPS_PORT}` : `${at.host}:${at.port ?? HTTPS_PORT}`;
    });
  }
  return {
    enabled: parseBool(env, 'VERIFY', true),
    addrs: addrs && addrs.length > 0 ? addrs : undefined,
    timeoutMs: parseDuration(env, 'VERIFY_TIMEOUT', VERIFY_TIMEOUT_MS, 100),
  };
}
