/**
 * DNS_PROVIDER → its registry entry. Each provider lives in its own folder, reads its own variables and knows
 * only its own API; adding one is a folder and a line here (its secrets join the withheld list by themselves).
 */
import type { Env } from '../../env.js';
import type { DnsProvider, DnsProviderEntry } from './provider.js';
import { rfc2136 } from './rfc2136/entry.js';
import { cloudflare } from './cloudflare/entry.js';
import { exec } from './exec/entry.js';
import { challtestsrv } from './challtestsrv/entry.js';

/** In the order error messages list them. */
export const DNS_PROVIDER_REGISTRY = {
  rfc2136,
  cloudflare,
  exec,
  challtestsrv,
} as const;

export type DnsProviderName = keyof typeof DNS_PROVIDER_REGISTRY;
export const DNS_PROVIDERS = Object.keys(DNS_PROVIDER_REGISTRY) as DnsProviderName[];

type OptionsOf<K extends DnsProviderName> = ReturnType<(typeof DNS_PROVIDER_REGISTRY)[K]['fromEnv']>;

/** The chosen provider and its own options, as its entry read them. */
export type DnsProviderChoice = { [K in DnsProviderName]: { provider: K; options: OptionsOf<K> } }[DnsProviderName];

function entry<K extends DnsProviderName>(name: K): DnsProviderEntry<OptionsOf<K>> {
  // TypeScript cannot follow a name to its own entry's option type through the lookup; the keys guarantee it.
  return DNS_PROVIDER_REGISTRY[name] as unknown as DnsProviderEntry<OptionsOf<K>>;
}

export function dnsProviderFromEnv(name: DnsProviderName, env: Env): DnsProviderChoice {
  return { provider: name, options: entry(name).fromEnv(env) } as DnsProviderChoice;
}

export function createDnsProvider(dns: DnsProviderChoice, timeoutMs: number): DnsProvider {
  return entry(dns.provider).create(dns.options as OptionsOf<typeof dns.provider>, timeoutMs);
}
