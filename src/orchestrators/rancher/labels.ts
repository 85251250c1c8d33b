/**
 * Wanted certificates from the hosts label on Rancher services (`specs/rancher-v1-api.md` §5). Labels
 * cannot be filtered on the server, so every service is listed and the label is read here, from the
 * primary launch config and from every sidekick's. Each certificate carries its service: a label is
 * untrusted, and what it may ask for and own is decided per service (`label-policy.ts`, `ownership.ts`).
 */
import { mergeWanted, parseDomainList, type DomainsOptions, type ParsedDomains, type RefusedCert, type WantedCert } from '../../domains.js';
import { isGone, type ServiceResource } from './resources.js';
import { PROFILE_NAME_RE } from '../../acme/directory.js';

/** `stackNames`: stack id → name, when the stacks were listed (LABEL_STACKS names them). */
export function wantedFromLabels(services: ServiceResource[], label: string, opts: DomainsOptions, stackNames?: Map<string, string>): ParsedDomains {
  const certs: WantedCert[] = [];
  const refused: RefusedCert[] = [];
  for (const s of services) {
    if (s.system || isGone(s.state)) continue;
    const service = { id: s.id, name: s.name, ...(s.stackId ? { stackId: s.stackId } : {}), ...(s.stackId && stackNames?.has(s.stackId) ? { stack: stackNames.get(s.stackId)! } : {}) };
    const who = `${s.name} (${s.id})`;
    const lists: WantedCert[][] = [];
    for (const set of s.labelSets) {
      const value = set.labels[label];
      if (value === undefined || value.trim() === '') continue;
      const source = `label ${label} on ${set.source}`;
      const parsed = parseDomainList(value, source, opts);
      const challenge = set.labels[`${label}.challenge`]?.trim().toLowerCase();
      if (challenge !== undefined && challenge !== '' && challenge !== 'http-01' && challenge !== 'dns-01') {
        refused.push({ spec: value, source, service: who, error: `${label}.challenge=${JSON.stringify(challenge)} is not valid; accepted: http-01, dns-01` });
        continue;
      }
      if (challenge === 'dns-01' && !opts.dnsProvider) {
        refused.push({ spec: value, source, service: who, error: `${label}.challenge=dns-01 needs a DNS provider: set DNS_PROVIDER` });
        continue;
      }
      const profile = set.labels[`${label}.profile`]?.trim();
      if (profile !== undefined && profile !== '' && !PROFILE_NAME_RE.test(profile)) {
        refused.push({ spec: value, source, service: who, error: `${label}.profile=${JSON.stringify(profile.slice(0, 80))} is not a profile name (letters, digits, ".", "_", "-"; e.g. tlsserver)` });
        continue;
      }
      lists.push(parsed.certs.map((c) => ({ ...c, service, ...(challenge ? { challenge: challenge as 'http-01' | 'dns-01' } : {}), ...(profile ? { profile } : {}) })));
      refused.push(...parsed.refused.map((r) => ({ ...r, service: who })));
    }
    // One service's own sets (primary and sidekicks) may share a certificate; other services' never merge.
    certs.push(...mergeWanted(lists));
  }
  return { certs, refused };
}
