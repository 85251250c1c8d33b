/**
 * The RSA key check from the DER (src/certs/key-match.ts, issue 22) says what OpenSSL's X509_check_private_key
 * says, for PKCS#1 and PKCS#8 keys, matching or not, and leaves to OpenSSL what it cannot read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { pemToDer } from '../../src/certs/der.js';
import { rsaKeyMatchesCert } from '../../src/certs/key-match.js';
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

test('an EC key, an encrypted key or a cut-off key is left to OpenSSL', async () => {
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
