/**
 * Issue 23 (mutation run of src/domains.ts): the edges the name tests left open. IP identifiers (RFC 8738):
 * refused unless allowed, and private ranges refused at each range's first and last address but not one past
 * it; a wildcard under a public suffix; what one source's repeated requests keep of the key type, key reuse and
 * profile; the folder name of an IPv6 certificate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { certName, mergeWanted, normaliseIp, normaliseName, parseDomainList, type WantedCert } from '../../src/domains.js';

const allow = { allowIps: true };

test('IP identifiers: refused unless DOMAINS allows them (PROFILE=shortlived), saying how', () => {
  for (const opts of [{}, { allowIps: false }]) {
    assert.throws(() => normaliseIp(' 203.0.113.7 ', opts), (e: Error) => e.message === '"203.0.113.7" is an IP address; IP certificates (RFC 8738) are ordered only in DOMAINS with PROFILE=shortlived, the one Let\'s Encrypt profile that issues them');
  }
  assert.equal(normaliseIp('203.0.113.7', allow), '203.0.113.7');
  assert.equal(normaliseIp(' [2001:DB8:0:0::1] ', allow), '2001:db8::1', 'canonical form, brackets dropped');
});

test('IP identifiers: private, loopback, link-local, shared and unique-local ranges are refused at both ends, the addresses beside them taken', () => {
  const refused = [
    '10.0.0.0', '10.255.255.255', '127.0.0.1', '169.254.0.1', '169.254.255.255', '192.168.0.1', '192.168.255.255',
    '172.16.0.1', '172.19.0.1', '172.20.0.1', '172.29.0.1', '172.30.0.1', '172.31.255.255', '100.64.0.1', '100.69.0.1', '100.70.0.1', '100.99.0.1', '100.100.0.1', '100.119.0.1', '100.120.0.1', '100.127.255.255',
    '0.0.0.0', '::', '::1', 'fc00::1', 'fdff:ffff::1', 'fe80::1', 'fe9f::1', 'feaf::1', 'febf::1',
  ];
  for (const ip of refused) {
    assert.throws(() => normaliseIp(ip, allow), (e: Error) => e.message === `"${ip}" is a private, loopback or link-local address, which no public CA validates`, ip);
    assert.equal(normaliseIp(ip, { allowIps: true, allowReservedTlds: true }), ip, `${ip}: an own CA may`);
  }
  const taken = [
    '11.0.0.1', '9.255.255.255', '126.255.255.255', '128.0.0.1', '169.253.0.1', '169.255.0.1', '192.167.0.1', '192.169.0.1', '1.10.0.1', '1.127.0.1', '1.192.168.1',
    '172.15.255.255', '172.32.0.1', '172.1.0.1', '172.2.0.1', '172.3.0.1', '100.63.255.255', '100.128.0.1', '100.6.0.1', '100.7.0.1', '100.12.0.1', '100.1.0.1', '1.0.0.1', '200.0.0.1',
    '::2', '2001:db8::1', 'fb00::1', 'fe00::1', 'fec0::1', 'ff02::1', '2001:db8::fc00:1', '2001:db8::fe80:1',
  ];
  for (const ip of taken) assert.equal(normaliseIp(ip, allow), ip, ip);
});

test('DOMAINS: an IP address asked for twice in one certificate is one name; the certificate is named for folders', () => {
  const r = parseDomainList('2001:db8::1,[2001:DB8::1],203.0.113.7', 'DOMAINS', { dnsProvider: false, onePerName: false, allowedSuffixes: ['example.com'], allowIps: true });
  assert.deepEqual(r.refused, []);
  assert.deepEqual(r.certs, [{ name: '2001_db8__1', names: ['2001:db8::1', '203.0.113.7'], sources: ['DOMAINS'], origin: 'DOMAINS' }]);
  assert.equal(certName(['fe80::1:2']), 'fe80__1_2');
  const no = parseDomainList('203.0.113.7', 'DOMAINS', { dnsProvider: false, onePerName: false, allowedSuffixes: [] });
  assert.match(no.refused[0]!.error, /is an IP address; IP certificates \(RFC 8738\)/);
});

test('names: a wildcard directly under a public suffix is refused naming the suffix; a Unicode name that has no punycode form is refused', () => {
  assert.throws(() => normaliseName('*.co.uk', { allowWildcard: true }), (e: Error) => e.message === '"*.co.uk" is a wildcard directly under the public suffix co.uk; the CA refuses it');
  assert.throws(() => normaliseName('*.github.io', { allowWildcard: true }), /wildcard directly under the public suffix github\.io/);
  assert.throws(() => normaliseName('a\ufffdb.example.com', { allowWildcard: false }), (e: Error) => e.message === '"a\ufffdb.example.com" cannot be converted to punycode (IDNA)');
  assert.equal(normaliseName('xn--bcher-kva.example.com', { allowWildcard: false }), 'xn--bcher-kva.example.com', 'valid punycode is taken as written');
});

test('one source asking twice: the key type, key reuse and profile of the first request that names one are kept', () => {
  const c = (names: string[], extra: Partial<WantedCert> = {}): WantedCert => ({ name: 'a.example.com', names, sources: ['label on web'], origin: 'label', ...extra });
  const [first] = mergeWanted([[c(['a.example.com'])], [c(['a.example.com'], { keyType: 'rsa-2048', reuseKey: false, profile: 'tlsserver' })], [c(['a.example.com'], { keyType: 'ecdsa-p384', reuseKey: true, profile: 'classic' })]]);
  assert.equal(first!.keyType, 'rsa-2048');
  assert.equal(first!.reuseKey, false, 'a reuse_key of false is a choice, kept');
  assert.equal(first!.profile, 'tlsserver');
  const [own] = mergeWanted([[c(['a.example.com'], { keyType: 'ecdsa-p256', reuseKey: true, profile: 'classic' })], [c(['a.example.com'], { keyType: 'rsa-2048', reuseKey: false, profile: 'tlsserver' })]]);
  assert.deepEqual([own!.keyType, own!.reuseKey, own!.profile], ['ecdsa-p256', true, 'classic']);
});

test('DOMAINS: spaces around an IP address or a group do not change what is taken or what a refusal shows; a group of commas only is nothing', () => {
  const o = { dnsProvider: false, onePerName: false, allowedSuffixes: ['example.com', 'example.org'], allowIps: true };
  const r = parseDomainList(' 203.0.113.7 ; bad_name.example.com ; , , ; x.example.net ', 'DOMAINS', o);
  assert.deepEqual(r.certs.map((c) => c.names), [['203.0.113.7']]);
  assert.deepEqual(r.refused.map((x) => [x.spec, x.error]), [
    ['bad_name.example.com', '"bad_name.example.com": label "bad_name" may hold only a-z, 0-9 and inner hyphens'],
    ['x.example.net', '"x.example.net" is outside ALLOWED_DOMAINS (example.com, example.org)'],
  ]);
  assert.throws(() => normaliseIp(' 10.0.0.1 ', allow), (e: Error) => e.message.startsWith('"10.0.0.1" is a private'));
  const twice = mergeWanted([[{ name: 'a.example.com', names: ['a.example.com'], sources: ['DOMAINS'], origin: 'DOMAINS' }], [{ name: 'a.example.com', names: ['a.example.com'], sources: ['DOMAINS'], origin: 'DOMAINS' }]]);
  assert.deepEqual(twice[0]!.sources, ['DOMAINS']);
});
