/**
 * The RSA and EC key checks from the DER (src/certs/key-match.ts, issue 22) say what OpenSSL's
 * X509_check_private_key says, for PKCS#1, SEC1 and PKCS#8 keys, matching or not, and leave to OpenSSL what
 * they cannot read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { childrenOf, pemToDer, readTlv } from '../../src/certs/der.js';
import { explicit, oid, seq, set, smallInt, time, tlv, utf8 } from '../support/der-build.js';
import { ecKeyMatchesCert, keyMatchesCertFast, rsaKeyMatchesCert } from '../../src/certs/key-match.js';
import { keyMatchesCert } from '../../src/certs/parse.js';

const openssl = (key: string, cert: string) => new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));

test('RSA keys, PKCS#1 and PKCS#8, matching and not: the same answer as OpenSSL', async () => {
  const a = await createSelfSigned(['a.key-match.example']);
  const b = await createSelfSigned(['b.key-match.example']);
  const pkcs8 = createPrivateKey(a.key).export({ type: 'pkcs8', format: 'pem' }).toString();
  assert.match(a.key, /BEGIN RSA PRIVATE KEY/);
  for (const [key, cert, want] of [
    [a.key, a.cert, true],
    [b.key, a.cert, false],
    [pkcs8, a.cert, true],
    [pkcs8, b.cert, false],
  ] as const) {
    assert.equal(openssl(key, cert), want);
    assert.equal(rsaKeyMatchesCert(key, pemToDer(cert)), want);
    assert.equal(keyMatchesCert(key, cert), want);
  }
});

test('the RSA check leaves an EC key (to the EC check), an encrypted key or a cut-off key to OpenSSL', async () => {
  const cert = (await createSelfSigned(['c.key-match.example'])).cert;
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  assert.equal(rsaKeyMatchesCert(ec.export({ type: 'sec1', format: 'pem' }).toString(), pemToDer(cert)), undefined);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const encrypted = rsa.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString();
  assert.equal(rsaKeyMatchesCert(encrypted, pemToDer(cert)), undefined);
  const pkcs1 = rsa.export({ type: 'pkcs1', format: 'pem' }).toString();
  const cut = pkcs1.slice(0, pkcs1.length / 2);
  assert.equal(rsaKeyMatchesCert(cut, pemToDer(cert)), undefined);
  assert.throws(() => keyMatchesCert(cut, cert));
});

/** A minimal self-signed certificate for `key` (P-256 or P-384, or RSA), PEM. */
function certFor(pair: { publicKey: KeyObject; privateKey: KeyObject }): string {
  const ec = pair.publicKey.asymmetricKeyType === 'ec';
  const alg = ec ? seq(oid('1.2.840.10045.4.3.2')) : seq(oid('1.2.840.113549.1.1.11'), tlv(0x05, Buffer.alloc(0)));
  const name = seq(set(seq(oid('2.5.4.3'), utf8('k.key-match.example'))));
  const tbs = seq(explicit(0, smallInt(2)), smallInt(7), alg, name, seq(time(new Date('2026-01-01Z')), time(new Date('2027-01-01Z'))), name, pair.publicKey.export({ type: 'spki', format: 'der' }));
  const der = seq(tbs, alg, tlv(0x03, Buffer.concat([Buffer.from([0]), sign('sha256', tbs, pair.privateKey)])));
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;
}

test('EC keys, SEC1 and PKCS#8, P-256 and P-384, matching and not, and against RSA: the same answer as OpenSSL, without it', () => {
  const p256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const p256b = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const forms = (k: KeyObject) => [k.export({ type: 'sec1', format: 'pem' }).toString(), k.export({ type: 'pkcs8', format: 'pem' }).toString()];
  const certs = [p256, p256b, p384, rsa].map(certFor);
  for (const [i, pair] of [p256, p256b, p384].entries()) {
    for (const key of forms(pair.privateKey)) {
      for (const [j, cert] of certs.entries()) {
        const want = i === j;
        assert.equal(openssl(key, cert), want);
        assert.equal(ecKeyMatchesCert(key, pemToDer(cert)), want, `key ${i} cert ${j}`);
        assert.equal(keyMatchesCertFast(key, pemToDer(cert)), want);
        assert.equal(keyMatchesCert(key, cert), want);
      }
    }
  }
  // An RSA key against an EC certificate is no match, without OpenSSL either.
  const rsaKey = rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  assert.equal(openssl(rsaKey, certs[0]!), false);
  assert.equal(keyMatchesCertFast(rsaKey, pemToDer(certs[0]!)), false);
  // A SEC1 key without its public point (OpenSSL derives it): left to OpenSSL.
  const bare = Buffer.from(forms(p256.privateKey)[0]!.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const [version, secret] = childrenOf(bare, readTlv(bare, 0));
  const noPoint = seq(bare.subarray(version!.start, version!.end), bare.subarray(secret!.start, secret!.end), explicit(0, oid('1.2.840.10045.3.1.7')));
  const noPointPem = `-----BEGIN EC PRIVATE KEY-----\n${noPoint.toString('base64')}\n-----END EC PRIVATE KEY-----\n`;
  assert.equal(ecKeyMatchesCert(noPointPem, pemToDer(certs[0]!)), undefined);
  assert.equal(keyMatchesCert(noPointPem, certs[0]!), openssl(noPointPem, certs[0]!));
  assert.equal(keyMatchesCert(noPointPem, certs[0]!), true);
});

// Found by the review of issue 22's merge: OpenSSL and TLS servers load the FIRST key of the file.
test('a key file holding another key first, then the certificate\'s own: no match, as OpenSSL says', () => {
  const a = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const b = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = certFor(a);
  const pemOf = (k: KeyObject, type: 'pkcs8' | 'sec1') => k.export({ type, format: 'pem' }) as string;
  for (const file of [pemOf(b.privateKey, 'pkcs8') + pemOf(a.privateKey, 'sec1'), pemOf(b.privateKey, 'sec1') + pemOf(a.privateKey, 'pkcs8')]) {
    assert.equal(new X509Certificate(cert).checkPrivateKey(createPrivateKey(file)), false);
    assert.equal(keyMatchesCert(file, cert), false);
  }
  const r1 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const r2 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaFile = (r2.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string) + (r1.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string);
  assert.equal(keyMatchesCert(rsaFile, certFor(r1)), false);
  assert.equal(keyMatchesCert(pemOf(a.privateKey, 'sec1'), cert), true);
});
