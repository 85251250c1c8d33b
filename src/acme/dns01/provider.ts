import type { Env } from '../../env.js';

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

/**
 * One provider's line in the registry (providers.ts): its own variables, read and checked where the provider
 * lives (a bad one is a ConfigError naming it), the adapter built from them, and which of them are
 * credentials, so hooks never see them.
 */
export interface DnsProviderEntry<Options> {
  fromEnv(env: Env): Options;
  /** `timeoutMs`: ACME_TIMEOUT, the bound on each call to the provider's API. */
  create(options: Options, timeoutMs: number): DnsProvider;
  readonly secrets: readonly string[];
}
