/**
 * Wanted certificates from the hosts label on Rancher services (`specs/rancher-v1-api.md` §5). Labels
 * cannot be filtered on the server, so every service is listed and the label is read here, from the
 * primary launch config and from every sidekick's.
 */
import { mergeWanted, parseDomainList, type DomainsOptions, type ParsedDomains } from '../../domains.js';
import { isGone, type ServiceResource } from './resources.js';

export function wantedFromLabels(services: ServiceResource[], label: string, opts: DomainsOptions): ParsedDomains {
  const lists = [];
  const refused = [];
  for (const s of services) {
    if (s.system || isGone(s.state)) continue;
    for (const set of s.labelSets) {
      const value = set.labels[label];
      if (value === undefined || value.trim() === '') continue;
      const source = `label ${label} on ${set.source}`;
      const parsed = parseDomainList(value, source, opts);
      const challenge = set.labels[`${label}.challenge`]?.trim().toLowerCase();
      if (challenge !== undefined && challenge !== '' && challenge !== 'http-01' && challenge !== 'dns-01') {
        refused.push({ spec: value, source, error: `${label}.challenge=${JSON.stringify(challenge)} is not valid; accepted: http-01, dns-01` });
        continue;
      }
      if (challenge === 'dns-01' && !opts.dnsProvider) {
        refused.push({ spec: value, source, error: `${label}.challenge=dns-01 needs a DNS provider: set DNS_PROVIDER` });
        continue;
      }
      lists.push(challenge ? parsed.certs.map((c) => ({ ...c, challenge: challenge as 'http-01' | 'dns-01' })) : parsed.certs);
      refused.push(...parsed.refused);
    }
  }
  return { certs: mergeWanted(lists), refused };
}
