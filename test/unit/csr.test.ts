/**
 * src/acme/csr.ts builds the order's CSR itself: OpenSSL must read it, verify its signature, and find every name
 * (DNS and IP, v4 and v6), the common name and the key usage acme-client's CSR carried, for each key type.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createCsr, csrPem } from '../../src/acme/csr.js';
import { generatePrivateKey, loadPrivateKey, KEY_TYPES } from '../../src/certs/keys.js';

const NAMES = ['www.example.com', `${'x'.repeat(63)}.${'y'.repeat(63)}.example.com`, '192.0.2.1', '2001:db8::1', '::ffff:198.51.100.7', ...Array.from({ length: 10 }, (_, i) => `n${i}.example.org`)];

for (const type of KEY_TYPES.filter((t) => t !== 'rsa-4096')) {
  test(`csr: a ${type} request verifies in openssl and names every identifier`, async () => {
    const der = createCsr(loadPrivateKey(await generatePrivateKey(type)), NAMES, 'www.example.com');
    const text = execFileSync('openssl', ['req', '-verify', '-noout', '-text'], { input: csrPem(der), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    assert.match(text, /Subject: CN ?= ?www\.example\.com\n/);
    assert.match(text, /Digital Signature, Key Encipherment/);
    assert.match(text, type === 'ecdsa-p384' ? /Signature Algorithm: ecdsa-with-SHA384/ : type.startsWith('rsa') ? /Signature Algorithm: sha256WithRSAEncryption/ : /Signature Algorithm: ecdsa-with-SHA256/);
    const san = /X509v3 Subject Alternative Name: *\n\s*(.*)\n/.exec(text)?.[1];
    assert.equal(san, 'DNS:www.example.com, DNS:' + NAMES[1] + ', IP Address:192.0.2.1, IP Address:2001:DB8:0:0:0:0:0:1, IP Address:0:0:0:0:0:FFFF:C633:6407, ' + NAMES.slice(5).map((n) => `DNS:${n}`).join(', '));
  });
}

test('csr: without a common name the subject is empty and the names are in subjectAltName only', async () => {
  const der = createCsr(loadPrivateKey(await generatePrivateKey('ecdsa-p256')), ['192.0.2.9']);
  const text = execFileSync('openssl', ['req', '-verify', '-noout', '-text'], { input: csrPem(der), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  assert.match(text, /Subject: *\n/);
  assert.match(text, /IP Address:192\.0\.2\.9\n/);
});
