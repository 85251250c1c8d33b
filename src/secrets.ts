/**
 * The variables that hold credentials: hooks and the exec provider's script never see them. The core's own,
 * and every DNS provider's, orchestrator's and store's as its registry entry declares them, so a new adapter's secrets
 * join without anyone keeping a second list.
 */
import { secretsOf } from './adapters.js';
import { DNS_PROVIDER_REGISTRY } from './acme/dns01/providers.js';
import { ORCHESTRATOR_REGISTRY } from './orchestrators/registry.js';
import { STORE_REGISTRY } from './stores/registry.js';

// REDIS_URL holds Redis's password; the NethServer export and the webroot read it with STORE=files too.
const CORE_SECRETS = ['ACME_EAB_HMAC_KEY', 'STATUS_TOKEN', 'WEBHOOK_URL', 'REDIS_URL'] as const;

/** Secrets named by number, one per CA of ACME_DIRECTORY_URLS (ACME_EAB_HMAC_KEY_2, …). */
const NUMBERED_SECRETS = /^ACME_EAB_HMAC_KEY_\d+$/;

let list: readonly string[] | undefined;

/**
 * A function rather than a constant: hooks.ts imports this module and the exec provider imports hooks.ts, so
 * the registries may still be loading when this module is; they are complete by the first call.
 */
export function secretVariables(): readonly string[] {
  list ??= Object.freeze([...CORE_SECRETS, ...secretsOf(DNS_PROVIDER_REGISTRY), ...secretsOf(ORCHESTRATOR_REGISTRY), ...secretsOf(STORE_REGISTRY)]);
  return list;
}

/** Whether a variable holds a credential: one of `secretVariables()`, or a numbered one (ACME_EAB_HMAC_KEY_<n>). */
export function isSecretVariable(name: string): boolean {
  return secretVariables().includes(name) || NUMBERED_SECRETS.test(name);
}
