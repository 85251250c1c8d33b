/** PREFLIGHT's and VERIFY's variables: defaults, and a bad value named with what is accepted. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';

test('VERIFY_ADDRS: host:port list, 443 when the port is left out; a bad entry is named', () => {
  assert.deepEqual(loadConfig({ VERIFY_ADDRS: '10.0.0.5, lb.internal:8443,[::1]:9443' }).verify.addrs, ['10.0.0.5:443', 'lb.internal:8443', '[::1]:9443']);
  assert.equal(loadConfig({}).verify.addrs, undefined);
  assert.equal(loadConfig({}).verify.enabled, true);
  assert.equal(loadConfig({}).verify.timeoutMs, 120_000);
  assert.throws(() => loadConfig({ VERIFY_ADDRS: 'lb:99999' }), /VERIFY_ADDRS="lb:99999" is not valid; accepted: comma-separated host:port/);
  assert.throws(() => loadConfig({ VERIFY_TIMEOUT: 'soon' }), /VERIFY_TIMEOUT/);
});

test('PREFLIGHT: a bad value, port or resolver is named', () => {
  assert.throws(() => loadConfig({ PREFLIGHT: 'maybe' }), /PREFLIGHT="maybe" is not valid/);
  assert.throws(() => loadConfig({ PREFLIGHT_HTTP_PORT: '0' }), /PREFLIGHT_HTTP_PORT="0" is not valid; accepted: a whole number from 1 to 65535/);
  assert.throws(() => loadConfig({ DNS_RESOLVERS: 'dns.google' }), /DNS_RESOLVERS="dns.google" is not valid/);
  assert.deepEqual(loadConfig({ DNS_RESOLVERS: '1.1.1.1, 8.8.8.8:53' }).preflight.resolvers, ['1.1.1.1', '8.8.8.8:53']);
  assert.equal(loadConfig({ STAGING: 'false', ACME_DIRECTORY_URL: 'https://localhost:14000/dir' }).preflight.enabled, false, 'a local test CA');
  assert.equal(loadConfig({ STAGING: 'false', ACME_DIRECTORY_URL: 'https://acme.zerossl.com/v2/DV90' }).preflight.enabled, true, 'any public production CA');
});

test('ACME_DIRECTORY_URLS: the CAs in order, each with its own numbered EAB and CA bundle; without it, the one CA as before', () => {
  const one = loadConfig({ ACME_DIRECTORY_URL: 'https://ca.example/dir', ACME_EAB_KID: 'k', ACME_EAB_HMAC_KEY: 'aGVsbG8' });
  assert.deepEqual(one.cas, [{ directoryUrl: 'https://ca.example/dir', eab: { kid: 'k', hmacKey: 'aGVsbG8' }, caBundle: undefined }]);
  assert.equal(one.productionDirectoryUrl, 'https://ca.example/dir');
  const two = loadConfig({ ACME_DIRECTORY_URLS: 'https://acme-v02.api.letsencrypt.org/directory, https://acme.zerossl.com/v2/DV90', ACME_EAB_KID_2: 'zk', ACME_EAB_HMAC_KEY_2: 'c2VjcmV0' });
  assert.deepEqual(two.cas.map((c) => [c.directoryUrl, c.eab?.kid]), [['https://acme-v02.api.letsencrypt.org/directory', undefined], ['https://acme.zerossl.com/v2/DV90', 'zk']]);
  assert.equal(two.productionDirectoryUrl, 'https://acme-v02.api.letsencrypt.org/directory', 'the preferred CA is the production directory everything else reads');
  assert.throws(() => loadConfig({ ACME_DIRECTORY_URLS: 'https://a.example/dir', ACME_DIRECTORY_URL: 'https://b.example/dir' }), /ACME_DIRECTORY_URL=.*unset when ACME_DIRECTORY_URLS lists the CAs/);
  assert.throws(() => loadConfig({ ACME_DIRECTORY_URLS: 'https://a.example/dir,ftp://b' }), /ACME_DIRECTORY_URLS entry 2="ftp:\/\/b" is not valid/);
  assert.throws(() => loadConfig({ ACME_DIRECTORY_URLS: 'https://a.example/dir,https://a.example/dir' }), /listed twice/);
  assert.throws(() => loadConfig({ ACME_DIRECTORY_URLS: 'https://a.example/dir,https://b.example/dir', ACME_EAB_KID_2: 'k' }), /ACME_EAB_HMAC_KEY_2=\(hidden\)/);
  assert.throws(() => loadConfig({ ACME_DIRECTORY_URLS: 'https://a.example/dir', ACME_CA_BUNDLE_1: '/nonexistent.pem' }), /ACME_CA_BUNDLE_1="\/nonexistent.pem" is not valid; accepted: a readable PEM file \(ENOENT\)/);
});
