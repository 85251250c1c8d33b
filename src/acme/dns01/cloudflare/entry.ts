/** The cloudflare provider's registry entry: CLOUDFLARE_* read and checked, the provider built from them. */
import { ConfigError, parseInt, parseUrl, str, type Env } from '../../../env.js';
import type { DnsProviderEntry } from '../provider.js';
import { CloudflareProvider, type CloudflareOptions } from './cloudflare.js';

/** CLOUDFLARE_*: API v4 with an API token. */
function fromEnv(env: Env): Omit<CloudflareOptions, 'timeoutMs' | 'retryBaseMs'> {
  const token = str(env, 'CLOUDFLARE_DNS_API_TOKEN');
  if (token === undefined) throw new ConfigError('CLOUDFLARE_DNS_API_TOKEN', '', 'an API token with Zone:Read and DNS:Edit on the zones (DNS_PROVIDER=cloudflare)', true);
  const ttl = parseInt(env, 'CLOUDFLARE_TTL', 1, 86_400) ?? 120;
  if (ttl > 1 && ttl < 30) throw new ConfigError('CLOUDFLARE_TTL', String(ttl), '1 (automatic) or 60 to 86400 seconds (30 and up on Enterprise zones)');
  return { apiUrl: parseUrl(env, 'CLOUDFLARE_API_URL', 'https://api.cloudflare.com/client/v4').replace(/\/+$/, ''), token, ttl };
}

export const cloudflare: DnsProviderEntry<Omit<CloudflareOptions, 'timeoutMs' | 'retryBaseMs'>> = {
  fromEnv,
  create: (options, timeoutMs) => new CloudflareProvider({ ...options, timeoutMs }),
  secrets: ['CLOUDFLARE_DNS_API_TOKEN'],
};
