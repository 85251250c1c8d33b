/**
 * Wanted certificates from what an orchestrator's services ask for: the hosts label (Rancher, Docker) or a
 * convention read in its place (Traefik's router rules, nginx-proxy's VIRTUAL_HOST). Each certificate carries
 * its service: a label is untrusted, and what it may ask for and own is decided per service
 * (`label-policy.ts`, `ownership.ts`), whichever orchestrator or convention it came from.
 */
import { mergeWanted, parseDomainList, type DomainsOptions, type LabelService, type ParsedDomains, type RefusedCert, type WantedCert } from '../domains.js';

/** One request: a value in the hosts-label grammar ("a,b;c"), where it was read, and the challenge it names. */
export interface LabelRequest {
  /** For reports: "label <HOSTS_LABEL> on service web (1s12)". */
  source: string;
  value: string;
  /** The `<HOSTS_LABEL>.challenge` label beside it, as written; undefined when absent. */
  challenge?: string | undefined;
  /** That label's name, for the refusal of a bad value. */
  challengeLabel?: string;
}

/** A service (or container) and everything it asks for. */
export interface LabelOwner {
  service: LabelService;
  requests: LabelRequest[];
}

export function wantedFromRequests(owners: LabelOwner[], opts: DomainsOptions): ParsedDomains {
  const certs: WantedCert[] = [];
  const refused: RefusedCert[] = [];
  for (const { service, requests } of owners) {
    const who = `${service.name} (${service.id})`;
    const lists: WantedCert[][] = [];
    for (const r of requests) {
      if (r.value.trim() === '') continue;
      const parsed = parseDomainList(r.value, r.source, opts);
      const challenge = r.challenge?.trim().toLowerCase();
      if (challenge !== undefined && challenge !== '' && challenge !== 'http-01' && challenge !== 'dns-01') {
        refused.push({ spec: r.value, source: r.source, service: who, error: `${r.challengeLabel}=${JSON.stringify(challenge)} is not valid; accepted: http-01, dns-01` });
        continue;
      }
      if (challenge === 'dns-01' && !opts.dnsProvider) {
        refused.push({ spec: r.value, source: r.source, service: who, error: `${r.challengeLabel}=dns-01 needs a DNS provider: set DNS_PROVIDER` });
        continue;
      }
      lists.push(parsed.certs.map((c) => ({ ...c, service, ...(challenge ? { challenge: challenge as 'http-01' | 'dns-01' } : {}) })));
      refused.push(...parsed.refused.map((x) => ({ ...x, service: who })));
    }
    // One service's own requests (primary and sidekicks, several routers) may share a certificate; other services' never merge.
    certs.push(...mergeWanted(lists));
  }
  return { certs, refused };
}
