/** DNS_UPKEEP and its variables, read once (core configuration: it works through the DNS provider of DNS-01). */
import { isIP } from '../ip.js';
import { canonicalIp } from '../acme/dns01/provider.js';
import { ConfigError, FALSE, parseBool, parseDuration, parseUrl, str, type Env } from '../env.js';
import type { PublicIpSource } from './public-ip.js';

export interface DnsUpkeepConfig {
  source: PublicIpSource;
  /** DNS_UPKEEP_INTERVAL: how often the addresses are checked between passes. */
  intervalMs: number;
}

// ipify (https://www.ipify.org): plain text, one address; api.ipify.org answers over IPv4 only and
// api6.ipify.org over IPv6 only, so each asks in its own family. icanhazip.com (run by Cloudflare) answers the same way.
export const DEFAULT_PUBLIC_IP_URL = 'https://api.ipify.org';
export const DEFAULT_PUBLIC_IP_FALLBACK_URL = 'https://ipv4.icanhazip.com';
export const DEFAULT_PUBLIC_IPV6_URL = 'https://api6.ipify.org';
export const DEFAULT_PUBLIC_IPV6_FALLBACK_URL = 'https://ipv6.icanhazip.com';
/** Addresses change rarely; a few minutes keeps a home connection's new address from being unreachable for long, at one or two requests each time. */
const DEFAULT_INTERVAL_MS = 5 * 60_000;
const MIN_INTERVAL_MS = 10_000;

function parsePublicIp(env: Env): PublicIpSource['fixed'] {
  const v = str(env, 'PUBLIC_IP');
  if (v === undefined) return undefined;
  const fixed: { v4?: string; v6?: string } = {};
  for (const raw of v.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const family = isIP(raw);
    const key = family === 4 ? 'v4' : family === 6 ? 'v6' : undefined;
    if (!key || fixed[key]) throw new ConfigError('PUBLIC_IP', v, 'one IPv4 address, one IPv6 address, or one of each separated by a comma, e.g. 203.0.113.7,2001:db8::7');
    fixed[key] = canonicalIp(raw);
  }
  return fixed;
}

/** `dnsProvider`: DNS_PROVIDER is set (its support for address records is checked when it is built). */
export function dnsUpkeepFromEnv(env: Env, dnsProvider: boolean): DnsUpkeepConfig | undefined {
  if (!parseBool(env, 'DNS_UPKEEP', false)) return undefined;
  if (!dnsProvider) throw new ConfigError('DNS_PROVIDER', '', 'cloudflare or rfc2136: DNS_UPKEEP=true writes the A and AAAA records through the DNS provider');
  const fixed = parsePublicIp(env);
  // "off" leaves a service out; PUBLIC_IPV6_URL=off leaves AAAA records alone.
  const url = (name: string, dflt: string) => (FALSE.includes((str(env, name) ?? '').toLowerCase()) ? [] : [parseUrl(env, name, dflt)]);
  const v6Off = url('PUBLIC_IPV6_URL', DEFAULT_PUBLIC_IPV6_URL).length === 0;
  return {
    source: {
      ...(fixed ? { fixed } : {}),
      v4Urls: [...url('PUBLIC_IP_URL', DEFAULT_PUBLIC_IP_URL), ...url('PUBLIC_IP_FALLBACK_URL', DEFAULT_PUBLIC_IP_FALLBACK_URL)],
      v6Urls: v6Off ? [] : [...url('PUBLIC_IPV6_URL', DEFAULT_PUBLIC_IPV6_URL), ...url('PUBLIC_IPV6_FALLBACK_URL', DEFAULT_PUBLIC_IPV6_FALLBACK_URL)],
      timeoutMs: parseDuration(env, 'PUBLIC_IP_TIMEOUT', 10_000, 100),
    },
    intervalMs: parseDuration(env, 'DNS_UPKEEP_INTERVAL', DEFAULT_INTERVAL_MS, MIN_INTERVAL_MS),
  };
}
