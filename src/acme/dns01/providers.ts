/**
 * DNS_PROVIDER → its registry entry (src/adapters.ts). Each provider lives in its own folder, reads its own
 * variables and knows only its own API; adding one is a folder and a line here.
 */
import { createOf, fromEnvOf, namesOf, type OptionsOf } from '../../adapters.js';
import type { Env } from '../../env.js';
import type { DnsProvider } from './provider.js';
import { rfc2136 } from './rfc2136/entry.js';
import { cloudflare } from './cloudflare/entry.js';
import { exec } from './exec/entry.js';
import { challtestsrv } from './challtestsrv/entry.js';

export const DNS_PROVIDER_REGISTRY = { rfc2136, cloudflare, exec, challtestsrv };

export type DnsProviderName = keyof typeof DNS_PROVIDER_REGISTRY;
export const DNS_PROVIDERS = namesOf(DNS_PROVIDER_REGISTRY);

/** The chosen provider with its own options, one union member per provider, so the name narrows the options. */
export type DnsProviderChoice = { [K in DnsProviderName]: { provider: K; options: OptionsOf<typeof DNS_PROVIDER_REGISTRY, K> } }[DnsProviderName];

export function dnsProviderFromEnv(name: DnsProviderName, env: Env): DnsProviderChoice {
  return { provider: name, options: fromEnvOf(DNS_PROVIDER_REGISTRY, name, env) } as DnsProviderChoice;
}

export function createDnsProvider(dns: DnsProviderChoice, timeoutMs: number): DnsProvider {
  return createOf(DNS_PROVIDER_REGISTRY, dns.provider, dns.options, timeoutMs);
}
