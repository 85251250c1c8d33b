/**
 * PREFLIGHT for DNS-01 (issue 19 item 1): at start, write and delete one test TXT record where the first
 * DNS-01 certificate's challenge will go (the provider finds the zone as it would for a real challenge).
 * A wrong API token or TSIG key stops the manager at start, naming the variables to fix, instead of
 * failing the first renewal weeks later.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config.js';
import { challengeFor } from '../acme/challenge.js';
import { createDnsProvider } from '../acme/dns01/providers.js';
import { challengeTarget } from '../acme/dns01/propagation.js';
import type { Logger } from '../log.js';

/** The variables that decide whether a provider's writes are accepted: what to check when they are not. */
const CREDENTIALS: Record<string, string> = {
  rfc2136: 'RFC2136_NAMESERVER, RFC2136_TSIG_KEY, RFC2136_TSIG_SECRET and RFC2136_TSIG_ALGORITHM',
  cloudflare: 'CLOUDFLARE_DNS_API_TOKEN (it needs Zone:DNS:Edit on the zone)',
  exec: 'EXEC_PATH (the script must exit 0 for "present" and "cleanup")',
  challtestsrv: 'CHALLTESTSRV_URL',
};

export class DnsCredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DnsCredentialsError';
  }
}

/** The name the check writes under: the first certificate of DOMAINS that validates over DNS-01. */
function firstDnsName(config: Config): string | undefined {
  const cert = config.domains.certs.find((c) => challengeFor(c.names, c.challenge, config.challenge) === 'dns-01');
  return cert?.names[0]?.replace(/^\*\./, '');
}

/** Throws DnsCredentialsError when the provider cannot write or delete a TXT record; does nothing without DNS-01. */
export async function checkDnsCredentials(config: Config, log: Logger): Promise<void> {
  if (!config.preflight.enabled || !config.dns) return;
  const name = firstDnsName(config);
  if (!name) return;
  const provider = createDnsProvider(config.dns, config.acmeTimeoutMs);
  const fqdn = await challengeTarget(`_acme-challenge.${name}`, config.dns.resolvers).catch(() => `_acme-challenge.${name}`);
  const value = `certwrangler-preflight-${randomBytes(12).toString('base64url')}`;
  const fix = `check ${CREDENTIALS[config.dns.provider] ?? 'the DNS provider\'s variables'} (DNS_PROVIDER=${config.dns.provider}), or set PREFLIGHT=false to skip this check`;
  try {
    await provider.present(fqdn, value);
  } catch (e) {
    throw new DnsCredentialsError(`DNS-01 preflight: ${config.dns.provider} could not create a test TXT record at ${fqdn}: ${(e as Error).message}; ${fix}`);
  }
  try {
    await provider.cleanup(fqdn, value);
  } catch (e) {
    throw new DnsCredentialsError(`DNS-01 preflight: ${config.dns.provider} created a test TXT record at ${fqdn} but could not delete it: ${(e as Error).message}; ${fix}, and remove the value ${value} by hand`);
  }
  log.info({ provider: config.dns.provider, record: fqdn }, `DNS-01 preflight: ${config.dns.provider} created and deleted a test TXT record at ${fqdn}`);
}
