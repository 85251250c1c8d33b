/**
 * Ownership of certificate names (DOMAINS > API > labels, first label claim wins, kept in DATA_DIR) and
 * the label policy (suffixes, dns-01, caps, stacks). Pure functions and the claims file; the end-to-end
 * view with Rancher and Pebble is test/e2e/labels.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDomainList, type WantedCert } from '../../src/domains.js';
import { checkLabels, type LabelPolicy } from '../../src/label-policy.js';
import { ClaimsBook, resolveOwnership, type ClaimsFile } from '../../src/ownership.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const opts = { dnsProvider: true, onePerName: false, allowedSuffixes: [] };
const domains = (v: string) => parseDomainList(v, 'DOMAINS', opts).certs;
const api = (v: string) => parseDomainList(v, 'api', opts).certs;
function label(service: string, v: string, extra: Partial<WantedCert> = {}): WantedCert[] {
  return parseDomainList(v, `label hosts on service ${service} (id-${service})`, opts).certs.map((c) => ({ ...c, service: { id: `id-${service}`, name: service, stackId: '1st1', stack: 'default' }, ...extra }));
}
const policy = (p: Partial<LabelPolicy> = {}): LabelPolicy => ({ allowedDomains: [], allowedDomainsFrom: 'ALLOWED_DOMAINS', allowDns01: false, maxCerts: 10, maxNames: 20, maxNewPerDay: 5, stacks: undefined, ...p });
const empty = (): ClaimsFile => ({ version: 1, claims: {}, newSets: {} });
const T0 = new Date('2027-03-01T00:00:00Z');

function resolve(input: { domains?: WantedCert[]; api?: WantedCert[]; labels?: WantedCert[]; claims?: ClaimsFile; now?: Date; max?: number; copies?: string[] }) {
  return resolveOwnership({
    domains: input.domains ?? [],
    api: input.api ?? [],
    labels: input.labels ?? [],
    claims: input.claims ?? empty(),
    now: input.now ?? T0,
    maxNewPerDay: input.max ?? 5,
    hasCopy: async (name) => (input.copies ?? []).includes(name),
  });
}

test('ownership: a label naming a DOMAINS certificate plus another name is refused; the certificate keeps its names and challenge', async () => {
  const r = await resolve({ domains: domains('shop.example.com'), labels: label('hostile', 'shop.example.com,anything.example.com', { challenge: 'dns-01' }) });
  assert.deepEqual(r.wanted.map((w) => [w.name, w.names, w.sources, w.challenge]), [['shop.example.com', ['shop.example.com'], ['DOMAINS'], undefined]]);
  assert.equal(r.refused.length, 1);
  assert.equal(r.refused[0]!.service, 'hostile (id-hostile)');
  assert.match(r.refused[0]!.error, /certificate shop\.example\.com belongs to DOMAINS; a label cannot add anything\.example\.com to it/);
  assert.deepEqual(r.claims.claims, {}, 'a refused request claims nothing');
});

test('ownership: a lower source asking for exactly what the owner has is served by it, not refused; the challenge stays the owner\'s', async () => {
  const r = await resolve({ domains: domains('app.example.com,www.app.example.com'), labels: label('mirror', 'app.example.com', { challenge: 'dns-01' }) });
  assert.deepEqual(r.refused, []);
  assert.deepEqual(r.wanted.map((w) => [w.name, w.names, w.origin, w.challenge]), [['app.example.com', ['app.example.com', 'www.app.example.com'], 'DOMAINS', undefined]]);
  assert.equal(r.wanted[0]!.sources.length, 2);
});

test('ownership: names inside another source\'s certificate are refused (API under DOMAINS, label under API)', async () => {
  const r = await resolve({ domains: domains('shop.example.com,www.shop.example.com'), api: [...api('www.shop.example.com'), ...api('blog.example.com,cdn.example.com')], labels: label('x', 'cdn.example.com') });
  assert.deepEqual(r.wanted.map((w) => w.name), ['shop.example.com', 'blog.example.com']);
  assert.match(r.refused[0]!.error, /"www\.shop\.example\.com" is already in certificate shop\.example\.com of DOMAINS/);
  assert.match(r.refused[1]!.error, /"cdn\.example\.com" is already in certificate blog\.example\.com of the request API/);
});

test('ownership: DOMAINS merges with itself as before (the operator\'s own list)', async () => {
  const r = await resolve({ domains: domains('a.example.com,b.example.com;a.example.com,c.example.com;b.example.com') });
  assert.deepEqual(r.wanted.map((w) => [w.name, w.names]), [['a.example.com', ['a.example.com', 'b.example.com', 'c.example.com']], ['b.example.com', ['b.example.com']]]);
  assert.deepEqual(r.refused, []);
});

test('ownership: between labels the first claim keeps the name across restarts, whatever the list order; freed when its service stops asking', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-claims-'));
  const book = new ClaimsBook(new FilesStore(dir));
  const first = await resolve({ labels: [...label('first', 'shop.example.com'), ...label('second', 'other.example.com')], claims: await book.load() });
  await book.save(first.claims);
  assert.equal(statSync(book.path).mode & 0o777, 0o600);
  // A restart, and the intruder now listed first.
  const again = await resolve({ labels: [...label('intruder', 'shop.example.com,evil.example.com'), ...label('intruder2', 'shop.example.com'), ...label('first', 'shop.example.com')], claims: await new ClaimsBook(new FilesStore(dir)).load(), now: new Date(T0.getTime() + 3600_000) });
  assert.deepEqual(again.wanted.map((w) => [w.name, w.service?.name]), [['shop.example.com', 'first']]);
  assert.match(again.refused[0]!.error, /belongs to the label on service first \(id-first\)/);
  assert.equal(again.refused[0]!.service, 'intruder (id-intruder)');
  assert.equal(again.claims.claims['shop.example.com']!.service, 'id-first');
  assert.equal(again.claims.claims['other.example.com'], undefined, 'second stopped asking: its claim is freed');
  // first stops asking: the next service takes it.
  const freed = await resolve({ labels: label('intruder', 'shop.example.com'), claims: again.claims, now: new Date(T0.getTime() + 7200_000) });
  assert.deepEqual(freed.refused, []);
  assert.equal(freed.claims.claims['shop.example.com']!.service, 'id-intruder');
});

test('ownership: LABEL_MAX_NEW_PER_DAY counts new name sets per service in 24 hours; a changed certificate keeps its previous names meanwhile', async () => {
  let claims = empty();
  const at = (h: number) => new Date(T0.getTime() + h * 3600_000);
  const taken: string[] = [];
  for (let i = 0; i < 8; i++) {
    const r = await resolve({ labels: label('churn', `churn.example.com,n${i}.example.com`), claims, now: at(i), max: 3 });
    claims = r.claims;
    if (r.refused.length === 0) taken.push(r.wanted[0]!.names[1]!);
    else {
      assert.match(r.refused[0]!.error, /was given 3 new name sets in the last 24 hours \(LABEL_MAX_NEW_PER_DAY=3\).*next one after 2027-03-02T00:00:00\.000Z; churn\.example\.com keeps its previous names \(churn\.example\.com, n2\.example\.com\)/);
      assert.deepEqual(r.wanted[0]!.names, ['churn.example.com', 'n2.example.com']);
    }
  }
  assert.deepEqual(taken, ['n0.example.com', 'n1.example.com', 'n2.example.com']);
  // A day after the first, one more set is allowed; an unchanged set never counts.
  const later = await resolve({ labels: label('churn', 'churn.example.com,late.example.com'), claims, now: at(24), max: 3 });
  assert.deepEqual(later.refused, []);
  const same = await resolve({ labels: label('churn', 'churn.example.com,late.example.com'), claims: later.claims, now: at(24.5), max: 3 });
  assert.deepEqual(same.refused, []);
  assert.equal(same.newSets.size, 0);
  // A set the local store already holds (an existing install, before claims were kept) is not new.
  const existing = await resolve({ labels: label('old', 'a.example.com;b.example.com'), now: at(0), max: 0, copies: ['a.example.com', 'b.example.com'] });
  assert.deepEqual(existing.refused, []);
});

test('label policy: suffixes, wildcards and dns-01, names and certificates per service, stacks', () => {
  const certs = [
    ...label('web', 'web.apps.example.com'),
    ...label('web', 'evil.example.org'),
    ...label('web', '*.apps.example.com'),
    ...label('dns', 'dns.apps.example.com', { challenge: 'dns-01' }),
    ...label('big', Array.from({ length: 21 }, (_, i) => `n${i}.apps.example.com`).join(',')),
    ...label('many', Array.from({ length: 12 }, (_, i) => `m${i}.apps.example.com`).join(';')),
  ];
  const r = checkLabels(certs, policy({ allowedDomains: ['apps.example.com'], allowedDomainsFrom: 'LABEL_ALLOWED_DOMAINS' }));
  const why = r.refused.map((x) => `${x.service}: ${x.error}`);
  assert.match(why[0]!, /^web \(id-web\): "evil\.example\.org" is outside LABEL_ALLOWED_DOMAINS \(apps\.example\.com\)/);
  assert.match(why[1]!, /^web \(id-web\): "\*\.apps\.example\.com" is a wildcard; wildcards from labels are off .*LABELS_ALLOW_DNS01=true/);
  assert.match(why[2]!, /^dns \(id-dns\): the label asks for dns-01; dns-01 from labels is off/);
  assert.match(why[3]!, /^big \(id-big\): 21 names in one certificate; a label may ask for at most 20 \(LABEL_MAX_NAMES\)/);
  assert.equal(why.filter((w) => /^many .*more than 10 certificates \(LABEL_MAX_CERTS\)/.test(w)).length, 2);
  assert.equal(r.certs.length, 11);
  assert.ok(r.certs.every((c) => c.challenge === 'http-01'), 'without LABELS_ALLOW_DNS01 a label certificate is validated over HTTP-01 whatever CHALLENGE says');

  const open = checkLabels(certs.slice(2, 4), policy({ allowDns01: true }));
  assert.deepEqual(open.refused, []);
  assert.equal(open.certs[1]!.challenge, 'dns-01');

  const stacks = checkLabels([...label('web', 'a.example.com'), ...label('other', 'b.example.com').map((c) => ({ ...c, service: { ...c.service!, stackId: '1st9', stack: 'tenants' } }))], policy({ stacks: ['1st1'] }));
  assert.deepEqual(stacks.certs.map((c) => c.name), ['a.example.com']);
  assert.match(stacks.refused[0]!.error, /service other \(id-other\) is in stack tenants; LABEL_STACKS lets only services of 1st1 use the label/);
});

test('the request API refuses at once what DOMAINS owns (409), and takes what it merely repeats', async () => {
  const { RequestBook, RequestError } = await import('../../src/requests.js');
  const book = new RequestBook(new FilesStore(mkdtempSync(join(tmpdir(), 'cw-req-'))), opts, domains('shop.example.com,www.shop.example.com'));
  await assert.rejects(book.put('shop.example.com', ['shop.example.com', 'evil.example.com']), (e: Error) => e instanceof RequestError && e.status === 409 && /certificate shop\.example\.com belongs to DOMAINS; the request API cannot add evil\.example\.com/.test(e.message));
  await assert.rejects(book.put('www.shop.example.com', ['www.shop.example.com']), (e: Error) => e instanceof RequestError && e.status === 409 && /"www\.shop\.example\.com" is already in certificate shop\.example\.com of DOMAINS/.test(e.message));
  assert.equal((await book.put('shop.example.com', ['shop.example.com'])).created, true);
  assert.equal((await book.put('blog.example.com', ['blog.example.com'])).created, true);
});

test('ownership: a label asking for exactly another tenant\'s certificate is refused, naming the owner (that one may hold a name that never validates)', async () => {
  const first = label('squatter', 'shop.example.com,never-validates.example.com');
  const r = await resolve({ labels: [...first, ...label('shop', 'shop.example.com')] });
  assert.deepEqual(r.wanted.map((w) => [w.name, w.sources.length]), [['shop.example.com', 1]], 'not silently attached to the squatter\'s certificate');
  assert.equal(r.refused.length, 1);
  assert.equal(r.refused[0]!.service, 'shop (id-shop)');
  assert.match(r.refused[0]!.error, /certificate shop\.example\.com belongs to the label on service squatter \(id-squatter\), which claimed it first/);
});

test('claims: an unchanged claim is kept as read (no copy a pass); a renamed service, a new order of names or a field of its own makes it again', async () => {
  const first = await resolve({ labels: [...label('web', 'a.example.com,b.example.com,d.example.com'), ...label('api', 'c.example.com')] });
  const read: ClaimsFile = JSON.parse(JSON.stringify(first.claims));
  const again = await resolve({ labels: [...label('web', 'a.example.com,b.example.com,d.example.com'), ...label('api', 'c.example.com')], claims: read, now: new Date(T0.getTime() + 3600_000) });
  assert.equal(again.changed, false);
  assert.equal(again.claims.claims['a.example.com'], read.claims['a.example.com'], 'the same object, not a copy');
  assert.equal(again.claims.claims['c.example.com'], read.claims['c.example.com']);
  // The service renamed (same id), the names listed in another order, a field the file gained by hand.
  const edited: ClaimsFile = JSON.parse(JSON.stringify(first.claims));
  (edited.claims['c.example.com'] as unknown as Record<string, unknown>).note = 'by hand';
  const renamed = label('web', 'a.example.com,d.example.com,b.example.com').map((c) => ({ ...c, service: { ...c.service!, name: 'www' } }));
  const changed = await resolve({ labels: [...renamed, ...label('api', 'c.example.com')], claims: edited, now: new Date(T0.getTime() + 3600_000) });
  assert.equal(changed.changed, true);
  assert.deepEqual(changed.claims.claims['a.example.com'], { service: 'id-web', serviceName: 'www', names: ['a.example.com', 'd.example.com', 'b.example.com'], since: T0.toISOString() });
  assert.deepEqual(changed.claims.claims['c.example.com'], { service: 'id-api', serviceName: 'api', names: ['c.example.com'], since: T0.toISOString() }, 'written again without the field of its own');
  assert.deepEqual(changed.newSets, new Set(), 'the same names in another order are no new set');
});
