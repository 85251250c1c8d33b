/**
 * Wanted certificates from the hosts label on Rancher services (`specs/rancher-v1-api.md` §5). Labels
 * cannot be filtered on the server, so every service is listed and the label is read here, from the
 * primary launch config and from every sidekick's; `label-requests.ts` turns them into certificates.
 */
import type { ParsedDomains, DomainsOptions } from '../../domains.js';
import { wantedFromRequests, type LabelOwner } from '../label-requests.js';
import { isGone, type ServiceResource } from './resources.js';

/** `stackNames`: stack id → name, when the stacks were listed (LABEL_STACKS names them). */
export function wantedFromLabels(services: ServiceResource[], label: string, opts: DomainsOptions, stackNames?: Map<string, string>): ParsedDomains {
  const owners: LabelOwner[] = services
    .filter((s) => !s.system && !isGone(s.state))
    .map((s) => ({
      service: { id: s.id, name: s.name, ...(s.stackId ? { stackId: s.stackId } : {}), ...(s.stackId && stackNames?.has(s.stackId) ? { stack: stackNames.get(s.stackId)! } : {}) },
      requests: s.labelSets
        .filter((set) => set.labels[label] !== undefined)
        .map((set) => ({ source: `label ${label} on ${set.source}`, value: set.labels[label]!, labels: set.labels, prefix: label })),
    }));
  return wantedFromRequests(owners, opts);
}
