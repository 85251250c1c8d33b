/**
 * Issue 23: the new RSA key must sign and verify before it is handed out. The test supplies the key
 * builder (the step that turns two primes into a key), once building what rsaKeyFromPrimes builds and once
 * with a private exponent that is off: the first key is returned and works, the second is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { generateRsaKey, rsaKeyFromPrimes } from '../../src/certs/rsa-key.js';

/** The same key with d and its CRT values changed in one bit: n and e, the public half, are unchanged. */
function corrupted(key: KeyObject): KeyObject {
  const jwk = key.export({ format: 'jwk' });
  const flip = (b64: string) => {
    const b = Buffer.from(b64, 'base64url');
    b[b.length - 1]! ^= 2;
    return b.toString('base64url');
  };
  return createPrivateKey({ format: 'jwk', key: { ...jwk, d: flip(jwk.d!), dp: flip(jwk.dp!), dq: flip(jwk.dq!) } });
}

test('rsa key: a key whose sign/verify self-test fails is refused, naming the check; a sound one is returned', async () => {
  let built = 0;
  const sound = await generateRsaKey(2048, (p, q, bits) => {
    built++;
    return rsaKeyFromPrimes(p, q, bits);
  });
  assert.ok(built >= 1, 'the supplied builder was used');
  const probe = Buffer.from('probe');
  assert.ok(verify('sha256', probe, createPublicKey(sound), sign('sha256', probe, sound)));

  await assert.rejects(
    generateRsaKey(2048, (p, q, bits) => {
      const key = rsaKeyFromPrimes(p, q, bits);
      return key && corrupted(key);
    }),
    /^Error: rsa-key: the new key failed its sign\/verify check; no key was written$/,
  );
});
