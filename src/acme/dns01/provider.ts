import type { AdapterEntry } from '../../adapters.js';

/**
 * A DNS-01 provider writes and removes one TXT record; everything else (where the record goes, waiting
 * until it is visible) is the solver's. One folder per provider, as lego keeps them.
 */
export interface DnsProvider {
  readonly name: string;
  /** Adds `value` to the TXT records of `fqdn` (no trailing dot), leaving other values there. */
  present(fqdn: string, value: string): Promise<void>;
  /** Removes that one value again. */
  cleanup(fqdn: string, value: string): Promise<void>;
}

/** One provider's line in the registry (providers.ts); `create` is given ACME_TIMEOUT, the bound on each API call. */
export type DnsProviderEntry<Options> = AdapterEntry<Options, DnsProvider, number>;

export type AddressType = 'A' | 'AAAA';

/** What one name holds now, as far as address upkeep goes. */
export interface NameAddresses {
  A: string[];
  AAAA: string[];
  /** The name is a CNAME: its addresses are its target's, and upkeep leaves it alone. */
  alias: boolean;
}

/**
 * DNS_UPKEEP (src/dns-upkeep/): the A and AAAA records of the names certwrangler manages. A provider that can
 * keep them implements these two beside `present`/`cleanup`; nothing else at a name is ever written.
 */
export interface AddressRecords {
  /** Each name's A and AAAA values now (a name with none has empty lists). */
  readAddresses(fqdns: string[]): Promise<Map<string, NameAddresses>>;
  /** Makes the name's `type` records exactly `values`, changing only those records. */
  writeAddresses(fqdn: string, type: AddressType, values: string[]): Promise<void>;
}

export function keepsAddresses(p: DnsProvider): p is DnsProvider & AddressRecords {
  return typeof (p as Partial<AddressRecords>).readAddresses === 'function' && typeof (p as Partial<AddressRecords>).writeAddresses === 'function';
}

/** One spelling per address, so that values compare: IPv6 compressed and lower-case ("2001:DB8:0::1" → "2001:db8::1"). */
export function canonicalIp(ip: string): string {
  return ip.includes(':') ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}
