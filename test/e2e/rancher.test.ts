/**
 * End to end with Rancher: real Pebble validates through our webroot, the manager pushes into the Rancher
 * API simulator (`test/support/rancher-sim.ts`). Each test asserts what an operator sees in Rancher:
 * certificate resources, their ids, what each balancer serves, and the calls the manager made.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyMatchesCert, parseCert, splitPemChain } from '../../src/certs/parse.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { renewalTime } from '../../src/policy.js';
import { LocalStore } from '../../src/certs/store.js';
import { DEFAULT_HOSTS_LABEL } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, assertChainVerifies, passWithOrders, pebbleEnv, runCli, errors } from '../support/harness.js';
import { simPool, type RancherSim, type RequestRecord } from '../support/rancher-sim.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const base = mkdtempSync(join(tmpdir(), 'cw-rancher-'));
const lab = acmeLab(base);
const LABEL = DEFAULT_HOSTS_LABEL;
let pebble: Pebble;
const sims = simPool();

before(async () => {
  pebble = await lab.pebble('pebble');
});
after(async () => {
  await sims.closeAll();
  await lab.stop();
});

const sim = () => sims.start();

function envFor(dir: string, s: RancherSim, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATA_DIR: join(base, dir, 'data'),
    WEBROOT_DIR: lab.webroot,
    LOG_LEVEL: 'silent',
    ...s.env,
    ...pebbleEnv(pebble, 'production'),
    ...extra,
  };
}

const pass = (env: Record<string, string>, now?: Date) => passWithOrders(env, { settleTimeoutMs: 5000, ...(now ? { now: () => now } : {}) });

/** GETs of the certificate collection (not of one certificate): one per page read. */
const certListCalls = (log: RequestRecord[]) => log.filter((r) => r.method === 'GET' && /\/certificates?$/i.test(r.path));
const writes = (log: RequestRecord[]) => log.filter((r) => r.method !== 'GET');

test('DOMAINS and labelled services: every certificate is created in Rancher, active, with cert, chain without the leaf, and key; one list call per pass', async () => {
  const s = await sim();
  s.addService({ name: 'web', labels: { [LABEL]: 'web.example.com,www.web.example.com' } });
  s.addService({ name: 'api', labels: { 'io.rancher.container.pull_image': 'always' }, sidekicks: [{ name: 'worker', labels: { [LABEL]: 'api.example.com;admin.example.com' } }] });
  // The same name asked for in DOMAINS and by a label is one certificate.
  s.addService({ name: 'app-mirror', labels: { [LABEL]: 'app.example.com' } });
  s.addService({ name: 'infra', system: true, labels: { [LABEL]: 'system.example.com' } });
  const env = envFor('create', s, { DOMAINS: 'app.example.com' });

  const { report, orders } = await pass(env);
  assert.equal(report.ok, true, errors(report));
  assert.equal(orders, 4);
  const wanted = ['admin.example.com', 'api.example.com', 'app.example.com', 'web.example.com'];
  assert.deepEqual(report.results.map((r) => r.name).sort(), wanted);
  assert.deepEqual(report.results.find((r) => r.name === 'app.example.com')!.sources.sort(), ['DOMAINS', `label ${LABEL} on service app-mirror (${[...s.services.values()].find((v) => v.name === 'app-mirror')!.id})`].sort());
  assert.equal(s.certByName('system.example.com'), undefined, 'system services are not read');

  const root = await pebble.root();
  const store = new LocalStore(new FilesStore(env.DATA_DIR!));
  for (const name of wanted) {
    const c = s.certByName(name)!;
    assert.ok(c, `${name} is in Rancher`);
    assert.equal(c.state, 'active');
    assert.equal(c.transitioning, 'no');
    const info = parseCert(c.cert);
    assert.equal(info.selfSigned, false, `${name} is the real certificate, not the placeholder`);
    assert.equal(info.commonName, name);
    assert.ok(c.certChain && splitPemChain(c.certChain).length >= 1);
    assert.ok(!c.certChain.includes(c.cert.trim()), 'certChain holds intermediates only');
    assertChainVerifies(c.cert + c.certChain, root);
    assert.ok(keyMatchesCert(c.key, c.cert), 'the key Rancher holds matches the certificate');
    assert.match(c.description ?? '', /^managed by certwrangler/);
    const local = await store.read(name, { recover: false });
    assert.equal(local.state, 'present');
    if (local.state === 'present') assert.equal(local.info.fingerprint, info.fingerprint, 'the local store keeps the same certificate and key');
  }
  assert.deepEqual([...parseCert(s.certByName("web.example.com")!.cert).names].sort(), ['web.example.com', 'www.web.example.com']);
  assert.equal(certListCalls(s.log).length, 1, 'one certificate list per pass, never one call per domain');
  assert.ok(s.log.every((r) => r.method !== 'DELETE'));
  assert.ok(!JSON.stringify(s.log).includes('PRIVATE KEY'), 'the request log redacts keys');

  s.clearLog();
  const again = await pass(env);
  assert.equal(again.orders, 0);
  assert.deepEqual(again.report.results.map((r) => r.decision.reason), Array(4).fill('UpToDate'));
  assert.equal(certListCalls(s.log).length, 1);
  assert.deepEqual(writes(s.log), [], 'an up-to-date pass writes nothing to Rancher');
});

test('renewal updates the certificate in place: same id, and every balancer that serves it runs its update action', async () => {
  const s = await sim();
  const env = envFor('renew', s, { DOMAINS: 'shop.example.com;blog.example.com' });
  assert.equal((await pass(env)).report.ok, true);
  const shop = s.certByName('shop.example.com')!;
  const blog = s.certByName('blog.example.com')!;
  const lbDefault = s.addBalancer({ name: 'https-lb', defaultCertificateId: shop.id, certificateIds: [blog.id] });
  const lbSni = s.addBalancer({ name: 'sni-lb', certificateIds: [shop.id] });
  const lbOther = s.addBalancer({ name: 'blog-lb', defaultCertificateId: blog.id });
  const before = { id: shop.id, fp: parseCert(shop.cert).fingerprint, writes: shop.writes };

  const at = new Date(renewalTime(parseCert(shop.cert), undefined).getTime() + 86_400_000);
  s.clearLog();
  const { report, orders } = await pass(env, at);
  assert.equal(report.ok, true, errors(report));
  assert.equal(orders, 2, 'both certificates were due');
  const after = s.certByName('shop.example.com')!;
  assert.equal(after.id, before.id, 'same id: balancers keep their reference');
  assert.notEqual(parseCert(after.cert).fingerprint, before.fp);
  assert.equal(after.writes, before.writes + 1);
  assert.equal(after.state, 'active');
  assert.ok(s.log.some((r) => r.method === 'PUT' && r.path.endsWith(`/certificates/${shop.id}`)));
  assert.ok(!s.log.some((r) => r.method === 'DELETE' || (r.method === 'POST' && /\/certificates?$/.test(r.path))), 'renewal never deletes or re-creates');
  // Each balancer reloaded once per certificate of its own that changed, and now serves the new PEMs.
  assert.equal(lbDefault.reloadCount, 2);
  assert.equal(lbSni.reloadCount, 1);
  assert.equal(lbOther.reloadCount, 1);
  assert.equal(lbDefault.served.get(shop.id), `${after.cert}\n${after.certChain}`);
  assert.equal(lbSni.served.get(shop.id), `${after.cert}\n${after.certChain}`);
  assert.equal(lbOther.served.get(blog.id), `${s.certByName('blog.example.com')!.cert}\n${s.certByName('blog.example.com')!.certChain}`);
});

test('STAGING=true then STAGING=false: one upgrade per certificate in Rancher, same ids', async () => {
  const staging = await lab.pebble('pebble-staging');
  const s = await sim();
  const caBundle = join(base, 'both-ca.pem');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(caBundle, readFileSync(staging.caBundlePath, 'utf8') + readFileSync(pebble.caBundlePath, 'utf8'));
  const env = (flag: string) =>
    envFor('flip', s, { DOMAINS: 'one.example.com;two.example.com,www.two.example.com', ACME_STAGING_DIRECTORY_URL: staging.directoryUrl, ACME_DIRECTORY_URL: pebble.directoryUrl, STAGING: flag, ACME_CA_BUNDLE: caBundle });

  const first = await pass(env('true'));
  assert.equal(first.report.ok, true, errors(first.report));
  const ids = new Map(['one.example.com', 'two.example.com'].map((n) => [n, s.certByName(n)!.id]));
  const stagingIssuers = new Set([...ids.keys()].map((n) => parseCert(s.certByName(n)!.cert).issuer));

  const flipped = await pass(env('false'));
  assert.equal(flipped.report.ok, true, errors(flipped.report));
  assert.equal(flipped.orders, 2, 'exactly one order per certificate');
  assert.deepEqual(flipped.report.results.map((r) => r.decision.reason), ['UpgradeKind', 'UpgradeKind']);
  const prodRoot = await pebble.root();
  for (const [name, id] of ids) {
    const c = s.certByName(name)!;
    assert.equal(c.id, id, `${name} keeps its id`);
    assert.ok(!stagingIssuers.has(parseCert(c.cert).issuer), `${name} now comes from the production CA`);
    assertChainVerifies(c.cert + c.certChain, prodRoot);
  }
  assert.equal((await pass(env('false'))).orders, 0);
  assert.equal((await pass(env('true'))).orders, 0, 'production is never downgraded to staging');
});

test('a foreign certificate with a wanted name is left byte for byte unchanged and reported', async () => {
  const s = await sim();
  const theirs = await createSelfSigned(['legacy.example.com']);
  const foreign = s.addCertificate({ name: 'legacy.example.com', cert: theirs.cert, key: theirs.key, description: 'uploaded by the ops team' });
  const snapshot = JSON.stringify(foreign);
  const env = envFor('foreign', s, { DOMAINS: 'legacy.example.com;fresh.example.com' });

  const plan = await runCli(['plan'], env);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /legacy\.example\.com\s+none\s+orchestrator holds a certificate certwrangler does not manage \(list legacy\.example\.com in ADOPT_EXISTING to take it over\)/);

  const { report, orders } = await pass(env);
  assert.equal(orders, 1, 'only fresh.example.com is ordered');
  const legacy = report.results.find((r) => r.name === 'legacy.example.com')!;
  assert.equal(legacy.outcome, 'foreign');
  assert.equal(legacy.decision.reason, 'Foreign');
  assert.equal(JSON.stringify(s.certByName('legacy.example.com')), snapshot, 'not one byte changed');
  assert.ok(!s.log.some((r) => r.method !== 'GET' && r.path.endsWith(`/${foreign.id}`)), 'no write to it');
  assert.equal(s.certByName('fresh.example.com')!.state, 'active');

  // Told to adopt it, the manager takes it over in place, and says so once.
  const lines: string[] = [];
  const logTo = createLogger('info', { write: (l: string) => void lines.push(l) });
  const adopted = await passWithOrders({ ...env, ADOPT_EXISTING: 'legacy.example.com' }, { settleTimeoutMs: 5000 }, logTo);
  assert.equal(adopted.report.ok, true, errors(adopted.report));
  const adoptions = () => lines.filter((l) => /"action":"adopt"/.test(l) && l.includes('legacy.example.com: adopted the certificate certwrangler did not manage'));
  assert.equal(adoptions().length, 1, lines.join(''));
  await passWithOrders({ ...env, ADOPT_EXISTING: 'legacy.example.com' }, { settleTimeoutMs: 5000 }, logTo);
  assert.equal(adoptions().length, 1, 'the next pass finds its own certificate: nothing more to adopt');
  const now = s.certByName('legacy.example.com')!;
  assert.equal(now.id, foreign.id);
  assert.equal(parseCert(now.cert).selfSigned, false);
  assert.match(now.description ?? '', /^managed by certwrangler/);
});

test('a label added while the manager runs gets its certificate within DISCOVERY_INTERVAL plus one pass', async () => {
  const s = await sim();
  const svc = s.addService({ name: 'late', labels: {} });
  const env = { ...process.env, ...envFor('discover', s, { DOMAINS: 'first.example.com', DISCOVERY_INTERVAL: '1s', LOG_LEVEL: 'info' }) };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'manager'], { env });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  child.stderr.on('data', (b: Buffer) => (out += b));
  const waitFor = async (what: string, ok: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; manager output:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    const real = (n: string) => {
      const c = s.certByName(n);
      return !!c && c.state === 'active' && !parseCert(c.cert).selfSigned;
    };
    await waitFor('the first pass', () => real('first.example.com') && /pass finished/.test(out), 30_000);
    const labelledAt = Date.now();
    svc.labels[LABEL] = 'late.example.com';
    await waitFor('late.example.com in Rancher', () => real('late.example.com'), 20_000);
    const took = Date.now() - labelledAt;
    assert.ok(took < 1000 + 15_000, `appeared after ${took} ms`);
    assert.match(out, /wanted certificates changed/);
  } finally {
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 0, out.slice(-2000));
  }
  assert.ok(!out.includes('PRIVATE KEY') && !out.includes(s.secretKey), 'no key or secret in the log');
});

test('1,500 certificates (pagination), 401, 503 then success, a timeout then success, a certificate stuck in error', async (t) => {
  const s = await sim();
  const filler = await createSelfSigned(['filler.example.net']);
  for (let i = 0; i < 1500; i++) s.addCertificate({ name: `other-${i}.example.net`, cert: filler.cert, key: filler.key, description: 'someone else' });
  const env = envFor('many', s, { DOMAINS: 'p1.example.com;p2.example.com' });

  await t.test('pagination: certificates beyond the first page are found, so the second pass writes nothing', async () => {
    const first = await pass(env);
    assert.equal(first.report.ok, true, errors(first.report));
    assert.ok(idNum(s.certByName('p1.example.com')!.id) > 1000, 'ours sit on the second page');
    s.clearLog();
    const second = await pass(env);
    assert.equal(second.orders, 0);
    assert.deepEqual(second.report.results.map((r) => r.decision.reason), ['UpToDate', 'UpToDate']);
    const pages = certListCalls(s.log);
    assert.equal(pages.length, 2, 'one list, two pages');
    assert.match(pages[0]!.query, /limit=1000/);
    assert.match(pages[1]!.query, /marker=m1000/);
    assert.deepEqual(writes(s.log), []);
  });

  await t.test('401: the pass fails with a line naming the key variables; nothing is written, nothing ordered', async () => {
    const before = JSON.stringify([...s.certificates.values()].slice(-2));
    s.clearLog();
    const { report, orders } = await pass({ ...env, CATTLE_SECRET_KEY: 'wrong' });
    assert.equal(report.ok, false);
    assert.equal(orders, 0);
    const retryIn = Date.parse(report.wakeAt ?? '') - Date.now();
    assert.ok(retryIn > 4 * 60_000 && retryIn <= 5 * 60_000, `the manager looks again in 5 minutes, not at its next scheduled pass (wakeAt ${report.wakeAt})`);
    assert.match(report.errors.join('\n'), /401 Unauthorized.*CATTLE_ACCESS_KEY and CATTLE_SECRET_KEY.*io\.rancher\.container\.agent\.role: environment/);
    assert.ok(report.results.every((r) => r.outcome === 'failed'));
    assert.equal(s.log.filter((r) => r.status === 401).length, s.log.length, 'a 401 is not retried in a loop');
    assert.ok(s.log.length <= 2);
    assert.equal(JSON.stringify([...s.certificates.values()].slice(-2)), before);
    const cli = await runCli(['manager', '--once'], { ...env, CATTLE_SECRET_KEY: 'wrong', LOG_LEVEL: 'info' });
    assert.equal(cli.code, 1);
    assert.match(cli.stdout, /401 Unauthorized/);
    assert.ok(!cli.stdout.includes('wrong'), 'the secret is not printed');
  });

  await t.test('503 then success, and a hung-up connection then success, within one pass', async () => {
    s.fault({ kind: 503, method: 'GET', url: /certificates/ });
    s.fault({ kind: 'hangup', method: 'GET', url: /services/ });
    s.clearLog();
    const { report } = await pass(env);
    assert.equal(report.ok, true, errors(report));
    assert.ok(s.log.some((r) => r.status === 503));
    assert.ok(s.log.some((r) => r.status === -1));
  });

  await t.test('a timeout then success: the call is retried with a fresh timeout', async () => {
    s.fault({ kind: 'delay', delayMs: 2500, method: 'GET', url: /certificates/ });
    s.clearLog();
    const { report } = await pass({ ...env, RANCHER_TIMEOUT: '1s' });
    assert.equal(report.ok, true, errors(report));
    assert.equal(certListCalls(s.log).length, 3, 'the timed-out first page, then both pages');
  });

  await t.test('a certificate stuck in error fails with Rancher\'s message; the others go on; nothing is lost', async () => {
    s.stickInError('p3.example.com', 'haproxy: unable to load SSL private key');
    const env3: Record<string, string> = { ...env, DOMAINS: 'p1.example.com;p2.example.com;p3.example.com;p4.example.com' };
    const { report } = await pass(env3);
    const by = new Map(report.results.map((r) => [r.name, r]));
    assert.equal(by.get('p3.example.com')!.outcome, 'failed');
    assert.match(by.get('p3.example.com')!.error!, /haproxy: unable to load SSL private key/);
    assert.equal(by.get('p4.example.com')!.outcome, 'ok');
    assert.equal(s.certByName('p4.example.com')!.state, 'active');
    // The certificate and its key are kept locally; once Rancher recovers the next pass pushes them without an order.
    const local = await new LocalStore(new FilesStore(env3.DATA_DIR!)).read('p3.example.com', { recover: false });
    assert.equal(local.state, 'present');
    s.stickInError('p3.example.com', undefined);
    const next = await pass(env3);
    assert.equal(next.report.ok, true, errors(next.report));
    assert.equal(next.orders, 0);
    assert.equal(next.report.results.find((r) => r.name === 'p3.example.com')!.decision.reason, 'RemoteUnreadable');
    assert.equal(s.certByName('p3.example.com')!.transitioning, 'no');
    if (local.state === 'present') assert.equal(parseCert(s.certByName('p3.example.com')!.cert).fingerprint, local.info.fingerprint);
  });
});

function idNum(id: string): number {
  return Number(/\d+$/.exec(id)![0]);
}
