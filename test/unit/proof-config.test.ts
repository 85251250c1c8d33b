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
