/**
 * The few DNS messages the rfc2136 provider sends, in wire format: an UPDATE (RFC 2136) that adds or deletes
 * one TXT value, signed with TSIG (RFC 8945), and the parts of the answer we need (rcode, the TSIG record).
 * No npm DNS library encodes class NONE (the "delete this one value" form of RFC 2136 §2.5.4) or TSIG.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_TXT = 16;
const TYPE_SOA = 6;
const TYPE_TSIG = 250;
const CLASS_IN = 1;
/** RFC 2136 §2.5.4: class NONE with TTL 0 deletes exactly the record given, leaving other values. */
const CLASS_NONE = 254;
const CLASS_ANY = 255;
const OPCODE_UPDATE = 5;
/** RFC 8945 §5.2.3: 300 s is the recommended fudge (allowed clock difference). */
const FUDGE_SECONDS = 300;

export const TSIG_ALGORITHMS = ['hmac-md5', 'hmac-sha1', 'hmac-sha224', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512'] as const;
export type TsigAlgorithm = (typeof TSIG_ALGORITHMS)[number];

export interface TsigKey {
  name: string;
  algorithm: TsigAlgorithm;
  /** The shared secret, decoded from base64. */
  secret: Buffer;
}

/** hmac-md5's wire name is the old SIG-ALG.REG.INT one (RFC 8945 §6); the others are their own names. */
function algorithmName(a: TsigAlgorithm): string {
  return a === 'hmac-md5' ? 'hmac-md5.sig-alg.reg.int' : a;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function u48(n: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(n, 0, 6);
  return b;
}

/** A name in uncompressed wire form, lower-cased: the canonical form TSIG's MAC is computed over. */
export function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').toLowerCase().split('.').filter((l) => l !== '');
  const parts: Buffer[] = [];
  for (const l of labels) {
    const b = Buffer.from(l, 'ascii');
    if (b.length > 63) throw new Error(`DNS name ${name}: the label "${l}" is longer than 63 bytes`);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new Error(`DNS name ${name} is longer than 255 bytes`);
  return out;
}

function txtRdata(value: string): Buffer {
  const b = Buffer.from(value, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < b.length || i === 0; i += 255) {
    const c = b.subarray(i, i + 255);
    chunks.push(Buffer.from([c.length]), c);
  }
  return Buffer.concat(chunks);
}

function record(name: string, type: number, cls: number, ttl: number, rdata: Buffer): Buffer {
  return Buffer.concat([encodeName(name), u16(type), u16(cls), u32(ttl), u16(rdata.length), rdata]);
}

export interface TxtUpdate {
  id: number;
  zone: string;
  fqdn: string;
  value: string;
  action: 'add' | 'delete';
  ttl: number;
}

/** The UPDATE message without its TSIG record. */
export function updateMessage(u: TxtUpdate): Buffer {
  const header = Buffer.concat([u16(u.id), u16(OPCODE_UPDATE << 11), u16(1), u16(0), u16(1), u16(0)]);
  const zone = Buffer.concat([encodeName(u.zone), u16(TYPE_SOA), u16(CLASS_IN)]);
  const update = u.action === 'add' ? record(u.fqdn, TYPE_TXT, CLASS_IN, u.ttl, txtRdata(u.value)) : record(u.fqdn, TYPE_TXT, CLASS_NONE, 0, txtRdata(u.value));
  return Buffer.concat([header, zone, update]);
}

/** An IPv6 address's 16 bytes ("::" expanded; an embedded IPv4 tail is not used in host addresses here). */
function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) throw new Error(`"${ip}" is not an IPv6 address this client writes`);
  return Buffer.concat(groups.map((g) => u16(parseInt(g, 16))));
}

export interface AddressUpdate {
  id: number;
  zone: string;
  fqdn: string;
  type: 'A' | 'AAAA';
  /** The record set afterwards, exactly: the old set is deleted and these added in the same message. */
  values: string[];
  ttl: number;
}

/**
 * The UPDATE that replaces one name's A or AAAA set (RFC 2136 §2.5.2: class ANY, TTL 0, no data deletes the
 * RRset of that type and name) with `values`, in one message the server applies whole or not at all.
 * Nothing else at the name (TXT, MX, the other address type) is in it.
 */
export function addressUpdateMessage(u: AddressUpdate): Buffer {
  const type = u.type === 'A' ? TYPE_A : TYPE_AAAA;
  const rdata = (v: string) => (u.type === 'A' ? Buffer.from(v.split('.').map(Number)) : ipv6Bytes(v));
  const records = [record(u.fqdn, type, CLASS_ANY, 0, Buffer.alloc(0)), ...u.values.map((v) => record(u.fqdn, type, CLASS_IN, u.ttl, rdata(v)))];
  const header = Buffer.concat([u16(u.id), u16(OPCODE_UPDATE << 11), u16(1), u16(0), u16(records.length), u16(0)]);
  const zone = Buffer.concat([encodeName(u.zone), u16(TYPE_SOA), u16(CLASS_IN)]);
  return Buffer.concat([header, zone, ...records]);
}

interface TsigFields {
  algorithm: string;
  timeSigned: number;
  fudge: number;
  error: number;
  other: Buffer;
}

/** RFC 8945 §4.3.3: the TSIG variables that follow the message in the MAC's input. */
function tsigVariables(keyName: string, f: TsigFields): Buffer {
  return Buffer.concat([encodeName(keyName), u16(CLASS_ANY), u32(0), encodeName(f.algorithm), u48(f.timeSigned), u16(f.fudge), u16(f.error), u16(f.other.length), f.other]);
}

function mac(key: TsigKey, parts: Buffer[]): Buffer {
  const h = createHmac(key.algorithm.slice('hmac-'.length), key.secret);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Appends a TSIG record to `message` (ARCOUNT + 1) and returns the signed message and its MAC. */
export function sign(message: Buffer, key: TsigKey, now: number): { signed: Buffer; mac: Buffer } {
  const fields: TsigFields = { algorithm: algorithmName(key.algorithm), timeSigned: Math.floor(now / 1000), fudge: FUDGE_SECONDS, error: 0, other: Buffer.alloc(0) };
  const digest = mac(key, [message, tsigVariables(key.name, fields)]);
  const id = message.readUInt16BE(0);
  const rdata = Buffer.concat([encodeName(fields.algorithm), u48(fields.timeSigned), u16(fields.fudge), u16(digest.length), digest, u16(id), u16(0), u16(0)]);
  const signed = Buffer.concat([message, record(key.name, TYPE_TSIG, CLASS_ANY, 0, rdata)]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { signed, mac: digest };
}

/** Skips a possibly compressed name and returns the offset after it; the name itself is returned too. */
function readName(buf: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let off = start;
  let end = -1;
  for (let hops = 0; hops < 128; hops++) {
    const len = buf.readUInt8(off);
    if (len === 0) return { name: labels.join('.'), end: end === -1 ? off + 1 : end };
    if ((len & 0xc0) === 0xc0) {
      if (end === -1) end = off + 2;
      off = buf.readUInt16BE(off) & 0x3fff;
      continue;
    }
    labels.push(buf.toString('ascii', off + 1, off + 1 + len).toLowerCase());
    off += 1 + len;
  }
  throw new Error('DNS answer: a name with a compression loop');
}

export interface Answer {
  id: number;
  rcode: number;
  /** The answer's TSIG record, if it carries one. */
  tsig?: { keyName: string; fields: TsigFields; mac: Buffer; originalId: number; start: number };
}

/** Reads the header and, when present, the TSIG record (always the last additional record). */
export function parseAnswer(buf: Buffer): Answer {
  if (buf.length < 12) throw new Error(`DNS answer of ${buf.length} bytes is shorter than a header`);
  const id = buf.readUInt16BE(0);
  const rcode = buf.readUInt16BE(2) & 0x0f;
  const [qd, an, ns, ar] = [4, 6, 8, 10].map((o) => buf.readUInt16BE(o)) as [number, number, number, number];
  let off = 12;
  for (let i = 0; i < qd; i++) off = readName(buf, off).end + 4;
  let tsig: Answer['tsig'];
  for (let i = 0; i < an + ns + ar; i++) {
    const start = off;
    const owner = readName(buf, off);
    off = owner.end;
    const type = buf.readUInt16BE(off);
    const rdlen = buf.readUInt16BE(off + 8);
    const rdata = off + 10;
    off = rdata + rdlen;
    if (type !== TYPE_TSIG || i !== an + ns + ar - 1) continue;
    const alg = readName(buf, rdata);
    let p = alg.end;
    const timeSigned = buf.readUIntBE(p, 6);
    const fudge = buf.readUInt16BE(p + 6);
    const macLen = buf.readUInt16BE(p + 8);
    const macBytes = Buffer.from(buf.subarray(p + 10, p + 10 + macLen));
    p += 10 + macLen;
    const originalId = buf.readUInt16BE(p);
    const error = buf.readUInt16BE(p + 2);
    const otherLen = buf.readUInt16BE(p + 4);
    const other = Buffer.from(buf.subarray(p + 6, p + 6 + otherLen));
    tsig = { keyName: owner.name, fields: { algorithm: alg.name, timeSigned, fudge, error, other }, mac: macBytes, originalId, start };
  }
  return { id, rcode, ...(tsig ? { tsig } : {}) };
}

/**
 * RFC 8945 §5.3: an answer's MAC covers the request's MAC, the answer without its TSIG record (ARCOUNT - 1,
 * the original id) and its TSIG variables. A forged "NOERROR" must not pass for a written record.
 */
export function verifyAnswer(buf: Buffer, answer: Answer, key: TsigKey, requestMac: Buffer): boolean {
  const t = answer.tsig;
  if (!t || t.mac.length === 0) return false;
  const body = Buffer.from(buf.subarray(0, t.start));
  body.writeUInt16BE(t.originalId, 0);
  body.writeUInt16BE(body.readUInt16BE(10) - 1, 10);
  const expected = mac(key, [u16(requestMac.length), requestMac, body, tsigVariables(t.keyName, t.fields)]);
  return expected.length === t.mac.length && timingSafeEqual(expected, t.mac);
}
