/**
 * Issue 23 (mutation run of src/ownership.ts): the claims file as an operator meets it (missing, broken, not
 * written by `plan`), the 24-hour window of LABEL_MAX_NEW_PER_DAY at its edges, which claim is older, what a
 * refusal says about its owner, and when the store's copy counts as one certwrangler already has.
 */
import { FilesStore } from '../../src/stores/files/files-store.js';
import { LocalStore } from '../../src/certs/store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDomainList, type WantedCert } from '../../src/domains.js';
import { ClaimsBook, resolveOwnership, sameClaims, storeHasCopy, type ClaimsFile } from '../../src/ownership.js';

const opts = { dnsProvider: true, onePerName: false, allowedSuffixes: [] };
const T0 = new Date('2027-03-01T00:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const empty = (): ClaimsFile => ({ version: 1, claims: {}, newSets: {} });
const tmp = () => mkdtempSync(join(tmpdir(), 'cw-own-m-'));
function label(service: string | undefined, v: string, extra: Partial<WantedCert> = {}): WantedCert[] {
  return parseDomainList(v, `label hosts on service ${service ?? 'unnamed'}`, opts).certs.map((c) => ({ ...c, ...(service ? { service: { id: `id-${service}`, name: service } } : {}), ...extra }));
}
const resolve = (i: { domains?: WantedCert[]; api?: WantedCert[]; labels?: WantedCert[] | undefined; claims?: ClaimsFile; now?: Date; max?: number }) =>
  resolveOwnership({ domains: i.domains ?? [], api: i.api ?? [], labels: 'labels' in i ? i.labels : [], claims: i.claims ?? empty(), now: i.now ?? T0, maxNewPerDay: i.max ?? 5, hasCopy: async () => false });

test('claims file: missing is empty; unreadable or not a claims file stops the labels, naming the file and what to do', async () => {
  const dir = tmp();
  const book = new ClaimsBook(new FilesStore(dir));
  assert.deepEqual(await book.load(), empty());
  mkdirSync(book.path);
  await assert.rejects(book.load(), (e: Error) => e.message.startsWith(`${book.path} is unreadable (`) && e.message.endsWith('); labels are not read until it is'));
  for (const [text, why] of [
    ['{"version":1,"claims":{}', /is not valid \(.*JSON.*\)/],
    ['{"version":2,"claims":{},"newSets":{}}', /not a version 1 claims file/],
    ['{"version":1,"claims":null,"newSets":{}}', /not a version 1 claims file/],
    ['{"version":1,"claims":"x","newSets":{}}', /not a version 1 claims file/],
    ['{"version":1,"claims":{},"newSets":null}', /not a version 1 claims file/],
    ['{"version":1,"claims":{}}', /not a version 1 claims file/],
    ['null', /is not valid \(not a version 1 claims file\)/],
  ] as [string, RegExp][]) {
    const d = tmp();
    writeFileSync(join(d, 'label-claims.json'), text);
    await assert.rejects(new ClaimsBook(new FilesStore(d)).load(), (e: Error) => {
      assert.match(e.message, why, text);
      assert.ok(e.message.endsWith('; labels are not read until it is fixed or moved aside (moving it aside gives every label name to the first service that asks)'), e.message);
      return true;
    });
  }
});

test('claims file: plan reads it but never writes it', async () => {
  const dir = tmp();
  await new ClaimsBook(new FilesStore(dir), true).save({ version: 1, claims: { 'a.example.com': { service: 's', serviceName: 's', names: ['a.example.com'], since: T0.toISOString() } }, newSets: {} });
  assert.equal(existsSync(join(dir, 'label-claims.json')), false);
  const book = new ClaimsBook(new FilesStore(dir));
  const file: ClaimsFile = { version: 1, claims: {}, newSets: { s: [T0.toISOString()] } };
  await book.save(file);
  assert.deepEqual(await book.load(), file);
});

test('refusal events: told once while they last; one that ends and comes back is told again', () => {
  const book = new ClaimsBook(new FilesStore(tmp()));
  const a = { spec: 'a.example.com', source: 'label on x', error: 'no' };
  const b = { spec: 'b.example.com', source: 'label on x', error: 'no' };
  assert.deepEqual(book.fresh([a, b]), [a, b]);
  assert.deepEqual(book.fresh([a, b]), []);
  assert.deepEqual(book.fresh([a, { ...b, error: 'other reason' }]), [{ ...b, error: 'other reason' }]);
  assert.deepEqual(book.fresh([a]), []);
  assert.deepEqual(book.fresh([a, b]), [b], 'b ended, and is back');
});

test('LABEL_MAX_NEW_PER_DAY: a set given exactly 24 hours ago no longer counts; one dated in the future never did', async () => {
  const claims: ClaimsFile = { version: 1, claims: {}, newSets: { 'id-web': [new Date(T0.getTime() - DAY).toISOString(), new Date(T0.getTime() - DAY + 1).toISOString(), new Date(T0.getTime() + HOUR).toISOString()] } };
  const r = await resolve({ labels: label('web', 'x.example.com'), claims, max: 2 });
  assert.deepEqual(r.refused, []);
  assert.deepEqual(r.claims.newSets['id-web'], [new Date(T0.getTime() - DAY + 1).toISOString(), T0.toISOString()]);
  const full = await resolve({ labels: label('web', 'y.example.com'), claims: r.claims, max: 2 });
  assert.equal(full.refused.length, 1);
  assert.match(full.refused[0]!.error, /^service web \(id-web\) was given 2 new name sets in the last 24 hours \(LABEL_MAX_NEW_PER_DAY=2\); a change of names counts as a new set; next one after 2027-03-01T00:00:00\.001Z$/);
  // Without a service (a label source of its own), the source names it.
  const bare = await resolve({ labels: label(undefined, 'z.example.com'), max: 0 });
  assert.match(bare.refused[0]!.error, /^service label hosts on service unnamed was given 0 new name sets/);
  assert.equal(bare.refused[0]!.service, undefined);
});

test('LABEL_MAX_NEW_PER_DAY=0 (no new label certificates at all) refuses each new set, saying so, and a claimed certificate keeps its names', async () => {
  // Before: the refusal's "next one after" was computed from no entries at all and threw RangeError, failing the pass.
  const r = await resolve({ labels: label('web', 'a.example.com'), max: 0 });
  assert.deepEqual(r.wanted, []);
  assert.equal(r.refused[0]!.error, 'service web (id-web) was given 0 new name sets in the last 24 hours (LABEL_MAX_NEW_PER_DAY=0); a change of names counts as a new set; LABEL_MAX_NEW_PER_DAY=0 allows none');
  const claims: ClaimsFile = { version: 1, claims: { 'a.example.com': { service: 'id-web', serviceName: 'web', names: ['a.example.com'], since: T0.toISOString() } }, newSets: {} };
  const kept = await resolve({ labels: label('web', 'a.example.com,b.example.com'), claims, max: 0 });
  assert.deepEqual(kept.wanted.map((w) => w.names), [['a.example.com']]);
  assert.match(kept.refused[0]!.error, /allows none; a\.example\.com keeps its previous names \(a\.example\.com\) until then$/);
});

test('claims: the older claim wins whatever the order listed; equal claims go by the order listed; the result says whether anything changed', async () => {
  const claim = (service: string, since: number) => ({ service: `id-${service}`, serviceName: service, names: ['shop.example.com'], since: new Date(T0.getTime() - since * HOUR).toISOString() });
  const labels = [...label('newer', 'shop.example.com'), ...label('older', 'shop.example.com'), ...label('third', 'shop.example.com')];
  // Each claim file can hold one claim per name; the older service's wins over an unclaimed one listed first.
  const r = await resolve({ labels, claims: { version: 1, claims: { 'shop.example.com': claim('older', 5) }, newSets: {} } });
  assert.deepEqual(r.wanted.map((w) => w.service?.name), ['older']);
  assert.deepEqual(r.refused.map((x) => x.service), ['newer (id-newer)', 'third (id-third)'], 'the rest in the order listed');
  assert.equal(r.changed, false, 'the same claim, nothing new');
  const first = await resolve({ labels: label('web', 'a.example.com') });
  assert.equal(first.changed, true);
  assert.equal(first.claims.claims['a.example.com']!.since, T0.toISOString());
  assert.equal(first.claims.claims['a.example.com']!.serviceName, 'web');
  const again = await resolve({ labels: label('web', 'a.example.com'), claims: first.claims, now: new Date(T0.getTime() + 2 * DAY) });
  assert.equal(again.changed, true, 'the new-set record aged out');
  assert.equal(again.claims.claims['a.example.com']!.since, T0.toISOString(), 'a claim keeps the day it was made');
  const still = await resolve({ labels: label('web', 'a.example.com'), claims: again.claims, now: new Date(T0.getTime() + 2 * DAY) });
  assert.equal(still.changed, false);
});

test('claims: labels that could not be read keep every claim as it was', async () => {
  const claims: ClaimsFile = { version: 1, claims: { 'a.example.com': { service: 'id-web', serviceName: 'web', names: ['a.example.com'], since: T0.toISOString() } }, newSets: { 'id-web': [T0.toISOString()] } };
  const r = await resolve({ domains: parseDomainList('d.example.com', 'DOMAINS', opts).certs, labels: undefined, claims });
  assert.equal(r.claims, claims);
  assert.equal(r.changed, false);
  assert.deepEqual(r.wanted.map((w) => w.name), ['d.example.com']);
  assert.equal(r.newSets.size, 0);
});

test('ownership: a refusal names the owner: the request API, a service, or a label source without one', async () => {
  const api = parseDomainList('shop.example.com', 'api', opts).certs;
  const r = await resolve({ api, labels: label('web', 'shop.example.com,x.example.com') });
  assert.equal(r.refused[0]!.error, 'certificate shop.example.com belongs to the request API; a label cannot add x.example.com to it');
  const bare = await resolve({ labels: [...label(undefined, 'a.example.com,b.example.com'), ...label('web', 'b.example.com').map((c) => ({ ...c, name: 'c.example.com', names: ['c.example.com', 'b.example.com'] }))] });
  assert.equal(bare.refused[0]!.error, '"b.example.com" is already in certificate a.example.com of label hosts on service unnamed; ask for that certificate by its name, or leave b.example.com out');
});

test('ownership: one service asking twice for a certificate merges it; the first key type, key reuse and profile named are kept', async () => {
  const r = await resolve({ labels: [...label('web', 'a.example.com'), ...label('web', 'a.example.com,www.a.example.com', { keyType: 'rsa-2048', reuseKey: false, profile: 'tlsserver', challenge: 'dns-01' }), ...label('web', 'a.example.com', { keyType: 'ecdsa-p384', reuseKey: true, profile: 'classic', challenge: 'http-01' })] });
  assert.deepEqual(r.refused, []);
  const [w] = r.wanted;
  assert.deepEqual([w!.names, w!.keyType, w!.reuseKey, w!.profile, w!.challenge], [['a.example.com', 'www.a.example.com'], 'rsa-2048', false, 'tlsserver', 'dns-01']);
  assert.deepEqual(r.claims.claims['a.example.com']!.names, ['a.example.com', 'www.a.example.com']);
  assert.equal(r.newSets.size, 1, 'one new set, not three');
});

test('storeHasCopy: only a real certificate (not a placeholder) whose meta.json covers every name', async () => {
  const dir = tmp();
  const meta = (name: string, m: unknown) => (mkdirSync(join(dir, 'certs', name), { recursive: true }), writeFileSync(join(dir, 'certs', name, 'meta.json'), JSON.stringify(m)));
  meta('a', { names: ['a.example.com', 'www.a.example.com'], kind: 'production' });
  meta('b', { names: ['b.example.com'], kind: 'self-signed' });
  meta('c', { names: 'c.example.com', kind: 'production' });
  const has = (name: string, names: string[]) => storeHasCopy(new LocalStore(new FilesStore(dir)), name, names);
  assert.equal(await has('a', ['a.example.com']), true);
  assert.equal(await has('a', ['a.example.com', 'www.a.example.com']), true);
  assert.equal(await has('a', ['a.example.com', 'new.example.com']), false);
  assert.equal(await has('b', ['b.example.com']), false);
  assert.equal(await has('c', ['c.example.com']), false);
  assert.equal(await has('missing', ['m.example.com']), false);
});

test('ownership: one service asking for a certificate through two labels gets one certificate, naming each label once', async () => {
  const twice = [
    ...label('web', 'a.example.com').map((c) => ({ ...c, sources: ['label certwrangler.domains on web'] })),
    ...label('web', 'a.example.com,www.a.example.com').map((c) => ({ ...c, sources: ['label traefik.http.routers.web.rule on web'] })),
    ...label('web', 'a.example.com').map((c) => ({ ...c, sources: ['label certwrangler.domains on web'] })),
  ];
  const r = await resolve({ labels: twice });
  assert.deepEqual(r.refused, []);
  assert.deepEqual(r.wanted.map((w) => [w.names, w.sources]), [[['a.example.com', 'www.a.example.com'], ['label certwrangler.domains on web', 'label traefik.http.routers.web.rule on web']]]);
  assert.deepEqual(r.claims.newSets['id-web'], [T0.toISOString()], 'one new set, counted once in the file too');
});

test('ownership: a name merged into a certificate is held by it: another service asking for it is refused, naming the certificate that first held it', async () => {
  // web's a.example.com is widened to www.a.example.com by its second label; web's b.example.com also holds a.example.com.
  const labels = [...label('web', 'a.example.com'), ...label('web', 'b.example.com,a.example.com'), ...label('web', 'a.example.com,www.a.example.com'), ...label('web', 'b.example.com')];
  const other = [...label('shop', 'www.a.example.com'), ...label('shop', 'c.example.com,a.example.com')];
  const r = await resolve({ labels: [...labels, ...other] });
  assert.deepEqual(r.wanted.map((w) => w.name), ['a.example.com', 'b.example.com']);
  assert.deepEqual(r.refused.map((x) => x.error), [
    '"www.a.example.com" is already in certificate a.example.com of the label on service web (id-web); ask for that certificate by its name, or leave www.a.example.com out',
    '"a.example.com" is already in certificate a.example.com of the label on service web (id-web); ask for that certificate by its name, or leave a.example.com out',
  ]);
});

test('ownership: a label asking to add names to the request API\'s certificate is refused, naming every name it would add', async () => {
  const api = parseDomainList('shop.example.com', 'api', opts).certs;
  const r = await resolve({ api, labels: label('web', 'shop.example.com,x.example.com,y.example.com') });
  assert.equal(r.refused[0]!.error, 'certificate shop.example.com belongs to the request API; a label cannot add x.example.com, y.example.com to it');
});

test('LABEL_MAX_NEW_PER_DAY: two new sets in one pass both fit a cap of 2, and the file records exactly those two', async () => {
  const r = await resolve({ labels: [...label('web', 'a.example.com'), ...label('web', 'b.example.com')], max: 2 });
  assert.deepEqual(r.refused, []);
  assert.deepEqual(r.claims.newSets, { 'id-web': [T0.toISOString(), T0.toISOString()] });
});

test('LABEL_MAX_NEW_PER_DAY: a service whose every new set aged out leaves the file', async () => {
  const claims: ClaimsFile = { version: 1, claims: {}, newSets: { 'id-gone': [new Date(T0.getTime() - 2 * DAY).toISOString()], 'id-web': [new Date(T0.getTime() - HOUR).toISOString()] } };
  const r = await resolve({ labels: [], claims });
  assert.deepEqual(r.claims.newSets, { 'id-web': [new Date(T0.getTime() - HOUR).toISOString()] });
  assert.equal(r.changed, true);
});

test('LABEL_MAX_NEW_PER_DAY: a capped certificate does not keep its previous names when DOMAINS now holds one of them (the service dropped it)', async () => {
  const claims: ClaimsFile = { version: 1, claims: { 'w.example.com': { service: 'id-web', serviceName: 'web', names: ['w.example.com', 's.example.com'], since: T0.toISOString() } }, newSets: {} };
  const r = await resolve({ domains: parseDomainList('s.example.com', 'DOMAINS', opts).certs, labels: label('web', 'w.example.com,t.example.com'), claims, max: 0 });
  assert.deepEqual(r.wanted.map((w) => [w.name, w.names]), [['s.example.com', ['s.example.com']]]);
  assert.equal(r.refused.length, 1);
  assert.match(r.refused[0]!.error, /LABEL_MAX_NEW_PER_DAY=0 allows none$/);
  assert.deepEqual(r.claims.claims, {}, 'the claim is not kept for names it can no longer have');
});

test('claims: a label without a service never takes a claim made by a service, and is not stopped by it', async () => {
  const claims: ClaimsFile = { version: 1, claims: { 'z.example.com': { service: 'id-web', serviceName: 'web', names: ['z.example.com'], since: T0.toISOString() } }, newSets: {} };
  const r = await resolve({ labels: label(undefined, 'z.example.com'), claims });
  assert.deepEqual(r.wanted.map((w) => w.name), ['z.example.com']);
  assert.equal(r.claims.claims['z.example.com']!.service, 'label hosts on service unnamed');
});

test('claims: among services that each hold a claim, the oldest goes first, then equal claims in the order listed, whatever the list order', async () => {
  // Each holds its own certificate name; all of them ask for shared.example.com, which only the first may have.
  const at = (h: number) => new Date(T0.getTime() - h * HOUR).toISOString();
  const claim = (service: string, name: string, h: number) => ({ service: `id-${service}`, serviceName: service, names: [name, 'shared.example.com'], since: at(h) });
  const claims: ClaimsFile = { version: 1, claims: { 'x.example.com': claim('x', 'x.example.com', 1), 'y.example.com': claim('y', 'y.example.com', 5), 'z.example.com': claim('z', 'z.example.com', 5), 'v.example.com': claim('v', 'v.example.com', 3) }, newSets: {} };
  const labels = [...label('x', 'x.example.com,shared.example.com'), ...label('v', 'v.example.com,shared.example.com'), ...label('y', 'y.example.com,shared.example.com'), ...label('z', 'z.example.com,shared.example.com')];
  const r = await resolve({ labels, claims });
  assert.deepEqual(r.wanted.map((w) => w.service?.name), ['y']);
  assert.deepEqual(r.refused.map((x) => x.service), ['z (id-z)', 'v (id-v)', 'x (id-x)']);
});

test('claims: "changed" (the claims file is written) exactly when the file\'s text would differ', () => {
  const at = (h: number) => new Date(T0.getTime() - h * HOUR).toISOString();
  const base = (): ClaimsFile => ({
    version: 1,
    claims: {
      'a.example.com': { service: 'id-a', serviceName: 'a', names: ['a.example.com', 'www.a.example.com'], since: at(5) },
      'b.example.com': { service: 'id-b', serviceName: 'b', names: ['b.example.com'], since: at(3) },
    },
    newSets: { 'id-a': [at(5), at(4)], 'id-b': [at(3)] },
  });
  type Claims = ClaimsFile['claims'];
  const a = (f: ClaimsFile) => f.claims['a.example.com']!;
  const variants: [string, (f: ClaimsFile) => void][] = [
    ['nothing', () => undefined],
    ['the version', (f) => ((f as { version: number }).version = 2)],
    ["a claim's service", (f) => (a(f).service = 'id-x')],
    ["a claim's service name", (f) => (a(f).serviceName = 'renamed')],
    ["a claim's time", (f) => (a(f).since = at(9))],
    ['one of its names', (f) => (a(f).names[1] = 'shop.a.example.com')],
    ['its first name', (f) => (a(f).names[0] = 'z.example.com')],
    ['one name fewer', (f) => void a(f).names.pop()],
    ['one name more', (f) => void a(f).names.push('api.a.example.com')],
    ['a field more', (f) => ((a(f) as unknown as Record<string, string>).note = 'x')],
    ['a claim more', (f) => (f.claims['c.example.com'] = { service: 'id-c', serviceName: 'c', names: ['c.example.com'], since: at(1) })],
    ['a claim fewer', (f) => delete f.claims['b.example.com']],
    ['claims in another order', (f) => (f.claims = { 'b.example.com': f.claims['b.example.com']!, 'a.example.com': a(f) } as Claims)],
    ['a claim under another name', (f) => (f.claims = { 'a.example.com': a(f), 'bb.example.com': f.claims['b.example.com']! } as Claims)],
    ['a new-set time', (f) => (f.newSets['id-a']![1] = at(2))],
    ['a new-set time more', (f) => void f.newSets['id-b']!.push(at(1))],
    ['a new-set time fewer', (f) => void f.newSets['id-a']!.pop()],
    ['a service more with new sets', (f) => (f.newSets['id-c'] = [at(1)])],
    ['new sets in another order', (f) => (f.newSets = { 'id-b': f.newSets['id-b']!, 'id-a': f.newSets['id-a']! })],
  ];
  for (const [what, change] of variants) {
    const changed = base();
    change(changed);
    const same = JSON.stringify(changed) === JSON.stringify(base());
    assert.equal(same, what === 'nothing', `${what}: the variant is one`);
    assert.equal(sameClaims(base(), changed), same, what);
    assert.equal(sameClaims(changed, base()), same, `${what} (the other way round)`);
  }
});

test('claims: a name no claim holds goes to the service with the oldest claim, wherever it is listed', async () => {
  const at = (h: number) => new Date(T0.getTime() - h * HOUR).toISOString();
  const claim = (service: string, h: number) => ({ service: `id-${service}`, serviceName: service, names: [`${service}.example.com`], since: at(h) });
  const claims: ClaimsFile = { version: 1, claims: { 'a.example.com': claim('a', 5), 'b.example.com': claim('b', 3), 'c.example.com': claim('c', 1) }, newSets: {} };
  const asks = (service: string) => label(service, `${service}.example.com,new.example.com`);
  for (const listed of [['b', 'a', 'c'], ['c', 'b', 'a'], ['a', 'c', 'b'], ['b', 'c', 'a']]) {
    const r = await resolve({ labels: listed.flatMap(asks), claims });
    const holder = r.wanted.find((w) => w.names.includes('new.example.com'));
    assert.equal(holder?.service?.name, 'a', `listed ${listed.join(', ')}`);
  }
});
