/** DNS_PROVIDER → its adapter. Each provider lives in its own folder and knows only its own API. */
import type { DnsConfig } from '../../config.js';
import type { DnsProvider } from './provider.js';
import { ChalltestsrvProvider } from './challtestsrv/challtestsrv.js';
import { ExecProvider } from './exec/exec.js';
import { Rfc2136Provider } from './rfc2136/rfc2136.js';
import { CloudflareProvider } from './cloudflare/cloudflare.js';

export function createDnsProvider(dns: DnsConfig, timeoutMs: number): DnsProvider {
  switch (dns.provider) {
    case 'challtestsrv':
      return new ChalltestsrvProvider(dns.challtestsrvUrl, timeoutMs);
    case 'exec':
      return new ExecProvider(dns.execPath!, dns.execTimeoutMs);
    case 'rfc2136':
      return new Rfc2136Provider({ ...dns.rfc2136!, timeoutMs });
    case 'cloudflare':
      return new CloudflareProvider({ ...dns.cloudflare!, timeoutMs });
  }
}
