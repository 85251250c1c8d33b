import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { checkPrimeSync, createPrivateKey, createPublicKey, generatePrimeSync } from 'node:crypto';
import { generatePrivateKey } from '../../src/certs/keys.js';
import { rsaKeyFromPrimes } from '../../src/certs/rsa-key.js';

/** OpenSSL's own key check (primes, n = p·q, d, the CRT values), reading the key from stdin. */
function opensslCheck(pem: string): string {
  return execFileSync('openssl', ['rsa', '-check', '-noout', '-text'], { input: pem }).toString();
}

for (const [type, bits] of [['rsa-2048', 2048], ['rsa-3072', 3072]] as const) {
  test(`rsa key: ${type} keys pass openssl rsa -check, with e = 65537 and a modulus of exactly ${bits} bits`, async () => {
    const keys = await Promise.all([1, 2, 3].map(() => generatePrivateKey(type)));
    assert.equal(new Set(keys).size, 3, 'three different keys');
    for (const pem of keys) {
      assert.match(pem, /^-----BEGIN RSA PRIVATE KEY-----\n/);
      const out = opensslCheck(pem);
      assert.match(out, /RSA key ok/);
      assert.match(out, new RegExp(`Private-Key: \\(${bits} bit, 2 primes\\)`));
      assert.match(out, /publicExponent: 65537 /);
      const jwk = createPublicKey(pem).export({ format: 'jwk' });
      assert.equal(Buffer.from(jwk.n!, 'base64url').length * 8, bits);
      const priv = createPrivateKey(pem).export({ format: 'jwk' });
      const big = (b64: string) => BigInt(`0x${Buffer.from(b64, 'base64url').toString('hex')}`);
      assert.ok(big(priv.p!) > big(priv.q!), 'p > q, as OpenSSL orders them');
    }
  });
}

test('rsa key: primes too close together (Fermat-factorable) or too short for the size are refused', () => {
  const p = generatePrimeSync(1024, { bigint: true });
  let q = p + 2n;
  while (!checkPrimeSync(q)) q += 2n;
  assert.equal(rsaKeyFromPrimes(p, q, 2048), undefined, 'neighbouring primes');
  const q2 = generatePrimeSync(1024, { bigint: true });
  const short1 = generatePrimeSync(1000, { bigint: true });
  const short2 = generatePrimeSync(1000, { bigint: true });
  assert.equal(rsaKeyFromPrimes(short1, short2, 2048), undefined, 'a 2000-bit modulus is not RSA-2048');
  // A prime with p − 1 divisible by e leaves d undefined.
  const r = generatePrimeSync(1024, { bigint: true, add: 65537n, rem: 1n });
  assert.equal(rsaKeyFromPrimes(r, q2, 2048), undefined, 'p ≡ 1 mod e');
  assert.match(opensslCheck(rsaKeyFromPrimes(p, q2, 2048)!.export({ type: 'pkcs1', format: 'pem' }).toString()), /RSA key ok/);
});
