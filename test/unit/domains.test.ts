/**
 * The name rules: what the CA would refuse is refused at discovery, with the reason, for every source.
 * Each row says what Pebble 2.4.0 (Debian 2.4.0+ds1) answered at new-order for the same identifiers, run once
 * with acme-client's createOrder against `test/support/pebble.ts`: Pebble accepts every one of them (status
 * "pending") except an IP address given as a DNS name. Let's Encrypt's Boulder refuses them all (public
 * suffixes and TLDs outside its list, R-LDH labels, bad punycode, more than 100 names); Pebble is a test CA
 * that checks far less, so without these rules each would be ordered, and on Let's Encrypt spent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_NAMES_PER_CERT, parseDomainList } from '../../src/domains.js';
import { loadConfig } from '../../src/config.js';

const opts = { dnsProvider: true, onePerName: false, allowedSuffixes: [] };

/** [the certificate asked for, the reason we give (undefined: taken), what Pebble 2.4.0 answered at new-order]. */
const ROWS: Array<[string, RegExp | undefined, string]> = [
  ['co.uk', /"co\.uk" is a public suffix/, 'accepted (pending)'],
  ['github.io', /"github\.io" is a public suffix/, 'accepted (pending): a private-section suffix, refused as Let\'s Encrypt reads the list'],
  ['*.co.uk', /wildcard directly under the public suffix co\.uk/, 'accepted (pending)'],
  ['host.local', /reserved top-level domain \.local/, 'accepted (pending)'],
  ['example.test', /reserved top-level domain \.test/, 'accepted (pending)'],
  ['x.invalid', /reserved top-level domain \.invalid/, 'accepted (pending)'],
  ['x.example', /reserved top-level domain \.example/, 'accepted (pending)'],
  ['x.localhost', /reserved top-level domain \.localhost/, 'accepted (pending)'],
  ['db.internal', /reserved top-level domain \.internal/, 'accepted (pending)'],
  ['ab--cd.example.com', /label "ab--cd" has "--" in positions 3-4/, 'accepted (pending)'],
  ['xn--zz.example.com', /label "xn--zz" is not valid punycode/, 'accepted (pending)'],
  [Array.from({ length: MAX_NAMES_PER_CERT + 1 }, (_, i) => `n${i}.example.com`).join(','), /101 names in one certificate; the CA takes at most 100/, 'accepted (pending)'],
  ['10.0.0.1', /IP address/, 'refused: urn:ietf:params:acme:error:malformed "Order included a DNS identifier with an IP address value: \\"10.0.0.1\\""'],
  // Taken: not reserved, and under a public suffix.
  ['example.com', undefined, 'accepted (pending)'],
  ['app.example.com', undefined, 'accepted (pending)'],
  ['*.example.com', undefined, 'accepted (pending)'],
  ['foo.github.io', undefined, 'accepted (pending)'],
  ['example.co.uk', undefined, 'accepted (pending)'],
  ['xn--bcher-kva.example.com', undefined, 'accepted (pending)'],
  ['bücher.example.com', undefined, 'accepted (pending), as xn--bcher-kva.example.com'],
  [Array.from({ length: MAX_NAMES_PER_CERT }, (_, i) => `n${i}.example.com`).join(','), undefined, 'accepted (pending)'],
];

for (const [spec, reason, pebble] of ROWS) {
  test(`name rules: ${spec.length > 40 ? `${spec.split(',').length} names` : spec} → ${reason ? 'refused' : 'taken'} (Pebble 2.4.0: ${pebble.split(':')[0]})`, () => {
    for (const source of ['DOMAINS', 'api', 'label com.danieldent.rancher-lets-encrypt.hosts on service web (1s1)']) {
      const d = parseDomainList(spec, source, opts);
      if (reason) {
        assert.deepEqual(d.certs, [], `${source}: never ordered`);
        assert.equal(d.refused.length, 1);
        assert.match(d.refused[0]!.error, reason);
        assert.equal(d.refused[0]!.source, source);
      } else {
        assert.deepEqual(d.refused, [], `${source}: ${d.refused[0]?.error}`);
        assert.equal(d.certs.length, 1);
      }
    }
  });
}

test('name rules: one refused certificate does not stop the others in DOMAINS', () => {
  const d = parseDomainList('shop.example.com;co.uk;host.local,www.example.com;api.example.com', 'DOMAINS', opts);
  assert.deepEqual(d.certs.map((c) => c.name), ['shop.example.com', 'api.example.com']);
  assert.deepEqual(d.refused.map((r) => r.spec), ['co.uk', 'host.local,www.example.com']);
});

test('name rules: with a CA of the operator\'s own (ACME_DIRECTORY_URL not Let\'s Encrypt), DOMAINS may name private TLDs; labels and the API never', () => {
  const ownCa = { ACME_DIRECTORY_URL: 'https://ca.corp.internal/acme/acme/directory', ACME_STAGING_DIRECTORY_URL: 'https://ca.corp.internal/acme/staging/directory' };
  const own = loadConfig({ DOMAINS: 'wiki.corp.internal;printer.local', ...ownCa });
  assert.deepEqual(own.domains.certs.map((c) => c.name), ['wiki.corp.internal', 'printer.local']);
  assert.deepEqual(own.domains.refused, []);
  const le = loadConfig({ DOMAINS: 'wiki.corp.internal' });
  assert.match(le.domains.refused[0]!.error, /reserved top-level domain \.internal/, 'Let\'s Encrypt never issues them: refused before any order');
  // Only production moved to the own CA: STAGING (on by default) would still order from Let's Encrypt staging.
  const half = loadConfig({ DOMAINS: 'wiki.corp.internal', ACME_DIRECTORY_URL: ownCa.ACME_DIRECTORY_URL });
  assert.match(half.domains.refused[0]!.error, /reserved top-level domain \.internal/);
  const slash = loadConfig({ DOMAINS: 'wiki.corp.internal', ...ownCa, ACME_DIRECTORY_URL: 'https://acme-v02.api.letsencrypt.org/directory/' });
  assert.match(slash.domains.refused[0]!.error, /reserved top-level domain/, 'Let\'s Encrypt by its host, whatever the path');
  for (const source of ['api', 'label com.danieldent.rancher-lets-encrypt.hosts on service web (1s1)']) {
    assert.match(parseDomainList('wiki.corp.internal', source, opts).refused[0]!.error, /reserved top-level domain/, source);
  }
});
