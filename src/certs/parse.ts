import { X509Certificate, createHash } from 'node:crypto';
import { loadPrivateKey } from './keys.js';
import { strictBase64 } from './der.js';
import { intern } from './intern.js';
import { keyMatchesCertFast } from './key-match.js';
import { readCertDer } from './x509-der.js';

/** What a certificate says about itself, read once from its PEM. */
export interface CertInfo {
  /**
   * undefined for a certificate without one: Let's Encrypt's `tlsserver` and `shortlived` profiles omit the
   * CN, as the CA/Browser Forum Baseline Requirements (§7.1.4.3) recommend. Never name a certificate by it.
   */
  commonName: string | undefined;
  /**
   * DNS names and IP addresses (RFC 8738 identifiers) from subjectAltName, in certificate order; falls back to
   * the CN only for an old certificate with no SAN at all.
   */
  names: string[];
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 over the DER, lower-case hex pairs joined by ":". */
  fingerprint: string;
  /** SHA-1 over the DER in the same form: what Rancher reports as certFingerprint. */
  fingerprintSha1: string;
  /** RFC 2253; "" for an empty DN. */
  issuer: string;
  /** RFC 2253; "" for an empty subject (no CN). */
  subject: string;
  /** Decimal. */
  serialNumber: string;
  selfSigned: boolean;
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Splits a PEM bundle into its certificate blocks, each ending in a newline. */
export function splitPemChain(pem: string): string[] {
  return (pem.match(PEM_CERT_RE) ?? []).map((b) => `${b}\n`);
}

const HEX_DIGITS = Buffer.from('0123456789abcdef');

function colonHex(buf: Buffer): string {
  // Written byte by byte into one buffer: no array of two-letter strings per fingerprint, and about a fifth of a
  // pattern replace's time (a cold pass makes 20,000 of them).
  if (buf.length === 0) return '';
  const out = Buffer.allocUnsafe(buf.length * 3 - 1);
  for (let i = 0, j = 0; i < buf.length; i++) {
    const b = buf[i]!;
    if (i > 0) out[j++] = 0x3a;
    out[j++] = HEX_DIGITS[b >> 4]!;
    out[j++] = HEX_DIGITS[b & 15]!;
  }
  return out.toString('latin1');
}

/**
 * "C=US\nO=Let's Encrypt\nCN=R3" (certificate order) → "CN=R3,O=Let's Encrypt,C=US" (RFC 2253 order).
 * node's X509Certificate gives `undefined`, not "", for an empty DN: a certificate without a subject.
 */
export function dnToRfc2253(dn: string | undefined): string {
  return (dn ?? '')
    .split('\n')
    .filter((l) => l !== '')
    .reverse()
    .join(',');
}

export function dnCommonName(dn: string | undefined): string | undefined {
  return (dn ?? '')
    .split('\n')
    .find((l) => l.startsWith('CN='))
    ?.slice(3);
}

// A push parses the same PEM a few times (store, orchestrator, report). Between passes the store's index
// (certs/index.ts) holds what was parsed, without the PEMs: a memo keyed by PEM text of every certificate
// kept 10,000 PEMs alive (issue 22), so it is small now.
const MEMO_LIMIT = 256;
const parsed = new Map<string, CertInfo>();
const keyChecks = new Map<string, boolean>();

function remember<V>(memo: Map<string, V>, key: string, value: V): V {
  if (memo.size >= MEMO_LIMIT) memo.delete(memo.keys().next().value!);
  memo.set(key, value);
  return value;
}

/**
 * Parses the first certificate of a PEM text. Throws when there is none or it does not parse. The
 * result is shared between callers with the same PEM: treat it as read-only.
 */
export function parseCert(pem: string): CertInfo {
  return parsed.get(pem) ?? parseCertWithDer(pem).info;
}

/**
 * parseCert, with the leaf's DER: the store's read checks the key and takes the ARI CertID from it without
 * decoding the PEM again (issue 22).
 */
export function parseCertWithDer(pem: string): { info: CertInfo; der: Buffer } {
  const first = splitPemChain(pem)[0];
  if (!first) throw new Error('no PEM CERTIFICATE block');
  const { info, der } = certInfo(first, canonicalDer(first));
  Object.freeze(info.names);
  return { info: remember(parsed, pem, Object.freeze(info)), der };
}

/** The DER of a CERTIFICATE block whose base64 is canonical; undefined: OpenSSL reads it (and says what is wrong). */
function canonicalDer(pem: string): Buffer | undefined {
  const m = /-----BEGIN CERTIFICATE-----([^-]*)-----END CERTIFICATE-----/.exec(pem);
  return m ? strictBase64(m[1]!) : undefined;
}

/** What the certificate says: from the DER in JavaScript (x509-der.ts) when it is the plain case, else OpenSSL's. */
function certInfo(pem: string, der: Buffer | undefined): { info: CertInfo; der: Buffer } {
  const fast = der ? readCertDer(der) : undefined;
  // OpenSSL reads what x509-der.ts does not, and says what is wrong with a certificate that does not parse.
  const x = fast ? undefined : new X509Certificate(pem);
  const raw = x ? x.raw : der!;
  const subject = fast ? fast.subject : x!.subject;
  const issuer = fast ? fast.issuer : x!.issuer;
  const names = sanNames(fast ? fast.subjectAltName : x!.subjectAltName);
  // The CN is most often one of the names: held once (a slice of the subject text would hold all of it).
  const cn = dnCommonName(subject)?.toLowerCase();
  const commonName = cn === undefined ? undefined : (names.find((n) => n === cn) ?? cn);
  if (names.length === 0 && commonName) names.push(commonName);
  const subjectText = dnToRfc2253(subject);
  const issuerText = dnToRfc2253(issuer);
  const info: CertInfo = {
    commonName,
    names,
    notBefore: fast ? fast.notBefore : new Date(x!.validFrom),
    notAfter: fast ? fast.notAfter : new Date(x!.validTo),
    fingerprint: colonHex(createHash('sha256').update(raw).digest()),
    fingerprintSha1: colonHex(createHash('sha1').update(raw).digest()),
    // A self-signed certificate's issuer is its subject: one string.
    issuer: issuerText === subjectText ? subjectText : intern(issuerText),
    subject: subjectText,
    serialNumber: BigInt(`0x${fast ? fast.serialNumber : x!.serialNumber}`).toString(10),
    // Self-signed: issued by itself and its signature verifies with its own key. Two empty DNs are equal
    // (both undefined); a CA-issued certificate without a subject has a non-empty issuer.
    selfSigned: fast ? fast.selfSigned : (x!.issuer ?? '') === (x!.subject ?? '') && x!.verify(x!.publicKey),
  };
  return { info, der: raw };
}

/**
 * The DNS names and IP addresses of a subjectAltName as node prints it ("DNS:a.test, IP Address:127.0.0.1").
 * IPv6 comes uppercase and uncompressed from node; it is written the canonical way (RFC 5952) here, as
 * DOMAINS is normalised, so a certificate covers the address it was ordered for.
 */
export function sanNames(subjectAltName: string | undefined): string[] {
  const out: string[] = [];
  for (const e of (subjectAltName ?? '').split(', ')) {
    if (e.startsWith('DNS:')) out.push(e.slice(4).toLowerCase());
    else if (e.startsWith('IP Address:')) out.push(canonicalIp(e.slice('IP Address:'.length)));
  }
  return out;
}

/** An IP address in its one canonical text form (IPv4 dotted; IPv6 per RFC 5952, via the URL parser). */
export function canonicalIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip.toLowerCase();
  }
}

/** True when the private key is the one the certificate was issued for. */
export function keyMatchesCert(keyPem: string, certPem: string): boolean {
  const first = splitPemChain(certPem)[0];
  return first ? keyMatchesCertDer(keyPem, parseCertWithDer(first).der) : false;
}

/** keyMatchesCert, for a certificate already decoded (the leaf's DER). */
export function keyMatchesCertDer(keyPem: string, certDer: Buffer): boolean {
  // RSA and EC from the DER (key-match.ts: the same comparison, without OpenSSL's decoders): no memo needed.
  const fast = keyMatchesCertFast(keyPem, certDer);
  if (fast !== undefined) return fast;
  // Else OpenSSL, memoised by a digest, so the memo holds no copy of the key.
  const id = createHash('sha256').update(keyPem).update('\0').update(certDer).digest('base64');
  const hit = keyChecks.get(id);
  if (hit !== undefined) return hit;
  return remember(keyChecks, id, new X509Certificate(certDer).checkPrivateKey(loadPrivateKey(keyPem)));
}
