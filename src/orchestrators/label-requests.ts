/**
 * Wanted certificates from what an orchestrator's services ask for: the hosts label (Rancher, Docker) or a
 * convention read in its place (Traefik's router rules, nginx-proxy's VIRTUAL_HOST). Each certificate carries
 * its service: a label is untrusted, and what it may ask for and own is decided per service
 * (`label-policy.ts`, `ownership.ts`), whichever orchestrator or convention it came from.
 */
import { mergeWanted, parseDomainList, type DomainsOptions, type LabelService, type ParsedDomains, type RefusedCert, type WantedCert } from '../domains.js';
import { KEY_TYPES, type KeyType } from '../certs/keys.js';
import { PROFILE_NAME_RE } from '../acme/directory.js';

/** One request: a value in the hosts-label grammar ("a,b;c"), where it was read, and the challenge it names. */
export interface LabelRequest {
  /** For reports: "label <HOSTS_LABEL> on service web (1s12)". */
  source: string;
  value: string;
  /**
   * The labels beside it and the hosts label's name: its options are read from `<prefix>.challenge`,
   * `<prefix>.key_type`, `<prefix>.reuse_key` and `<prefix>.profile`. Absent for a convention read in the label's place.
   */
  labels?: Record<string, string>;
  prefix?: string;
}

/**
 * A service's key labels (issue 17 item 4): `<label>.key_type` (one of KEY_TYPES) and `<label>.reuse_key`
 * (true or false). A tenant's value is checked here like `.challenge`: anything else refuses the label's
 * certificates, naming the label and what it may say.
 */
export function keyLabels(labels: Record<string, string>, label: string): { keyType?: KeyType; reuseKey?: boolean } | { error: string } {
  const out: { keyType?: KeyType; reuseKey?: boolean } = {};
  const type = labels[`${label}.key_type`]?.trim().toLowerCase();
  if (type !== undefined && type !== '') {
    if (!(KEY_TYPES as readonly string[]).includes(type)) return { error: `${label}.key_type=${JSON.stringify(type.slice(0, 64))} is not valid; accepted: ${KEY_TYPES.join(', ')}` };
    out.keyType = type as KeyType;
  }
  const reuse = labels[`${label}.reuse_key`]?.trim().toLowerCase();
  if (reuse !== undefined && reuse !== '') {
    if (reuse !== 'true' && reuse !== 'false') return { error: `${label}.reuse_key=${JSON.stringify(reuse.slice(0, 64))} is not valid; accepted: true, false` };
    out.reuseKey = reuse === 'true';
  }
  return out;
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
      const labels = r.labels ?? {};
      const prefix = r.prefix ?? '';
      const challenge = r.prefix === undefined ? undefined : labels[`${prefix}.challenge`]?.trim().toLowerCase();
      if (challenge !== undefined && challenge !== '' && challenge !== 'http-01' && challenge !== 'dns-01') {
        refused.push({ spec: r.value, source: r.source, service: who, error: `${prefix}.challenge=${JSON.stringify(challenge.slice(0, 64))} is not valid; accepted: http-01, dns-01` });
        continue;
      }
      if (challenge === 'dns-01' && !opts.dnsProvider) {
        refused.push({ spec: r.value, source: r.source, service: who, error: `${prefix}.challenge=dns-01 needs a DNS provider: set DNS_PROVIDER` });
        continue;
      }
      const keys = r.prefix === undefined ? {} : keyLabels(labels, prefix);
      if ('error' in keys) {
        refused.push({ spec: r.value, source: r.source, service: who, error: keys.error });
        continue;
      }
      const profile = r.prefix === undefined ? undefined : labels[`${prefix}.profile`]?.trim();
      if (profile !== undefined && profile !== '' && !PROFILE_NAME_RE.test(profile)) {
        refused.push({ spec: r.value, source: r.source, service: who, error: `${prefix}.profile=${JSON.stringify(profile.slice(0, 80))} is not a profile name (letters, digits, ".", "_", "-"; e.g. tlsserver)` });
        continue;
      }
      lists.push(parsed.certs.map((c) => ({ ...c, service, ...(challenge ? { challenge: challenge as 'http-01' | 'dns-01' } : {}), ...keys, ...(profile ? { profile } : {}) })));
      refused.push(...parsed.refused.map((x) => ({ ...x, service: who })));
    }
    // One service's own requests (primary and sidekicks, several routers) may share a certificate; other services' never merge.
    certs.push(...mergeWanted(lists));
  }
  return { certs, refused };
}
