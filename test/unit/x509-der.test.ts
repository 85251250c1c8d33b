/**
 * Issue 22: parseCert reads a certificate's fields from its DER in JavaScript (src/certs/x509-der.ts) instead of
 * OpenSSL's X509 decoder. Every field must be what node's X509Certificate gives, and whatever is not the plain
 * case must be left to OpenSSL (readCertDer → undefined), never guessed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { explicit, integerBytes, oid, seq, set, smallInt, time, tlv, utf8 } from '../support/der-build.js';
import { readCertDer } from '../../src/certs/x509-der.js';
import { parseCert, dnToRfc2253, dnCommonName, sanNames } from '../../src/certs/parse.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { pemToDer, strictBase64 } from '../../src/certs/der.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ed = generateKeyPairSync('ed25519');

const RSA_SHA256 = seq(oid('1.2.840.113549.1.1.11'), tlv(0x05, Buffer.alloc(0)));
const RSA_SHA384 = seq(oid('1.2.840.113549.1.1.12'), tlv(0x05, Buffer.alloc(0)));
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const ED25519 = seq(oid('1.3.101.112'));
const printable = (s: string) => tlv(0x13, Buffer.from(s, 'latin1'));
const ia5 = (s: string) => tlv(0x16, Buffer.from(s, 'latin1'));

type Rdn = [string, Buffer][];
const name = (...rdns: Rdn[]) => seq(...rdns.map((r) => set(...r.map(([id, v]) => seq(oid(id), v)))));
const cn = (s: string) => name([['2.5.4.3', utf8(s)]]);

interface Spec {
  subject: Buffer;
  issuer?: Buffer;
  /** subjectAltName's GeneralNames, each already tagged; none: no SAN extension. */
  san?: Buffer[];
  serial?: Buffer;
  notBefore?: Date;
  notAfter?: Date;
  /** Signs with this key (default: the subject's own, `key`). */
  signer?: KeyObject;
  key?: { publicKey: KeyObject; privateKey: KeyObject };
  alg?: Buffer;
  outerAlg?: Buffer;
  digest?: string | null;
  /** The SubjectPublicKeyInfo as written (default: the key's own). */
  spki?: Buffer;
}

function build(s: Spec): string {
  const key = s.key ?? rsa;
  const alg = s.alg ?? RSA_SHA256;
  const spki = s.spki ?? key.publicKey.export({ type: 'spki', format: 'der' });
  const exts = s.san ? [explicit(3, seq(seq(oid('2.5.29.17'), tlv(0x04, seq(...s.san)))))] : [];
  const tbs = seq(explicit(0, smallInt(2)), integerBytes(s.serial ?? Buffer.from([0x01, 0x23])), alg, s.issuer ?? s.subject, seq(time(s.notBefore ?? new Date('2026-01-01T00:00:00Z')), time(s.notAfter ?? new Date('2027-01-01T00:00:00Z'))), s.subject, spki, ...exts);
  const sig = sign(s.digest === undefined ? 'sha256' : s.digest, tbs, s.signer ?? key.privateKey);
  const der = seq(tbs, s.outerAlg ?? alg, tlv(0x03, Buffer.concat([Buffer.from([0]), sig])));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** What node says, field for field. */
function node(pem: string) {
  const x = new X509Certificate(pem);
  return {
    subjectAltName: x.subjectAltName,
    subject: x.subject,
    issuer: x.issuer,
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    serialNumber: x.serialNumber,
    selfSigned: (x.issuer ?? '') === (x.subject ?? '') && x.verify(x.publicKey),
  };
}

/** parseCert as it was, all from OpenSSL: what the fast path must reproduce. */
function reference(pem: string) {
  const x = new X509Certificate(pem);
  const names = sanNames(x.subjectAltName);
  const commonName = dnCommonName(x.subject)?.toLowerCase();
  if (names.length === 0 && commonName) names.push(commonName);
  const hex = (h: Buffer) => h.toString('hex').match(/../g)!.join(':');
  return {
    commonName,
    names,
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    fingerprint: hex(createHash('sha256').update(x.raw).digest()),
    fingerprintSha1: hex(createHash('sha1').update(x.raw).digest()),
    issuer: dnToRfc2253(x.issuer),
    subject: dnToRfc2253(x.subject),
    serialNumber: BigInt(`0x${x.serialNumber}`).toString(10),
    selfSigned: node(pem).selfSigned,
  };
}

const ALL_ATTRIBUTES: Rdn[] = [
  [['2.5.4.6', printable('DE')]],
  [['2.5.4.8', utf8('Some-State')]],
  [['2.5.4.7', utf8('St. Gallen (Ost)')]],
  [['2.5.4.9', utf8('1 Main Street')]],
  [['2.5.4.17', utf8('12345')]],
  [['2.5.4.10', utf8("O'Reilly & Sons / Ltd.")]],
  [['2.5.4.11', utf8('IT: ops@home')]],
  [['2.5.4.12', utf8('Dr')]],
  [['2.5.4.4', utf8('Smith')]],
  [['2.5.4.42', utf8('Ann')]],
  [['2.5.4.5', printable('0042')]],
  [['1.2.840.113549.1.9.1', ia5('ops@example.com')]],
  [['0.9.2342.19200300.100.1.25', ia5('example')]],
  [['2.5.4.3', utf8('*.Example.COM')]],
];

test('the plain cases: every field is what node gives, and they are read without OpenSSL', async () => {
  const placeholder = await createSelfSigned(['p.example.com', 'www.p.example.com'], { sharedKey: true });
  const ipv6 = Buffer.from('20010db8000000000000000000000001', 'hex');
  const cases: [string, string][] = [
    ['a placeholder (self-signed, RSA)', placeholder.cert],
    ['every attribute in the table, issued by another key', build({ subject: name(...ALL_ATTRIBUTES), issuer: cn('Some CA'), signer: other.privateKey, san: [tlv(0x82, Buffer.from('A.Example.com')), tlv(0x82, Buffer.from('*.b.example.com'))] })],
    ['the same Name for issuer and subject, signed by another key (not self-signed)', build({ subject: cn('x.example'), signer: other.privateKey })],
    ['IPv4, IPv6 and DNS names', build({ subject: cn('ip.example'), issuer: cn('CA'), san: [tlv(0x87, Buffer.from([127, 0, 0, 1])), tlv(0x87, ipv6), tlv(0x82, Buffer.from('ip.example'))] })],
    ['no subject at all (Let’s Encrypt’s tlsserver profile)', build({ subject: seq(), issuer: cn('R10'), san: [tlv(0x82, Buffer.from('nocn.example'))] })],
    ['a CN and no SAN', build({ subject: cn('Old.Example'), issuer: cn('CA') })],
    ['a serial with its high bit set (a leading 00)', build({ subject: cn('s.example'), serial: Buffer.from('00ff00000000000000000000000000000001', 'hex') })],
    ['UTCTime in 1999 and GeneralizedTime in 2051', build({ subject: cn('t.example'), notBefore: new Date('1999-12-31T23:59:59Z'), notAfter: new Date('2051-06-01T12:00:00Z') })],
    ['ECDSA P-256, self-signed', build({ subject: cn('ec.example'), key: ec, alg: ECDSA_SHA256 })],
    ['Ed25519, self-signed', build({ subject: cn('ed.example'), key: ed, alg: ED25519, digest: null })],
    ['self-signed with the outer algorithm not the inner one (X509_verify refuses)', build({ subject: cn('alg.example'), outerAlg: RSA_SHA384 })],
  ];
  for (const [what, pem] of cases) {
    const fast = readCertDer(pemToDer(pem));
    assert.ok(fast, `${what}: read from the DER`);
    assert.deepEqual(fast, node(pem), what);
    assert.deepEqual({ ...parseCert(pem), names: [...parseCert(pem).names] }, reference(pem), what);
  }
  assert.equal(node(cases[0]![1]).selfSigned, true);
  assert.equal(node(cases[2]![1]).selfSigned, false);
  assert.equal(node(cases.at(-1)![1]).selfSigned, false);
});

test('what is not the plain case is left to OpenSSL, and parseCert still says what node says', () => {
  const cases: [string, string][] = [
    ['a comma in a value (RFC 2253 escapes it)', build({ subject: name([['2.5.4.10', utf8('Acme, Inc.')]]), issuer: cn('CA') })],
    ['a leading space', build({ subject: name([['2.5.4.3', utf8(' x')]]), issuer: cn('CA') })],
    ['non-ASCII', build({ subject: name([['2.5.4.3', utf8('zürich.example')]]), issuer: cn('CA') })],
    ['a multi-valued RDN', build({ subject: name([['2.5.4.3', utf8('a')], ['2.5.4.10', utf8('b')]]), issuer: cn('CA') })],
    ['an attribute not in the table', build({ subject: name([['2.5.4.97', utf8('VATDE-123')], ['2.5.4.3', utf8('x')]]), issuer: cn('CA') })],
    ['a BMPString', build({ subject: name([['2.5.4.3', tlv(0x1e, Buffer.from('\0x', 'latin1'))]]), issuer: cn('CA') })],
    ['a URI in the SAN', build({ subject: cn('u.example'), issuer: cn('CA'), san: [tlv(0x86, Buffer.from('https://u.example/')), tlv(0x82, Buffer.from('u.example'))] })],
    ['a DNS name with a comma', build({ subject: cn('c.example'), issuer: cn('CA'), san: [tlv(0x82, Buffer.from('a, DNS:b.example'))] })],
  ];
  for (const [what, pem] of cases) {
    assert.equal(readCertDer(pemToDer(pem)), undefined, what);
    assert.deepEqual({ ...parseCert(pem), names: [...parseCert(pem).names] }, reference(pem), what);
  }
  // Trailing bytes after the certificate, and a cut one: not read here; OpenSSL's error for the cut one.
  const der = pemToDer(cases[0]![1]);
  assert.equal(readCertDer(Buffer.concat([der, Buffer.from([0])])), undefined);
  assert.equal(readCertDer(der.subarray(0, 300)), undefined);
  const cut = `-----BEGIN CERTIFICATE-----\n${der.subarray(0, 300).toString('base64')}\n-----END CERTIFICATE-----\n`;
  assert.throws(() => parseCert(cut), (e: Error) => {
    assert.throws(() => new X509Certificate(cut), { message: e.message });
    return true;
  });
});

// Found by the review of issue 22's merge: where OpenSSL refuses a certificate, the fast path must not read it.
test('a cert.pem with a damaged base64 body does not parse, as OpenSSL says, instead of reading what is left', () => {
  const pem = build({ subject: cn('damaged.example'), san: [tlv(0x82, Buffer.from('damaged.example'))] });
  const lines = pem.split('\n');
  lines[2] = `${lines[2]!.slice(0, 10)}!!${lines[2]!.slice(10)}`;
  const damaged = lines.join('\n');
  assert.throws(() => new X509Certificate(damaged));
  assert.throws(() => parseCert(damaged));
  assert.equal(parseCert(pem).names[0], 'damaged.example');
});

test('strictBase64 reads only canonical base64, as OpenSSL does: whitespace aside, any other form is refused', () => {
  assert.deepEqual(strictBase64(' QUJD\nRA==\n'), Buffer.from('ABCD'));
  assert.deepEqual(strictBase64(''), Buffer.alloc(0));
  // Not canonical: a character outside the alphabet, base64url's, missing, extra or inner padding, a length not a
  // multiple of 4, and non-zero bits in the padding (QUJDRB== decodes to the same bytes as QUJDRA==).
  for (const text of ['QUJD!RA==', 'QUJ-', 'QUJ_', 'QUJDRA', 'QUJDRA=', 'QUJDRA===', 'QQ==QUJD', 'QUJ', 'QUJDRB==', 'QUJD=', '====', 'QUJD\u00e9RA=='])
    assert.equal(strictBase64(text), undefined, text);
});

test('a SubjectPublicKeyInfo that is not SEQUENCE { AlgorithmIdentifier, BIT STRING } is left to OpenSSL, which refuses it', () => {
  const pem = build({ subject: cn('spki.example'), issuer: cn('Some CA'), spki: seq(smallInt(1)) });
  assert.equal(readCertDer(pemToDer(pem)), undefined);
  assert.throws(() => new X509Certificate(pem));
  assert.throws(() => parseCert(pem));
});

test('an EC key under an RSA signature algorithm is not self-signed, as OpenSSL says', () => {
  const pem = build({ subject: cn('mislabelled.example'), key: ec, alg: RSA_SHA256 });
  assert.equal(node(pem).selfSigned, false);
  assert.equal(parseCert(pem).selfSigned, false);
  // The same key under its own algorithm is.
  assert.equal(parseCert(build({ subject: cn('labelled.example'), key: ec, alg: ECDSA_SHA256 })).selfSigned, true);
});
