import { domainToASCII, domainToUnicode } from 'node:url';
import { isIP } from './ip.js';
import { getPublicSuffix } from 'tldts';
import type { KeyType } from './certs/keys.js';
import { canonicalIp } from './certs/parse.js';

/**
 * The kinds of source, highest rank first (DESIGN §10): the operator's DOMAINS, then the run-time request
 * API, then labels, which anyone who may deploy a service can set and which are therefore untrusted.
 */
export const ORIGINS = ['DOMAINS', 'api', 'label'] as const;
export type Origin = (typeof ORIGINS)[number];

export function originOf(source: string): Origin {
  return source === 'DOMAINS' ? 'DOMAINS' : source === 'api' ? 'api' : 'label';
}

/** One wanted certificate: its name (= first domain, the common name) and every name it must cover. */
export interface WantedCert {
  name: string;
  names: string[];
  /** Where the request came from, for logs: "DOMAINS", "label on web", "api". */
  sources: string[];
  /** The kind of source that owns the certificate: the highest-ranked one that asks for it. */
  origin: Origin;
  /** Asked for by the source (a service's `<HOSTS_LABEL>.challenge` label); else CHALLENGE decides. */
  challenge?: 'http-01' | 'dns-01';
  /** Asked for by a service's `<HOSTS_LABEL>.key_type` label; else KEY_TYPE decides. */
  keyType?: KeyType;
  /** Asked for by a service's `<HOSTS_LABEL>.reuse_key` label; else REUSE_KEY decides. */
  reuseKey?: boolean;
  /** A label's certificate: the service that asks for it (labels are per service: caps, claims). */
  service?: LabelService;
  /** The ACME profile a service's `<HOSTS_LABEL>.profile` label asks for; else PROFILE decides. */
  profile?: string;
}

/** The orchestrator service a label sits on. */
export interface LabelService {
  id: string;
  name: string;
  /** The service's stack, by id and (when it was looked up) by name. */
  stackId?: string;
  stack?: string;
}

/** A certificate that was asked for but cannot be ordered, with the reason. */
export interface RefusedCert {
  spec: string;
  source: string;
  error: string;
  /** A label's refusal: the service that asked, "web (1s12)". */
  service?: string;
}

export interface ParsedDomains {
  certs: WantedCert[];
  refused: RefusedCert[];
}

// RFC 1035 §2.3.4: 63 octets per label, 253 characters for a name written without the trailing dot.
const MAX_LABEL = 63;
const MAX_NAME = 253;
const LABEL_RE = /^(?!-)[a-z0-9-]+(?<!-)$/;

/**
 * Top-level domains no public CA issues under: RFC 2606 (.test, .example, .invalid, .localhost), RFC 6762
 * (.local, mDNS) and ICANN's 2024 reservation of .internal for private use. Let's Encrypt refuses them at
 * new-order; refusing them here means they are never ordered at all.
 */
export const RESERVED_TLDS = ['test', 'example', 'invalid', 'localhost', 'local', 'internal'];

// Let's Encrypt: at most 100 names (SANs) in one certificate.
export const MAX_NAMES_PER_CERT = 100;

/** `--` in positions 3–4 is reserved for IDNA (RFC 5891 §4.2.3.1): only a decodable `xn--` label may use it. */
function checkReservedHyphens(raw: string, label: string): void {
  if (label.slice(2, 4) !== '--') return;
  if (!label.startsWith('xn--')) {
    throw new Error(`"${raw}": label "${label}" has "--" in positions 3-4, which is reserved for internationalised names (xn--); the CA refuses it`);
  }
  // The punycode must decode, and encode back to the same label (no uppercase or mapped forms hidden in it).
  const unicode = domainToUnicode(label);
  if (unicode === '' || unicode === label || domainToASCII(unicode) !== label) {
    throw new Error(`"${raw}": label "${label}" is not valid punycode (IDNA); the CA refuses it`);
  }
}

/** A name the CA would refuse for where it sits in the DNS tree: a reserved TLD, or a public suffix itself. */
function checkPlace(raw: string, ascii: string, wildcard: boolean, allowReservedTlds: boolean): void {
  const tld = ascii.slice(ascii.lastIndexOf('.') + 1);
  if (RESERVED_TLDS.includes(tld) && !allowReservedTlds) {
    throw new Error(`"${raw}" is under the reserved top-level domain .${tld}, which no public CA issues for (reserved: ${RESERVED_TLDS.map((t) => `.${t}`).join(' ')})`);
  }
  // With the private section, as Let's Encrypt reads the list (github.io, s3.amazonaws.com are suffixes too).
  if (getPublicSuffix(ascii, { allowPrivateDomains: true }) === ascii) {
    throw new Error(wildcard ? `"${raw}" is a wildcard directly under the public suffix ${ascii}; the CA refuses it` : `"${raw}" is a public suffix (anyone may register names under it); the CA issues only for names under it, such as example.${ascii}`);
  }
}

/**
 * Normalises one name (trim, lower-case, punycode, drop a trailing dot) and checks it can be ordered.
 * Returns the ASCII name or throws with a message that says what is wrong and what would be valid.
 */
export function normaliseName(raw: string, opts: { allowWildcard: boolean; allowReservedTlds?: boolean }): string {
  let name = raw.trim().toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === '') throw new Error('empty name');
  if (isIP(name) || isIP(name.replace(/^\[|\]$/g, ''))) {
    throw new Error(`"${raw}" is an IP address; only DNS names can be ordered`);
  }
  let wildcard = false;
  if (name.startsWith('*.')) {
    if (!opts.allowWildcard) {
      throw new Error(`"${raw}" is a wildcard; wildcards are validated over DNS-01 only: set DNS_PROVIDER (HTTP-01 cannot validate them)`);
    }
    wildcard = true;
    name = name.slice(2);
  }
  if (name.includes('*')) throw new Error(`"${raw}": "*" is allowed only as the whole leftmost label`);
  // domainToASCII returns '' for names it cannot convert (invalid code points, bad punycode).
  const ascii = /^[\x00-\x7f]*$/.test(name) ? name : domainToASCII(name);
  if (ascii === '') throw new Error(`"${raw}" cannot be converted to punycode (IDNA)`);
  const labels = ascii.split('.');
  if (labels.length < 2) throw new Error(`"${raw}" is not a fully qualified name (needs at least one dot)`);
  for (const label of labels) {
    if (label === '') throw new Error(`"${raw}" has an empty label`);
    if (label.length > MAX_LABEL) {
      throw new Error(`"${raw}" has a label of ${label.length} characters (at most ${MAX_LABEL})`);
    }
    if (!LABEL_RE.test(label)) {
      throw new Error(`"${raw}": label "${label}" may hold only a-z, 0-9 and inner hyphens`);
    }
    checkReservedHyphens(raw, label);
  }
  checkPlace(raw, ascii, wildcard, opts.allowReservedTlds === true);
  const full = (wildcard ? '*.' : '') + ascii;
  if (full.length > MAX_NAME) throw new Error(`"${raw}" is ${full.length} characters long (at most ${MAX_NAME})`);
  return full;
}

export interface DomainsOptions {
  /** A DNS provider is configured: DNS-01 is possible, and with it wildcards (which take DNS-01 whatever CHALLENGE says). */
  dnsProvider: boolean;
  /** The seed's form: every comma-separated name is its own certificate. */
  onePerName: boolean;
  /** Suffixes a name must end in; empty means all names are allowed. */
  allowedSuffixes: string[];
  /**
   * Names under .internal, .local, .test … may be ordered: only for the operator's own DOMAINS, and only from
   * a CA of their own (ACME_DIRECTORY_URL set to something other than Let's Encrypt, such as step-ca), which
   * may issue for private names that no public CA would.
   */
  allowReservedTlds?: boolean;
  /**
   * IP-address identifiers (RFC 8738) may be ordered: only in DOMAINS, and only with PROFILE=shortlived, the one
   * Let's Encrypt profile that issues them. Undefined or false: refused, saying so.
   */
  allowIps?: boolean;
}

// Addresses no public CA validates (RFC 1918, RFC 6598, loopback, link-local, RFC 4193 unique-local): refused
// unless the CA is the operator's own (the same rule as the reserved top-level domains).
const PRIVATE_IP_RE = /^(10\.|127\.|169\.254\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.|0\.)|^(::1?|f[cd][0-9a-f]{2}:.*|fe[89ab][0-9a-f]:.*)$/;

/** An IP-address identifier (RFC 8738) in its canonical form, or throws saying why it cannot be ordered. */
export function normaliseIp(raw: string, opts: { allowIps?: boolean; allowReservedTlds?: boolean }): string {
  const ip = canonicalIp(raw.trim().toLowerCase().replace(/^\[|\]$/g, ''));
  if (!opts.allowIps) throw new Error(`"${raw.trim()}" is an IP address; IP certificates (RFC 8738) are ordered only in DOMAINS with PROFILE=shortlived, the one Let's Encrypt profile that issues them`);
  if (PRIVATE_IP_RE.test(ip) && !opts.allowReservedTlds) throw new Error(`"${raw.trim()}" is a private, loopback or link-local address, which no public CA validates`);
  return ip;
}

/** The name (a wildcard by its base) is one of the suffixes or under one; no suffixes allow every name. */
export function withinSuffixes(name: string, suffixes: string[]): boolean {
  if (suffixes.length === 0) return true;
  const bare = name.replace(/^\*\./, '');
  return suffixes.some((s) => bare === s || bare.endsWith(`.${s}`));
}

/**
 * Parses the DOMAINS grammar: `;` separates certificates, `,` separates names in one (the first is the
 * common name). A certificate with a bad name is refused whole; the others go on.
 */
export function parseDomainList(value: string, source: string, opts: DomainsOptions): ParsedDomains {
  const certs: WantedCert[] = [];
  const refused: RefusedCert[] = [];
  const groups = opts.onePerName ? value.split(/[;,]/) : value.split(';');
  for (const group of groups) {
    const spec = group.trim();
    if (spec === '') continue;
    const names: string[] = [];
    let error: string | undefined;
    for (const raw of spec.split(',')) {
      if (raw.trim() === '') continue;
      try {
        if (isIP(raw.trim().replace(/^\[|\]$/g, ''))) {
          // The operator's own address, in DOMAINS: ALLOWED_DOMAINS (name suffixes) does not speak of it.
          const ip = normaliseIp(raw, opts);
          if (!names.includes(ip)) names.push(ip);
          continue;
        }
        const name = normaliseName(raw, { allowWildcard: opts.dnsProvider, allowReservedTlds: opts.allowReservedTlds === true });
        if (!withinSuffixes(name, opts.allowedSuffixes)) {
          throw new Error(`"${name}" is outside ALLOWED_DOMAINS (${opts.allowedSuffixes.join(', ')})`);
        }
        if (!names.includes(name)) names.push(name);
      } catch (e) {
        error = (e as Error).message;
        break;
      }
    }
    if (error === undefined && names.length > MAX_NAMES_PER_CERT) {
      error = `${names.length} names in one certificate; the CA takes at most ${MAX_NAMES_PER_CERT} (split them into several certificates with ";")`;
    }
    if (error !== undefined) refused.push({ spec, source, error });
    else if (names.length > 0) certs.push({ name: certName(names), names, sources: [source], origin: originOf(source) });
  }
  return { certs, refused };
}

/** The certificate's name: its first domain, with a wildcard's "*." spelled "_." (and an IPv6 address's ":" "_") so it can name a folder. */
export function certName(names: string[]): string {
  return names[0]!.replace(/^\*\./, '_.').replace(/:/g, '_');
}

/**
 * Merges the certificate requests of ONE source (DOMAINS with itself, or one service's label sets): a
 * certificate asked for twice (same name) is one certificate covering the union of the names; the first
 * request decides the order of names. Requests of different sources never merge: `ownership.ts` decides.
 */
export function mergeWanted(lists: WantedCert[][]): WantedCert[] {
  const byName = new Map<string, WantedCert>();
  for (const list of lists) {
    for (const cert of list) {
      const seen = byName.get(cert.name);
      if (!seen) {
        byName.set(cert.name, { ...cert, names: [...cert.names], sources: [...cert.sources] });
        continue;
      }
      // Asked for twice with different challenges: the first source that names one decides.
      if (!seen.challenge && cert.challenge) seen.challenge = cert.challenge;
      if (!seen.keyType && cert.keyType) seen.keyType = cert.keyType;
      if (seen.reuseKey === undefined && cert.reuseKey !== undefined) seen.reuseKey = cert.reuseKey;
      if (!seen.profile && cert.profile) seen.profile = cert.profile;
      for (const n of cert.names) if (!seen.names.includes(n)) seen.names.push(n);
      for (const s of cert.sources) if (!seen.sources.includes(s)) seen.sources.push(s);
      if (ORIGINS.indexOf(cert.origin) < ORIGINS.indexOf(seen.origin)) seen.origin = cert.origin;
    }
  }
  return [...byName.values()];
}
