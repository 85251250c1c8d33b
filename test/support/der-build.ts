/**
 * A DER writer (ITU-T X.690) just big enough to build X.509 leaf certificates (RFC 5280 §4.1) signed by a
 * test CA's key with node:crypto: the ACME front re-issues Pebble's leaves as Let's Encrypt's profiles shape
 * them (no CN, a 6-day lifetime), and tests mint certificates without ordering them.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export const tlv = (tag: number, content: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), length(content.length), content]);
export const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
export const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
export const octets = (b: Buffer): Buffer => tlv(0x04, b);
export const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 + n, inner);
export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));

/** An INTEGER from its content bytes (already minimal, as a serial taken from another certificate is). */
export const integerBytes = (b: Buffer): Buffer => tlv(0x02, b);

export function smallInt(n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; ; v = Math.floor(v / 256)) {
    bytes.unshift(v & 0xff);
    if (v < 256) break;
  }
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
}

export function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const groups: number[] = [];
    for (let v = n; ; v = Math.floor(v / 128)) {
      groups.unshift(v & 0x7f);
      if (v < 128) break;
    }
    out.push(...groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g)));
  }
  return tlv(0x06, Buffer.from(out));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after. */
export function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

const SHA256_WITH_RSA = seq(oid('1.2.840.113549.1.1.11'), tlv(0x05, Buffer.alloc(0)));
const ECDSA_WITH_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

function ext(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

/** An IP address's 4 or 16 bytes (RFC 5280 §4.2.1.6 iPAddress). */
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(groups.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

export interface LeafSpec {
  /** The serial's INTEGER content bytes. */
  serial: Buffer;
  /** The issuer Name as DER (the CA certificate's subject, byte for byte). */
  issuer: Buffer;
  /** The CA's subject key identifier: this leaf's authorityKeyIdentifier (what an ARI CertID is built from). */
  issuerKeyId: Buffer;
  /** The leaf's SubjectPublicKeyInfo as DER. */
  spki: Buffer;
  /** DNS names and IP addresses. */
  names: string[];
  notBefore: Date;
  notAfter: Date;
  /** A subject CN; none (an empty subject) when undefined, as Let's Encrypt's tlsserver and shortlived profiles. */
  commonName?: string;
  /** The CA's private key (RSA or P-256). */
  caKey: KeyObject | string;
}

/** A leaf certificate, PEM. */
export function buildLeaf(spec: LeafSpec): string {
  const key = typeof spec.caKey === 'string' ? createPrivateKey(spec.caKey) : spec.caKey;
  const algorithm = key.asymmetricKeyType === 'ec' ? ECDSA_WITH_SHA256 : SHA256_WITH_RSA;
  const subject = spec.commonName === undefined ? seq() : seq(set(seq(oid('2.5.4.3'), utf8(spec.commonName))));
  const san = seq(...spec.names.map((n) => (isIP(n) ? tlv(0x87, ipBytes(n)) : tlv(0x82, Buffer.from(n, 'ascii')))));
  const extensions = [
    // RFC 5280 §4.2.1.6: with an empty subject the SAN extension MUST be critical.
    ext('2.5.29.17', spec.commonName === undefined, san),
    ext('2.5.29.35', false, seq(tlv(0x80, spec.issuerKeyId))),
    ext('2.5.29.19', true, seq()),
    ext('2.5.29.15', true, tlv(0x03, Buffer.from([0x05, 0xa0]))), // digitalSignature, keyEncipherment
    ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // serverAuth
  ];
  const tbs = seq(explicit(0, smallInt(2)), integerBytes(spec.serial), algorithm, spec.issuer, seq(time(spec.notBefore), time(spec.notAfter)), subject, spec.spki, explicit(3, seq(...extensions)));
  const signature = sign('sha256', tbs, key);
  const der = seq(tbs, algorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}
