/**
 * Just enough of a DER reader (ITU-T X.690) to take apart an X.509 certificate (RFC 5280 §4.1): node's
 * X509Certificate gives neither the serial's DER bytes nor the Authority Key Identifier, and ACME Renewal
 * Information names a certificate by both (RFC 9773 §4.1).
 */

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

/** The element that starts at `offset`. Throws on a length that runs past the buffer. */
export function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new Error('DER: truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: multi-byte tags are not used in certificates');
  let len = buf[offset + 1]!;
  let contentStart = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || contentStart + n > buf.length) throw new Error('DER: bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[contentStart + i]!;
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > buf.length) throw new Error('DER: element runs past the end');
  return { tag, start: offset, contentStart, end };
}

/** The elements inside a constructed element (a SEQUENCE, a SET, an explicit tag). */
export function childrenOf(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end; ) {
    const t = readTlv(buf, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

export const contentOf = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.contentStart, t.end);
export const wholeOf = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end);

/** The dotted form of an OBJECT IDENTIFIER's content bytes. */
export function oidOf(content: Buffer): string {
  const parts: number[] = [Math.floor(content[0]! / 40), content[0]! % 40];
  let v = 0;
  for (let i = 1; i < content.length; i++) {
    v = v * 128 + (content[i]! & 0x7f);
    if (!(content[i]! & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** The parts of a certificate's TBSCertificate that ACME cares about, as DER. */
export interface TbsParts {
  /** The serial's INTEGER content bytes, exactly as encoded (a leading 00 kept). */
  serial: Buffer;
  /** The issuer Name, whole element. */
  issuer: Buffer;
  /** The subject Name, whole element. */
  subject: Buffer;
  /** The SubjectPublicKeyInfo, whole element. */
  spki: Buffer;
  /** extnID (dotted) → extnValue's OCTET STRING content. */
  extensions: Map<string, Buffer>;
}

const OID_TAG = 0x06;
const BOOLEAN_TAG = 0x01;

/** Takes a certificate's DER apart (RFC 5280 §4.1). Throws on anything that is not one. */
export function tbsParts(der: Buffer): TbsParts {
  const cert = readTlv(der, 0);
  const [tbs] = childrenOf(der, cert);
  if (!tbs) throw new Error('DER: not a certificate');
  const fields = childrenOf(der, tbs);
  // version [0] EXPLICIT is optional (absent means v1).
  const i = fields[0]?.tag === 0xa0 ? 1 : 0;
  const [serial, , issuer, , subject, spki] = fields.slice(i);
  if (!serial || !issuer || !subject || !spki) throw new Error('DER: TBSCertificate is missing fields');
  const extensions = new Map<string, Buffer>();
  const explicit = fields.find((f) => f.tag === 0xa3);
  if (explicit) {
    const [list] = childrenOf(der, explicit);
    for (const ext of list ? childrenOf(der, list) : []) {
      const parts = childrenOf(der, ext);
      const id = parts[0];
      const value = parts.find((p, j) => j > 0 && p.tag !== BOOLEAN_TAG);
      if (id?.tag === OID_TAG && value) extensions.set(oidOf(contentOf(der, id)), contentOf(der, value));
    }
  }
  return { serial: contentOf(der, serial), issuer: wholeOf(der, issuer), subject: wholeOf(der, subject), spki: wholeOf(der, spki), extensions };
}

/** RFC 5280 §4.2.1.1 authorityKeyIdentifier, §4.2.1.2 subjectKeyIdentifier. */
/** DER tags (X.690 §8) and the key algorithms (RFC 3279, RFC 5480) the fast readers know. */
export const TAG = { INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, OID: 0x06, SEQUENCE: 0x30, SET: 0x31 } as const;
export const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
export const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
export const OID_AUTHORITY_KEY_ID = '2.5.29.35';
export const OID_SUBJECT_KEY_ID = '2.5.29.14';

/** The keyIdentifier [0] of an AuthorityKeyIdentifier extension value, or undefined when it has none. */
export function authorityKeyId(parts: TbsParts): Buffer | undefined {
  const value = parts.extensions.get(OID_AUTHORITY_KEY_ID);
  if (!value) return undefined;
  const seq = readTlv(value, 0);
  const keyId = childrenOf(value, seq).find((t) => t.tag === 0x80);
  return keyId ? contentOf(value, keyId) : undefined;
}

/**
 * The bytes of a PEM body, or undefined when it is not canonical base64 (a character outside the alphabet, or
 * padding in the middle). Buffer.from(…, 'base64') skips what it cannot read, where OpenSSL refuses the file: a
 * damaged PEM read leniently would pass for a good one.
 */
export function strictBase64(body: string): Buffer | undefined {
  const text = body.replace(/\s+/g, '');
  // Encoding the bytes again gives the text back only when it is canonical: node's encoder writes only the
  // standard alphabet, padding only at the end and only as needed, a length that is a multiple of 4, so any
  // character node's decoder skipped or read leniently (base64url's - and _) shows as a difference. That is the
  // whole check (a pattern test before it cost a 10,000-certificate first pass 50–80 ms and refused nothing more).
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** A certificate's DER from its PEM (the first CERTIFICATE block). */
export function pemToDer(pem: string): Buffer {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error('no PEM CERTIFICATE block');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}
