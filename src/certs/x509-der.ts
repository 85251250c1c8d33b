/**
 * What parseCert needs of a certificate, read from its DER in JavaScript (issue 22). OpenSSL 3.0's X509 decoder
 * (node's X509Certificate) costs 250–400 µs a certificate here, most of it decoding the public key through its
 * provider framework, and its objects live outside the heap until a GC: a cold pass over 10,000 certificates
 * spent 2.6 s in it and held them as RSS. The fields below are a handful of DER walks.
 *
 * The answer must be exactly what node would give (issuers.json keys kinds by the issuer string, and the store
 * index, the orchestrators and the reports compare these fields), so this reads only the plain case and says
 * `undefined` for anything else, which parse.ts then hands to X509Certificate as before: a DN attribute not in
 * the table below, a multi-valued RDN, a value with a character OpenSSL would escape, a subjectAltName entry other
 * than a plain DNS name or an IP address, a negative serial, a signature algorithm not listed, trailing bytes.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { childrenOf, contentOf, oidOf, OID_EC_PUBLIC_KEY, OID_RSA_ENCRYPTION, readTlv, TAG, wholeOf, type Tlv } from './der.js';

/** The X509Certificate getters parseCert reads, with the values node gives. */
export interface DerFields {
  /** As node prints it ("DNS:a.test, IP Address:127.0.0.1"); undefined without the extension. */
  subjectAltName: string | undefined;
  /** As node prints them: one "SN=value" line per RDN; undefined for an empty Name. */
  subject: string | undefined;
  issuer: string | undefined;
  notBefore: Date;
  notAfter: Date;
  /** Upper-case hex of whole bytes without leading zero bytes, as node's `serialNumber`. */
  serialNumber: string;
  /** issuer = subject and the certificate's own key verifies its signature (node: `x.verify(x.publicKey)`). */
  selfSigned: boolean;
}

const { SEQUENCE, SET, INTEGER, BIT_STRING, OID } = TAG;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
const OID_SAN = '2.5.29.17';

/** OpenSSL's short names (what node prints before "="), for the attributes certificates carry. */
const SHORT_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'street',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'title',
  '2.5.4.17': 'postalCode',
  '2.5.4.42': 'GN',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.25': 'DC',
};

// PrintableString, UTF8String, IA5String: printed as they are when every character is one of these. Anything
// OpenSSL escapes (RFC 2253's , + " \ < > ; a leading # or space, a trailing space, control and non-ASCII
// characters) is left to it.
const STRING_TAGS = new Set([0x13, 0x0c, 0x16]);
const PLAIN_VALUE = /^[A-Za-z0-9.\-_'()/:@*&!?](?:[A-Za-z0-9 .\-_'()/:@*&!?]*[A-Za-z0-9.\-_'()/:@*&!?])?$/;
const PLAIN_DNS = /^[A-Za-z0-9*._-]+$/;

/** Signature algorithms checked here: OID → the digest for crypto.verify (null: the key says, Ed25519). */
const SIGNATURE_DIGESTS: Record<string, string | null> = {
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null,
};

const OID_ED25519 = '1.3.101.112';
/** The key algorithm each signature algorithm above needs. */
const SIGNATURE_KEYS: Record<string, string> = {
  '1.2.840.113549.1.1.11': OID_RSA_ENCRYPTION,
  '1.2.840.113549.1.1.12': OID_RSA_ENCRYPTION,
  '1.2.840.113549.1.1.13': OID_RSA_ENCRYPTION,
  '1.2.840.10045.4.3.2': OID_EC_PUBLIC_KEY,
  '1.2.840.10045.4.3.3': OID_EC_PUBLIC_KEY,
  '1.2.840.10045.4.3.4': OID_EC_PUBLIC_KEY,
  [OID_ED25519]: OID_ED25519,
};

class NotPlain extends Error {}
function need(ok: unknown): asserts ok {
  if (!ok) throw new NotPlain();
}

function seqOf(buf: Buffer, t: Tlv | undefined, tag: number = SEQUENCE): Tlv[] {
  need(t && t.tag === tag);
  return childrenOf(buf, t);
}

/** A Name as node prints it: one "SN=value" line per RDN, in certificate order. */
function nameText(der: Buffer, name: Tlv): string | undefined {
  const lines: string[] = [];
  for (const rdn of seqOf(der, name)) {
    const attrs = seqOf(der, rdn, SET);
    need(attrs.length === 1);
    const [type, value, ...rest] = seqOf(der, attrs[0]);
    need(type?.tag === OID && value && rest.length === 0 && STRING_TAGS.has(value.tag));
    const short = SHORT_NAMES[oidOf(contentOf(der, type))];
    const text = contentOf(der, value).toString('latin1');
    need(short && PLAIN_VALUE.test(text));
    lines.push(`${short}=${text}`);
  }
  return lines.length === 0 ? undefined : lines.join('\n');
}

function timeOf(der: Buffer, t: Tlv | undefined): Date {
  need(t && (t.tag === UTC_TIME || t.tag === GENERALIZED_TIME));
  const s = contentOf(der, t).toString('latin1');
  const m = (t.tag === UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/ : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/).exec(s);
  need(m);
  const y = Number(m[1]);
  // RFC 5280 §4.1.2.5.1: a UTCTime year of 50 or more is 19YY.
  const year = t.tag === UTC_TIME ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  const d = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  // A date that does not exist (month 13, February 30) rolls over in Date.UTC: OpenSSL refuses it.
  need(d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]) && Number(m[4]) < 24 && Number(m[5]) < 60 && Number(m[6]) < 60);
  return d;
}

function ipText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  need(b.length === 16);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16).toUpperCase());
  return groups.join(':');
}

// Self-signed certificates are placeholders, which share one key: its KeyObject is made once.
const KEY_MEMO = 64;
const publicKeys = new Map<string, KeyObject>();
function publicKeyOf(spki: Buffer): KeyObject {
  const id = spki.toString('base64');
  let key = publicKeys.get(id);
  if (!key) {
    if (publicKeys.size >= KEY_MEMO) publicKeys.delete(publicKeys.keys().next().value!);
    publicKeys.set(id, (key = createPublicKey({ key: spki, format: 'der', type: 'spki' })));
  }
  return key;
}

/**
 * The fields of a DER certificate, or undefined when it is not the plain case this reads (see the top). Throws
 * nothing: a DER that is broken is "not plain" too, and OpenSSL then names what is wrong with it.
 */
export function readCertDer(der: Buffer): DerFields | undefined {
  try {
    const cert = readTlv(der, 0);
    need(cert.tag === SEQUENCE && cert.end === der.length);
    const [tbs, sigAlg, sig, ...more] = childrenOf(der, cert);
    need(tbs && sigAlg && sig?.tag === BIT_STRING && more.length === 0);
    const fields = seqOf(der, tbs);
    // v3 only ([0] EXPLICIT INTEGER 2): v1 and v2 certificates are OpenSSL's to read.
    const version = fields[0];
    need(version?.tag === 0xa0);
    const v = childrenOf(der, version)[0];
    need(v?.tag === INTEGER && v.end - v.contentStart === 1 && der[v.contentStart] === 2);
    const [serial, tbsSigAlg, issuer, validity, subject, spki, ...rest] = fields.slice(1);
    need(serial?.tag === INTEGER && issuer && validity && subject);
    // The shapes OpenSSL's decoder insists on, read here too (a SubjectPublicKeyInfo of SEQUENCE { INTEGER } is
    // refused there, so it must not pass here): AlgorithmIdentifier ::= SEQUENCE { OID, … }, and
    // SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }.
    const algorithmOf = (t: Tlv | undefined): string => {
      need(t?.tag === SEQUENCE);
      const id = seqOf(der, t)[0];
      need(id?.tag === OID);
      return oidOf(contentOf(der, id));
    };
    need(spki?.tag === SEQUENCE);
    const [keyAlg, keyBits, ...restSpki] = seqOf(der, spki);
    const keyAlgorithm = algorithmOf(keyAlg);
    need(keyBits?.tag === BIT_STRING && restSpki.length === 0);
    const signatureAlgorithm = algorithmOf(sigAlg);
    algorithmOf(tbsSigAlg);
    // issuerUniqueID and subjectUniqueID ([1], [2]) are not read here; [3] extensions is all that may follow.
    need(rest.length <= 1 && (rest.length === 0 || rest[0]!.tag === 0xa3));
    const serialBytes = contentOf(der, serial);
    need(serialBytes.length > 0 && (serialBytes[0]! & 0x80) === 0);
    // BN_bn2hex, as node prints it: whole bytes, leading zero bytes dropped, "0" for zero.
    let lead = 0;
    while (lead < serialBytes.length && serialBytes[lead] === 0) lead++;
    const serialNumber = lead === serialBytes.length ? '0' : serialBytes.subarray(lead).toString('hex').toUpperCase();
    const [from, to, ...restValidity] = seqOf(der, validity);
    need(restValidity.length === 0);

    let subjectAltName: string | undefined;
    if (rest[0]) {
      const seen = new Set<string>();
      for (const ext of seqOf(der, childrenOf(der, rest[0])[0])) {
        const parts = seqOf(der, ext);
        const id = parts[0];
        const value = parts.at(-1);
        need(id?.tag === OID && value?.tag === 0x04 && parts.length <= 3);
        const oid = oidOf(contentOf(der, id));
        need(!seen.has(oid));
        seen.add(oid);
        if (oid !== OID_SAN) continue;
        const san = contentOf(der, value);
        const list = readTlv(san, 0);
        need(list.end === san.length);
        const entries: string[] = [];
        for (const gn of seqOf(san, list)) {
          const text = contentOf(san, gn);
          if (gn.tag === 0x82) {
            const name = text.toString('latin1');
            need(PLAIN_DNS.test(name));
            entries.push(`DNS:${name}`);
          } else {
            need(gn.tag === 0x87);
            entries.push(`IP Address:${ipText(text)}`);
          }
        }
        need(entries.length > 0);
        subjectAltName = entries.join(', ');
      }
    }
    const subjectText = nameText(der, subject);
    const issuerText = nameText(der, issuer);
    let selfSigned = false;
    if ((issuerText ?? '') === (subjectText ?? '')) {
      const digest = SIGNATURE_DIGESTS[signatureAlgorithm];
      const signature = contentOf(der, sig);
      // OpenSSL refuses a signature algorithm that does not fit the key (an ECDSA key under sha256WithRSA):
      // node's crypto.verify would not, so only the fitting pairs are read here.
      need(digest !== undefined && SIGNATURE_KEYS[signatureAlgorithm] === keyAlgorithm && signature[0] === 0);
      // X509_verify: the outer and inner algorithms must be the same, and the signature must verify.
      selfSigned = wholeOf(der, sigAlg).equals(wholeOf(der, tbsSigAlg!)) && verify(digest, wholeOf(der, tbs), publicKeyOf(wholeOf(der, spki)), signature.subarray(1));
    }
    return { subjectAltName, subject: subjectText, issuer: issuerText, notBefore: timeOf(der, from), notAfter: timeOf(der, to), serialNumber, selfSigned };
  } catch {
    // NotPlain, a DER that does not parse, a key OpenSSL cannot load: OpenSSL reads it, as always.
    return undefined;
  }
}
