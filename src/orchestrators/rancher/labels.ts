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
      const parsed = parseDomainList(value, `label ${label} on ${set.source}`, opts);
      lists.push(parsed.certs);
      refused.push(...parsed.refused);
    }
  }
  return { certs: mergeWanted(lists), refused };
}
