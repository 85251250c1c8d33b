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
