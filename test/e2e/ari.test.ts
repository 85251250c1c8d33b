/**
 * Issue 17 items 0–2, end to end: a real Pebble behind the ACME front (test/support/acme-front.ts), which adds
 * ACME Renewal Information (RFC 9773) and Let's Encrypt's profiles. Each test moves the pass's clock (and the
 * CA's) instead of waiting.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import pLimit from 'p-limit';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCert } from '../../src/certs/parse.js';
import { ariCertId } from '../../src/acme/ari.js';
import { LocalStore } from '../../src/certs/store.js';
import type { LedgerData } from '../../src/limits/ledger.js';
import { acmeLab, assertChainVerifies, passWithOrders, runCli, errors } from '../support/harness.js';
import { defaultWindow, LE_PROFILES, startAcmeFront, type AcmeFront } from '../support/acme-front.js';
import { StatusBook } from '../../src/status/book.js';
import { renderPage } from '../../src/status/page.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import type { Pebble } from '../support/pebble.js';
import { Metrics } from '../../src/status/metrics.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const base = mkdtempSync(join(tmpdir(), 'cw-ari-'));
const lab = acmeLab(base);
const HOUR = 3_600_000;
// The drill: 300 certificates, 90 of them renewed (about 11 s on an idle 2-core machine).
// bench/revocation.ts runs 1,000.
const FLEET = 300;
const DAY = 24 * HOUR;
let pebble: Pebble;
let front: AcmeFront;
let hook: Receiver;

before(async () => {
  pebble = await lab.pebble('ca');
  front = await startAcmeFront(pebble);
  hook = await startReceiver();
});
after(async () => {
  await hook.close();
  await front.close();
  await lab.stop();
});

function envFor(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATA_DIR: join(base, dir, 'data'),
    CERTS_DIR: join(base, dir, 'live'),
    WEBROOT_DIR: lab.webroot,
    LOG_LEVEL: 'silent',
    ACME_DIRECTORY_URL: front.directoryUrl,
    ACME_CA_BUNDLE: pebble.caBundlePath,
    STAGING: 'false',
    ...extra,
  };
}

/** One pass at `now` (the CA's clock moved with it). */
async function pass(env: Record<string, string>, now = new Date()) {
  front.setClock(() => now);
  return passWithOrders(env, { now: () => now });
}

const liveCert = (env: Record<string, string>, name: string) => readFileSync(join(env.CERTS_DIR!, name, 'cert.pem'), 'utf8');
const ordersFor = (name: string) => front.orders.filter((o) => o.identifiers[0]?.value === name);
const ledgerOf = (env: Record<string, string>): LedgerData[] => readdirSync(join(env.DATA_DIR!, 'ledger')).map((f) => JSON.parse(readFileSync(join(env.DATA_DIR!, 'ledger', f), 'utf8')) as LedgerData);

test('a CA that issues without a CN (the tlsserver profile): the certificate is issued, stored and served, not thrown away', async () => {
  const name = 'nocn.ari.example.com';
  const env = envFor('nocn', { DOMAINS: `${name},www.${name}`, PROFILE: 'tlsserver' });
  const { report, orders } = await pass(env);
  assert.equal(report.ok, true, errors(report));
  assert.equal(orders, 1);
  const info = parseCert(liveCert(env, name));
  assert.equal(info.commonName, undefined, 'the CA left the CN out');
  assert.deepEqual([...info.names], [name, `www.${name}`]);
  assertChainVerifies(readFileSync(join(env.CERTS_DIR!, name, 'fullchain.pem'), 'utf8'), await pebble.root());
  assert.equal(ordersFor(name)[0]!.profile, 'tlsserver', 'newOrder carried the profile');
  const meta = JSON.parse(readFileSync(join(env.DATA_DIR!, 'certs', name, 'meta.json'), 'utf8')) as { profile?: string };
  assert.equal(meta.profile, 'tlsserver', 'meta.json keeps the profile');
  const again = await pass(env);
  assert.equal(again.orders, 0, 'and it is up to date on the next pass');
});

test('ARI: a window in the future orders nothing; moved to now, one order with replaces, exempt from the rate limits; Retry-After is honoured', async () => {
  const name = 'window.ari.example.com';
  const env = envFor('window', { DOMAINS: name });
  const t0 = new Date();
  assert.equal((await pass(env, t0)).orders, 1);
  const first = liveCert(env, name);
  const id = ariCertId(first)!;
  assert.ok(front.issued.has(id));

  // The first pass after issuance asks for the window (Boulder's default: around the two-thirds point).
  let asked = front.renewalInfoRequests();
  const p1 = await pass(env, new Date(t0.getTime() + 60_000));
  assert.equal(p1.orders, 0);
  assert.equal(front.renewalInfoRequests() - asked, 1, 'renewalInfo asked once');
  const r1 = p1.report.results[0]!;
  assert.equal(r1.decision.reason, 'UpToDate');
  assert.ok(r1.renewalWindow, 'the window is reported');
  assert.ok(Date.parse(r1.renewAt!) >= Date.parse(r1.renewalWindow.start) && Date.parse(r1.renewAt!) < Date.parse(r1.renewalWindow.end), 'renews at a moment inside the window');
  assert.ok(p1.report.wakeAt && Date.parse(p1.report.wakeAt) <= t0.getTime() + 60_000 + 6 * HOUR, 'the manager wakes when Retry-After (6 h) ends');

  // Within Retry-After the CA is not asked again.
  asked = front.renewalInfoRequests();
  await pass(env, new Date(t0.getTime() + 2 * HOUR));
  assert.equal(front.renewalInfoRequests(), asked, 'not asked before Retry-After');

  // Forty days on (past a third of the lifetime), the CA moves the window to now; the next poll renews,
  // naming the old certificate.
  const later = new Date(t0.getTime() + 40 * DAY);
  // A window that is open now and closes now: whatever moment is drawn inside it has come.
  front.setWindow(first, { start: new Date(later.getTime() - HOUR), end: later });
  const p2 = await pass(env, later);
  assert.equal(p2.report.ok, true, errors(p2.report));
  assert.equal(p2.orders, 1);
  assert.equal(p2.report.results[0]!.decision.reason, 'Renew');
  assert.equal(ordersFor(name).at(-1)!.replaces, id, 'newOrder carried replaces = the old CertID');
  assert.notEqual(liveCert(env, name), first);
  const ledger = ledgerOf(env);
  assert.deepEqual(ledger.flatMap((l) => l.orders).map((o) => o.ari === true), [true], 'the ARI renewal is marked in the ledger (the first order has left its 3-hour window)');
  assert.deepEqual(ledger.flatMap((l) => l.issued).map((o) => o.ari === true), [true]);

  // A new certificate: its own window, nothing more to do.
  const p3 = await pass(env, new Date(later.getTime() + 60_000));
  assert.equal(p3.orders, 0);
});

test('ARI: the CA refuses replaces: ordered once more without it, and the renewal happens', async () => {
  const name = 'refused.ari.example.com';
  const env = envFor('refused', { DOMAINS: name });
  const t0 = new Date();
  await pass(env, t0);
  const first = liveCert(env, name);
  front.setWindow(first, { start: new Date(t0.getTime() - HOUR), end: t0 });
  front.refuseReplaces(1);
  const p = await pass(env, new Date(t0.getTime() + 60_000));
  assert.equal(p.report.ok, true, errors(p.report));
  assert.equal(p.orders, 1, 'one order made (the refused one never existed)');
  const tries = ordersFor(name).slice(-2);
  assert.equal(tries[0]!.refused, 'alreadyReplaced');
  assert.equal(tries[0]!.replaces, ariCertId(first));
  assert.equal(tries[1]!.replaces, undefined, 'the second try has no replaces');
  assert.notEqual(liveCert(env, name), first);
  assert.deepEqual(ledgerOf(env).flatMap((l) => l.orders).map((o) => o.ari === true), [false, false], 'without replaces it is an ordinary order in the ledger');
});

test('ARI: a window before a third of the lifetime is the CA asking for early renewal: reason, event, webhook, metric', async () => {
  const name = 'early.ari.example.com';
  const env = envFor('early', { DOMAINS: name, WEBHOOK_URL: `${hook.url}/hook` });
  const t0 = new Date();
  await pass(env, t0);
  const first = liveCert(env, name);
  front.setWindow(first, { start: new Date(t0.getTime() - HOUR), end: new Date(t0.getTime() - HOUR / 2), explanationURL: 'https://ca.test/incident/2026-drill' });
  const p = await pass(env, new Date(t0.getTime() + 60_000));
  assert.equal(p.report.ok, true, errors(p.report));
  assert.equal(p.orders, 1);
  const r = p.report.results[0]!;
  assert.equal(r.decision.reason, 'CARequestedEarlyRenewal');
  assert.match(r.decision.message, /early renewal.*https:\/\/ca\.test\/incident\/2026-drill/);
  assert.equal(ordersFor(name).at(-1)!.replaces, ariCertId(first));
  await hook.waitFor((rs) => rs.some((x) => x.body.includes('early-renewal')));
  const event = JSON.parse(hook.received.find((x) => x.body.includes('early-renewal'))!.body) as { event: string; certificate: string; explanationURL?: string };
  assert.equal(event.certificate, name);
  assert.equal(event.explanationURL, 'https://ca.test/incident/2026-drill');
  const metrics = new Metrics();
  metrics.recordPass(p.report, () => 'ok');
  assert.match(await metrics.text(), /certwrangler_ca_requested_early_renewals_total 1/);
  // Before the order, plan and the metrics show the window for what it is.
  const plain = await pass(env, new Date(t0.getTime() + 2 * 60_000));
  assert.equal(plain.orders, 0, 'the new certificate has its own window');
});

test(`ARI, the revocation drill: the CA moves the windows of 30% of ${FLEET} certificates forward; exactly those are renewed within one poll interval, each with replaces, the others untouched`, async () => {
  // On tmpfs when there is one: the test is about who is renewed, and 100 fsynced sets take seconds on a disk.
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'cw-ari-fleet-'));
  const env = { ...envFor('fleet', { ACME_CONCURRENCY: '16', KEY_TYPE: 'ecdsa-p256' }), DATA_DIR: join(dir, 'data'), CERTS_DIR: join(dir, 'live') };
  after(() => rmSync(dir, { recursive: true, force: true }));
  const t0 = new Date();
  front.setClock(() => t0);
  // 300 certificates as the CA would have issued them (minted, not ordered: ordering 300 would take the test's time).
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const store = new LocalStore(new FilesStore(env.DATA_DIR!));
  await store.init();
  const names = Array.from({ length: FLEET }, (_, i) => `c${i}.fleet.ari.example.com`);
  const certs = new Map<string, { cert: string; certId: string }>();
  const writes = pLimit(16);
  await Promise.all(
    names.map((name) => {
      const m = front.mint([name], spki);
      certs.set(name, m);
      return writes(() => store.write({ name, names: [name], key, cert: m.cert, chain: m.chain, kind: 'production', directoryUrl: front.directoryUrl }));
    }),
  );
  const fleetEnv = { ...env, DOMAINS: names.join(';') };
  const first = await pass(fleetEnv, t0);
  assert.equal(first.report.ok, true, errors(first.report));
  assert.equal(first.orders, 0);
  const before = new Map(names.map((n) => [n, liveCert(fleetEnv, n)]));

  // The CA moves 90 windows to now (Boulder answers a revoked certificate's window as one that opened an hour ago).
  const poll = new Date(t0.getTime() + 6 * HOUR + 60_000);
  const moved = new Set(names.filter((_, i) => i % 10 < 3));
  for (const n of moved) front.setWindow(certs.get(n)!.certId, { start: new Date(poll.getTime() - HOUR), end: new Date(poll.getTime() - HOUR / 2) });
  const ordersBefore = front.orders.length;
  const p = await pass(fleetEnv, poll);
  assert.equal(p.report.ok, true, errors(p.report));
  assert.equal(p.orders, moved.size);
  const renewed = front.orders.slice(ordersBefore);
  assert.deepEqual(renewed.map((o) => o.identifiers[0]!.value).sort(), [...moved].sort());
  for (const o of renewed) assert.equal(o.replaces, certs.get(o.identifiers[0]!.value)!.certId, `${o.identifiers[0]!.value} names the certificate it replaces`);
  for (const n of names) {
    if (moved.has(n)) assert.notEqual(liveCert(fleetEnv, n), before.get(n), `${n} renewed`);
    else assert.equal(liveCert(fleetEnv, n), before.get(n), `${n} untouched`);
  }
  assert.ok(p.report.results.filter((r) => moved.has(r.name)).every((r) => r.decision.reason === 'CARequestedEarlyRenewal'));
});

test('profiles: a changed PROFILE reissues once with ProfileChanged, newOrder carries it, meta.json keeps it; plan and the status page show it', async () => {
  const name = 'profile.ari.example.com';
  const env = envFor('profile', { DOMAINS: name, PROFILE: 'classic' });
  const t0 = new Date();
  await pass(env, t0);
  assert.equal(parseCert(liveCert(env, name)).commonName, name, 'classic keeps the CN');
  const changed = { ...env, PROFILE: 'tlsserver' };
  const plan = await runCli(['plan'], changed);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /issue\s+profile changed: ordered as classic, now tlsserver is asked for; profile tlsserver/);
  const p = await pass(changed, new Date(t0.getTime() + 60_000));
  assert.equal(p.report.ok, true, errors(p.report));
  assert.equal(p.orders, 1);
  assert.equal(p.report.results[0]!.decision.reason, 'ProfileChanged');
  assert.equal(ordersFor(name).at(-1)!.profile, 'tlsserver');
  assert.equal(parseCert(liveCert(env, name)).commonName, undefined, 'the tlsserver certificate has no CN');
  assert.equal((JSON.parse(readFileSync(join(env.DATA_DIR!, 'certs', name, 'meta.json'), 'utf8')) as { profile?: string }).profile, 'tlsserver');
  const again = await pass(changed, new Date(t0.getTime() + 2 * 60_000));
  assert.equal(again.orders, 0, 'once');
  const book = new StatusBook('test');
  book.record(again.report);
  assert.match(renderPage(book.snapshot()), /profile tlsserver/);
});

test('profiles: one the CA does not offer is one clear error listing its profiles, and no order; a CA without profiles never reissues for them', async () => {
  const name = 'unknown-profile.ari.example.com';
  const env = envFor('unknown-profile', { DOMAINS: name, PROFILE: 'longlived', PLACEHOLDERS: 'false' });
  const before = front.orders.length;
  const p = await pass(env);
  assert.equal(p.orders, 0);
  assert.equal(front.orders.length, before, 'nothing reached the CA');
  assert.match(p.report.results[0]!.error ?? '', /^PROFILE "longlived" is not a profile of https:\/\/127\.0\.0\.1:\d+\/dir: it offers classic, tlsserver, shortlived; not ordered$/);
  assert.equal(p.report.results[0]!.nextAttempt, undefined, 'a setting to fix, not a failure to back off from');

  front.setProfiles({});
  try {
    const plain = envFor('no-profiles', { DOMAINS: 'plain.ari.example.com' });
    assert.equal((await pass(plain)).orders, 1);
    assert.equal((await pass(plain)).orders, 0, 'no profile set, none offered: no reissue');
    const asked = await pass({ ...plain, PROFILE: 'tlsserver' });
    assert.match(asked.report.results[0]!.error ?? '', /it offers no profiles \(its directory has no meta\.profiles\)/);
  } finally {
    front.setProfiles(LE_PROFILES, 'classic');
  }
});

test('shortlived: a 160-hour certificate is renewed twice over 12 simulated days, the manager waking for it; an IP address is ordered with it (RFC 8738)', async () => {
  const name = 'short.ari.example.com';
  // 127.0.0.1 is Pebble's to validate; only a CA of the operator's own (both directories) may issue for it.
  const env = envFor('short', { DOMAINS: `${name},127.0.0.1`, PROFILE: 'shortlived', ACME_STAGING_DIRECTORY_URL: front.directoryUrl });
  // A narrow window at the two-thirds point, so the count does not depend on where a two-day window's moment falls.
  front.setWindowRule((nb, na) => {
    const at = nb.getTime() + ((na.getTime() - nb.getTime()) * 2) / 3;
    return { start: new Date(at), end: new Date(at + HOUR) };
  });
  front.setRetryAfterSeconds(86_400);
  try {
    const t0 = new Date();
    const end = t0.getTime() + 12 * DAY;
    let now = t0;
    let orders = 0;
    let passes = 0;
    while (now.getTime() < end) {
      const p = await pass(env, now);
      assert.equal(p.report.ok, true, errors(p.report));
      orders += p.orders;
      passes++;
      // What the manager does: the next scheduled pass (a day on here), or earlier when the pass asks to be woken.
      const scheduled = now.getTime() + 24 * HOUR;
      now = new Date(Math.min(scheduled, p.report.wakeAt ? Date.parse(p.report.wakeAt) : scheduled));
    }
    assert.equal(orders, 3, 'the first certificate and two renewals');
    assert.ok(passes <= 30, `${passes} passes`);
    const info = parseCert(liveCert(env, name));
    assert.deepEqual([...info.names], [name, '127.0.0.1']);
    assert.equal(info.commonName, undefined);
    assert.equal(Math.round((info.notAfter.getTime() - info.notBefore.getTime()) / HOUR), 160);
    const sent = ordersFor(name);
    assert.deepEqual(sent.at(-1)!.identifiers, [{ type: 'dns', value: name }, { type: 'ip', value: '127.0.0.1' }]);
    assert.ok(sent.slice(1).every((o) => o.replaces && o.profile === 'shortlived'), 'each renewal replaces the last, in the same profile');
  } finally {
    front.setWindowRule(defaultWindow);
    front.setRetryAfterSeconds(21600);
  }
});

test('an IP address in DOMAINS without PROFILE=shortlived is refused with a clear error; nothing is ordered', async () => {
  const env = envFor('ip-refused', { DOMAINS: 'ip.ari.example.com;127.0.0.1' });
  const p = await pass(env);
  assert.deepEqual(p.report.results.map((r) => r.name), ['ip.ari.example.com']);
  assert.match(p.report.refused[0]!.error, /"127\.0\.0\.1" is an IP address; IP certificates \(RFC 8738\) are ordered only in DOMAINS with PROFILE=shortlived/);
  assert.equal(p.report.ok, false, 'a refusal in DOMAINS is the operator\'s to fix');
});
