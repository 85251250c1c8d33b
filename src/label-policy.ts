/**
 * What a label may ask for (DESIGN §10). Anyone who may deploy a service may label it, so a label is
 * untrusted input: the operator sets which suffixes, which challenge, how many certificates and names per
 * service and which stacks. These are the checks that need nothing but the request itself; ownership and
 * the per-day count of new name sets, which need the claims kept in DATA_DIR, are in `ownership.ts`.
 */
import { withinSuffixes, type LabelService, type RefusedCert, type WantedCert } from './domains.js';

export interface LabelPolicy {
  /** Suffixes a label's names must end in; empty: any name (a warning at start says so). */
  allowedDomains: string[];
  /** The variable `allowedDomains` came from, for messages. */
  allowedDomainsFrom: 'LABEL_ALLOWED_DOMAINS' | 'ALLOWED_DOMAINS';
  /** LABELS_ALLOW_DNS01: wildcards and dns-01 from labels (they validate with the operator's DNS credentials). */
  allowDns01: boolean;
  maxCerts: number;
  maxNames: number;
  maxNewPerDay: number;
  /** LABEL_STACKS: stack names or ids whose services may use the label; undefined: every stack. */
  stacks: string[] | undefined;
  /** LABEL_PROFILES: the ACME profiles a `<HOSTS_LABEL>.profile` label may ask for (default LABEL_PROFILES_DEFAULT). */
  profiles?: string[];
}

// Issue 15.2's defaults: enough for one application's names, few enough that one service cannot spend
// Let's Encrypt's 50 certificates per registered domain a week on its own.
export const LABEL_MAX_CERTS_DEFAULT = 10;
export const LABEL_MAX_NAMES_DEFAULT = 20;
export const LABEL_MAX_NEW_PER_DAY_DEFAULT = 5;
// Let's Encrypt's 90-day profiles. `shortlived` (160 hours) renews every few days, spending the operator's
// rate limits some fifteen times as fast, so a tenant may ask for it only when the operator lists it.
export const LABEL_PROFILES_DEFAULT = ['classic', 'tlsserver'];

/** "web (1s12)", as refusals and events name a service. */
export function describeService(s: LabelService): string {
  return `${s.name} (${s.id})`;
}

export function refusal(cert: WantedCert, error: string): RefusedCert {
  return { spec: cert.names.join(','), source: cert.sources[0] ?? 'label', error, ...(cert.service ? { service: describeService(cert.service) } : {}) };
}

/** The checks of one label certificate on its own; the reason it is refused, or undefined. */
function check(cert: WantedCert, policy: LabelPolicy): string | undefined {
  const s = cert.service;
  if (policy.stacks && !(s && ((s.stack !== undefined && policy.stacks.includes(s.stack)) || (s.stackId !== undefined && policy.stacks.includes(s.stackId))))) {
    return `service ${s ? describeService(s) : '?'} is in stack ${s?.stack ?? s?.stackId ?? '(unknown)'}; LABEL_STACKS lets only services of ${policy.stacks.join(', ')} use the label`;
  }
  if (policy.allowedDomains.length > 0) {
    const outside = cert.names.find((n) => !withinSuffixes(n, policy.allowedDomains));
    if (outside) return `"${outside}" is outside ${policy.allowedDomainsFrom} (${policy.allowedDomains.join(', ')}), the suffixes labels may use`;
  }
  if (!policy.allowDns01) {
    const wildcard = cert.names.find((n) => n.startsWith('*.'));
    if (wildcard) return `"${wildcard}" is a wildcard; wildcards from labels are off (they validate with the operator's DNS credentials): the operator may set LABELS_ALLOW_DNS01=true or put it in DOMAINS`;
    if (cert.challenge === 'dns-01') return `the label asks for dns-01; dns-01 from labels is off (it validates with the operator's DNS credentials): the operator may set LABELS_ALLOW_DNS01=true`;
  }
  const profiles = policy.profiles ?? LABEL_PROFILES_DEFAULT;
  if (cert.profile !== undefined && !profiles.includes(cert.profile)) {
    const allowed = profiles.length > 0 ? `labels may ask for ${profiles.join(', ')}` : 'labels may not choose one';
    return `the label asks for profile "${cert.profile}"; ${allowed} (LABEL_PROFILES, set by the operator)`;
  }
  if (cert.names.length > policy.maxNames) return `${cert.names.length} names in one certificate; a label may ask for at most ${policy.maxNames} (LABEL_MAX_NAMES)`;
  return undefined;
}

/**
 * Applies the label policy to the certificates labels ask for. Per service, at most `maxCerts`
 * certificates are taken, in label order. Without LABELS_ALLOW_DNS01 a label's certificate is validated
 * over HTTP-01 whatever CHALLENGE says, so the operator's DNS credentials never validate a tenant's name.
 */
export function checkLabels(certs: WantedCert[], policy: LabelPolicy): { certs: WantedCert[]; refused: RefusedCert[] } {
  const out: WantedCert[] = [];
  const refused: RefusedCert[] = [];
  const perService = new Map<string, number>();
  for (const cert of certs) {
    const error = check(cert, policy);
    if (error) {
      refused.push(refusal(cert, error));
      continue;
    }
    const id = cert.service?.id ?? cert.sources[0] ?? '';
    const n = (perService.get(id) ?? 0) + 1;
    perService.set(id, n);
    if (n > policy.maxCerts) {
      refused.push(refusal(cert, `service ${cert.service ? describeService(cert.service) : id} asks for more than ${policy.maxCerts} certificates (LABEL_MAX_CERTS); the first ${policy.maxCerts} in label order are taken`));
      continue;
    }
    out.push(policy.allowDns01 ? cert : { ...cert, challenge: 'http-01' });
  }
  return { certs: out, refused };
}
