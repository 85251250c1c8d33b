/**
 * The order's certificate signing request (PKCS#10, RFC 2986), built as DER here and signed by node:crypto.
 *
 * Why not acme-client's createCsr: it goes through @peculiar/x509, asn1js and WebCrypto, which cost about
 * 0.15 s to load and another 0.1 s of CPU per CSR on this machine, in a pass whose whole budget is a few
 * tenths of a second (BENCHMARKS.md, issue 22). The request says the same thing theirs did: the common
 * name (when there is one) in the subject, every name in subjectAltName (dNSName or iPAddress), and key
 * usage digitalSignature + keyEncipherment, signed with SHA-256 (RSA, P-256) or SHA-384 (P-384).
 */
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { isIP } from '../ip.js';

/** One DER element: tag, definite length (short or long form), content. */
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const bytes = [40 * a + b];
  for (const v of rest) {
    const part = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) part.unshift(0x80 | (x & 0x7f));
    bytes.push(...part);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** An IP address's octets: 4 for IPv4, 16 for IPv6 (RFC 5280 §4.2.1.6). */
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // Expand '::' to the missing zero groups, and a trailing dotted IPv4 to two groups.
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    text = `${text.slice(0, -v4[1]!.length)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

const OID = {
  commonName: '2.5.4.3',
  extensionRequest: '1.2.840.113549.1.9.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
};

/** The signature algorithm and digest for a key (what acme-client chose: SHA-384 for P-384 only). */
function algorithmFor(key: KeyObject): { id: Buffer; digest: 'sha256' | 'sha384' } {
  if (key.asymmetricKeyType === 'rsa') return { id: seq(oid(OID.sha256WithRSA), tlv(0x05)), digest: 'sha256' };
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { id: seq(oid(OID.ecdsaWithSHA256)), digest: 'sha256' };
    if (curve === 'secp384r1') return { id: seq(oid(OID.ecdsaWithSHA384)), digest: 'sha384' };
  }
  throw new Error(`csr: unsupported key (${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.namedCurve ?? ''})`.trimEnd());
}

/**
 * A CSR for `names` (every one in subjectAltName), with `commonName` in the subject when given, signed by
 * `key`. Returns its DER, which is what newOrder's finalize takes (base64url, RFC 8555 §7.4).
 */
export function createCsr(key: KeyObject, names: string[], commonName?: string): Buffer {
  const { id, digest } = algorithmFor(key);
  const subject = commonName ? seq(set(seq(oid(OID.commonName), tlv(0x0c, Buffer.from(commonName, 'utf8'))))) : seq();
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  // GeneralName: [2] dNSName IA5String, [7] iPAddress OCTET STRING (implicit tags).
  const san = seq(...names.map((n) => (isIP(n) ? tlv(0x87, ipBytes(n)) : tlv(0x82, Buffer.from(n, 'ascii')))));
  // KeyUsage BIT STRING: digitalSignature (bit 0) and keyEncipherment (bit 2), 5 unused bits.
  const keyUsage = tlv(0x03, Buffer.from([0x05, 0xa0]));
  const extensions = seq(seq(oid(OID.keyUsage), tlv(0x04, keyUsage)), seq(oid(OID.subjectAltName), tlv(0x04, san)));
  const attributes = tlv(0xa0, seq(oid(OID.extensionRequest), set(extensions)));
  const info = seq(tlv(0x02, Buffer.from([0])), subject, spki, attributes);
  const signature = sign(digest, info, key);
  return seq(info, id, tlv(0x03, Buffer.from([0]), signature));
}

export function csrPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE REQUEST-----\n`;
}
