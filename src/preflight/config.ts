/**
 * PREFLIGHT's variables (DESIGN §2, issue 19 item 1), read once at start with the shared parsers.
 * On by default against a production CA; off against staging and a CA on this machine (Pebble), where a
 * probe through port 80 of the real name would fail for reasons that have nothing to do with the route.
 */
import { isIP } from '../ip.js';
import { ConfigError, parseBool, parseDuration, parseInt, splitHostPort, str, type Env } from '../env.js';

export interface PreflightConfig {
  enabled: boolean;
  /** The port the CA validates HTTP-01 on: 80 for every public CA; a test CA such as Pebble may use another. */
  httpPort: number;
  /** DNS_RESOLVERS ("ip" or "ip:port"); undefined: the system resolver. */
  resolvers: string[] | undefined;
  /** Each probe request's timeout (PREFLIGHT_TIMEOUT). */
  timeoutMs: number;
}

// RFC 8555 §8.3: the CA fetches the challenge over port 80.
const HTTP01_PORT = 80;
// Let's Encrypt's validation authority gives a fetch about 10 s; a probe that takes longer would fail there too.
const PROBE_TIMEOUT_MS = 10_000;

/** A CA on this machine or a private address: a test CA (Pebble), which validates wherever its config says. */
function isLocalCa(directoryUrl: string): boolean {
  const host = new URL(directoryUrl).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\./.test(host) || host === 'pebble';
}

/** DNS_RESOLVERS, as the DNS-01 check also reads it; the same rule for what is valid. */
export function parseResolvers(env: Env): string[] | undefined {
  const resolvers = str(env, 'DNS_RESOLVERS')
    ?.split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  for (const r of resolvers ?? []) {
    if (!isIP(splitHostPort(r)?.host ?? '')) throw new ConfigError('DNS_RESOLVERS', env.DNS_RESOLVERS, 'comma-separated IP addresses with an optional port, e.g. 1.1.1.1,8.8.8.8:53,[2606:4700::1111]:53');
  }
  return resolvers && resolvers.length > 0 ? resolvers : undefined;
}

export function parsePreflight(env: Env, ca: { staging: boolean; productionDirectoryUrl: string }): PreflightConfig {
  const production = !ca.staging && !isLocalCa(ca.productionDirectoryUrl);
  return {
    enabled: parseBool(env, 'PREFLIGHT', production),
    httpPort: parseInt(env, 'PREFLIGHT_HTTP_PORT', 1, 65535) ?? HTTP01_PORT,
    resolvers: parseResolvers(env),
    timeoutMs: parseDuration(env, 'PREFLIGHT_TIMEOUT', PROBE_TIMEOUT_MS, 100),
  };
}
