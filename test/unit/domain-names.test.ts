/**
 * Issue 23: the name rules at their edges, as the operator reads the refusal: lengths one under and one
 * over (63-octet label, 253-character name), where "*" and "-" may stand, a suffix boundary that is a dot,
 * and how one source's repeated requests merge.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { certName, mergeWanted, normaliseName, originOf, parseDomainList, withinSuffixes, type WantedCert } from '../../src/domains.js';

const plain = { allowWildcard: false };
const wild = { allowWildcard: true };
const refused = (raw: string, re: RegExp, o: { allowWildcard: boolean; allowReservedTlds?: boolean } = wild) => assert.throws(() => normaliseName(raw, o), (e: Error) => (assert.match(e.message, re, raw), true));

test('name edges: trimmed, lower-cased, a trailing dot dropped; a Unicode name becomes punycode', () => {
  assert.equal(normaliseName('  WWW.Example.COM.  ', plain), 'www.example.com');
  assert.equal(normaliseName('Bücher.example.com', plain), 'xn--bcher-kva.example.com');
  assert.equal(normaliseName('*.Example.com', wild), '*.example.com');
  assert.equal(normaliseName('db.internal', { allowWildcard: false, allowReservedTlds: true }), 'db.internal');
  refused('.', /^empty name$/);
  refused('   ', /^empty name$/);
});

test('name edges: a label of 63 characters is taken, 64 is refused; a name of 253 is taken, 254 is refused', () => {
  const l63 = 'a'.repeat(63);
  assert.equal(normaliseName(`${l63}.example.com`, plain), `${l63}.example.com`);
  refused(`${'a'.repeat(64)}.example.com`, /has a label of 64 characters \(at most 63\)$/);
  // Labels of 63 and one shorter label, then ".example.com", to the exact length.
  const name = (len: number) => {
    const parts: string[] = [];
    let body = len - '.example.com'.length;
    while (body > 63) {
      parts.push('b'.repeat(63));
      body -= 64;
    }
    parts.push('c'.repeat(body));
    return `${parts.join('.')}.example.com`;
  };
  assert.equal(name(253).length, 253);
  assert.equal(normaliseName(name(253), plain), name(253));
  assert.equal(name(254).length, 254);
  refused(name(254), /is 254 characters long \(at most 253\)$/);
  // A wildcard counts its "*.": 251 + 2 is taken.
  assert.equal(normaliseName(`*.${name(251)}`, wild).length, 253);
  refused(`*.${name(252)}`, /is 254 characters long/);
});

test('name edges: what a label may hold; "*" only as the whole leftmost label; "--" only in punycode', () => {
  for (const [raw, re] of [
    ['a_b.example.com', /label "a_b" may hold only a-z, 0-9 and inner hyphens$/],
    ['-a.example.com', /label "-a" may hold only/],
    ['a-.example.com', /label "a-" may hold only/],
    ['a..example.com', /has an empty label$/],
    ['example', /is not a fully qualified name \(needs at least one dot\)$/],
    ['a.*.example.com', /"\*" is allowed only as the whole leftmost label$/],
    ['*a.example.com', /"\*" is allowed only as the whole leftmost label$/],
    ['**.example.com', /"\*" is allowed only/],
    ['[::1]', /is an IP address; only DNS names can be ordered$/],
    ['::1', /is an IP address/],
    ['xn--a.example.com', /is not valid punycode/],
    ['ab--c.example.com', /has "--" in positions 3-4/],
    ['\u0000.example.com', /may hold only|cannot be converted/],
  ] as [string, RegExp][]) refused(raw, re);
  assert.equal(normaliseName('a--b.example.com', plain), 'a--b.example.com', '"--" elsewhere than positions 3-4 is fine');
  assert.equal(normaliseName('a-b.example.com', plain), 'a-b.example.com');
  assert.equal(normaliseName('0.example.com', plain), '0.example.com');
  refused('*.example.com', /is a wildcard; wildcards are validated over DNS-01 only: set DNS_PROVIDER/, plain);
  refused('x.example', /reserved top-level domain \.example, which no public CA issues for \(reserved: \.test \.example \.invalid \.localhost \.local \.internal\)$/, plain);
  refused('co.uk', /^"co\.uk" is a public suffix \(anyone may register names under it\); the CA issues only for names under it, such as example\.co\.uk$/, plain);
});

test('name edges: a suffix is matched at a dot, a wildcard by its base; no suffixes allow every name', () => {
  assert.equal(withinSuffixes('example.com', ['example.com']), true);
  assert.equal(withinSuffixes('a.example.com', ['example.com']), true);
  assert.equal(withinSuffixes('*.example.com', ['example.com']), true);
  assert.equal(withinSuffixes('badexample.com', ['example.com']), false);
  assert.equal(withinSuffixes('example.com.evil.net', ['example.com']), false);
  assert.equal(withinSuffixes('a.example.org', ['example.com', 'example.org']), true);
  assert.equal(withinSuffixes('anything.net', []), true);
  const r = parseDomainList('a.example.com;b.badexample.com', 'DOMAINS', { dnsProvider: false, onePerName: false, allowedSuffixes: ['example.com'] });
  assert.deepEqual(r.certs.map((c) => c.name), ['a.example.com']);
  assert.deepEqual(r.refused, [{ spec: 'b.badexample.com', source: 'DOMAINS', error: '"b.badexample.com" is outside ALLOWED_DOMAINS (example.com)' }]);
});

test('name edges: DOMAINS grammar — ";" between certificates, "," between names, empty parts skipped, repeats dropped; the seed\'s one-per-name form', () => {
  const o = { dnsProvider: true, onePerName: false, allowedSuffixes: [] };
  const r = parseDomainList(' ; a.example.com, ,www.a.example.com,A.example.com ;; *.w.example.com ;', 'DOMAINS', o);
  assert.deepEqual(r.refused, []);
  assert.deepEqual(r.certs, [
    { name: 'a.example.com', names: ['a.example.com', 'www.a.example.com'], sources: ['DOMAINS'], origin: 'DOMAINS' },
    { name: '_.w.example.com', names: ['*.w.example.com'], sources: ['DOMAINS'], origin: 'DOMAINS' },
  ]);
  const seed = parseDomainList('a.example.com,b.example.com;c.example.com', 'DOMAINS', { ...o, onePerName: true });
  assert.deepEqual(seed.certs.map((c) => c.names), [['a.example.com'], ['b.example.com'], ['c.example.com']]);
  const bad = parseDomainList('ok.example.com,bad_name.example.com,later.example.com;fine.example.com', 'api', o);
  assert.deepEqual(bad.certs.map((c) => [c.name, c.origin]), [['fine.example.com', 'api']]);
  assert.equal(bad.refused[0]!.spec, 'ok.example.com,bad_name.example.com,later.example.com', 'refused whole');
  assert.equal(certName(['*.x.example.com', 'x.example.com']), '_.x.example.com');
  assert.deepEqual(['DOMAINS', 'api', 'label on web', 'Domains'].map(originOf), ['DOMAINS', 'api', 'label', 'label']);
});

test('name edges: one source asking twice merges into one certificate: the union of names in first-asked order, the first named challenge, the highest origin', () => {
  const c = (name: string, names: string[], origin: WantedCert['origin'], source: string, challenge?: 'http-01' | 'dns-01'): WantedCert => ({ name, names, sources: [source], origin, ...(challenge ? { challenge } : {}) });
  const first = c('a.example.com', ['a.example.com', 'b.example.com'], 'label', 'label on web');
  const merged = mergeWanted([[first], [c('a.example.com', ['a.example.com', 'c.example.com', 'b.example.com'], 'DOMAINS', 'DOMAINS', 'dns-01')], [c('a.example.com', ['d.example.com'], 'api', 'api', 'http-01')], [c('z.example.com', ['z.example.com'], 'api', 'api')]]);
  assert.deepEqual(merged, [
    { name: 'a.example.com', names: ['a.example.com', 'b.example.com', 'c.example.com', 'd.example.com'], sources: ['label on web', 'DOMAINS', 'api'], origin: 'DOMAINS', challenge: 'dns-01' },
    { name: 'z.example.com', names: ['z.example.com'], sources: ['api'], origin: 'api' },
  ]);
  assert.deepEqual(first.names, ['a.example.com', 'b.example.com'], 'the input is not changed');
  assert.deepEqual(mergeWanted([[c('a.example.com', ['a.example.com'], 'api', 'api')], [c('a.example.com', ['a.example.com'], 'label', 'label on x')]])[0]!.origin, 'api', 'a lower origin does not lower it');
});
