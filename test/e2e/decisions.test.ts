/**
 * Issue 16 (never downgrade, never fight, foreign certificates watched) and issue 15 item 4 (a CA
 * refusal backs off and costs nothing), end to end: real Pebbles, the Rancher simulator, the real CLI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCert } from '../../src/certs/parse.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { renewalTime } from '../../src/policy.js';
import { LocalStore } from '../../src/certs/store.js';
import type { LedgerData } from '../../src/limits/ledger.js';
import type { StatusSnapshot } from '../../src/status/book.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, assertChainVerifies, passWithOrders, runCli, startCli, errors } from '../support/harness.js';
import { simPool, type RancherSim } from '../support/rancher-sim.js';
import { freePort } from '../support/ports.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const base = mkdtempSync(join(tmpdir(), 'cw-decisions-'));
const lab = acmeLab(base);
const sims = simPool();
const DAY = 86_400_000;
const BLOCKED = 'blocked.decisions.example.com';
let prod: Pebble;
let staging: Pebble;

before(async () => {
  [prod, staging] = await Promise.all([lab.pebble('prod', { domainBlocklist: [BLOCKED] }), lab.pebble('staging')]);
});
after(async () => {
  await sims.closeAll();
  await lab.stop();
});

function envFor(dir: string, s: RancherSim, extra: Record<string, string> = {}): Record<string, string> {
  const caBundle = join(base, 'both-ca.pem');
  writeFileSync(caBundle, readFileSync(prod.caBundlePath, 'utf8') + readFileSync(staging.caBundlePath, 'utf8'));
  return {
    DATA_DIR: join(base, dir, 'data'),
    WEBROOT_DIR: lab.webroot,
    LOG_LEVEL: 'silent',
    ...s.env,
    ACME_DIRECTORY_URL: prod.directoryUrl,
    ACME_STAGING_DIRECTORY_URL: staging.directoryUrl,
    ACME_CA_BUNDLE: caBundle,
    STAGING: 'false',
    ...extra,
  };
}

const pass = (env: Record<string, string>, now?: Date) => passWithOrders(env, { settleTimeoutMs: 5000, ...(now ? { now: () => now } : {}) });
const orderPosts = (requests: Map<string, number>) => [...requests].filter(([k]) => / POST \/order-plz$/.test(k)).reduce((n, [, v]) => n + v, 0);
const ledgerOf = (dataDir: string): LedgerData[] => readdirSync(join(dataDir, 'ledger')).map((f) => JSON.parse(readFileSync(join(dataDir, 'ledger', f), 'utf8')) as LedgerData);

test('STAGING=true with a production certificate in service past its renewal point: renewed from production, never staging; plan says why', async () => {
  const s = await sims.start();
  const name = 'kept.decisions.example.com';
  const first = await pass(envFor('kept', s, { DOMAINS: name }));
  assert.equal(first.report.ok, true, errors(first.report));
  // A copy: the simulator updates its resources in place.
  const before = { ...s.certByName(name)! };
  const due = new Date(renewalTime(parseCert(before.cert), undefined).getTime() + DAY);

  // The shipped compose file sets STAGING back on every upgrade.
  const env = envFor('kept', s, { DOMAINS: name, STAGING: 'true' });
  const plan = await runCli(['plan', '--at', due.toISOString()], env);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, new RegExp(`${name.replace(/\./g, '\\.')}\\s+issue\\s+expires in \\d+ days \\(renew at \\d+\\); kept production: STAGING would downgrade`));

  const { report, orders } = await pass(env, due);
  assert.equal(report.ok, true, errors(report));
  assert.equal(orders, 1);
  const r = report.results[0]!;
  assert.equal(r.decision.reason, 'Renew');
  assert.equal(r.decision.order?.kind, 'production');
  assert.equal(r.kind, 'production');
  const after = s.certByName(name)!;
  assert.equal(after.id, before.id);
  assert.notEqual(parseCert(after.cert).fingerprint, parseCert(before.cert).fingerprint, 'renewed');
  assertChainVerifies(after.cert + after.certChain, await prod.root());
  const stagingRoot = await staging.root();
  assert.throws(() => assertChainVerifies(after.cert + after.certChain, stagingRoot), 'not from staging');
  const local = await new LocalStore(new FilesStore(env.DATA_DIR!)).read(name, { recover: false });
  assert.equal(local.state === 'present' && local.meta.directoryUrl, prod.directoryUrl);
  // Nothing was ever asked of the staging directory: it has no ledger.
  assert.equal(readdirSync(join(env.DATA_DIR!, 'ledger')).length, 1);
});

test('two managers with separate data volumes against one Rancher: each certificate ordered once, no push overwrites the other\'s', async () => {
  const s = await sims.start();
  const names = ['one.decisions.example.com', 'two.decisions.example.com'];
  const a = envFor('two-a', s, { DOMAINS: names.join(';') });
  const b = envFor('two-b', s, { DOMAINS: names.join(';') });
  const first = await pass(a);
  assert.equal(first.report.ok, true, errors(first.report));
  assert.equal(first.orders, 2);
  const written = () => names.map((n) => s.certByName(n)!.writes);
  const fingerprints = () => names.map((n) => parseCert(s.certByName(n)!.cert).fingerprint);
  const settled = { writes: written(), fps: fingerprints() };

  let orders = 0;
  for (let i = 0; i < 10; i++) {
    for (const [who, env] of [['b', b], ['a', a]] as const) {
      const { report, orders: n } = await pass(env);
      assert.equal(report.ok, true, `pass ${i + 1} of ${who}: ${errors(report)}`);
      orders += n;
      const want = who === 'b' ? 'ServedElsewhere' : 'UpToDate';
      assert.deepEqual(report.results.map((r) => r.decision.reason), [want, want], `pass ${i + 1} of ${who}`);
    }
  }
  assert.equal(orders, 0, 'the second manager orders nothing while the first one\'s copies are valid and not due');
  assert.deepEqual(written(), settled.writes, 'no push at all');
  assert.deepEqual(fingerprints(), settled.fps);

  // The second manager, its clock past the renewal point, renews both and pushes; the first, with its
  // older local copies (not due on its own clock), finds newer ones in Rancher and leaves them.
  const due = new Date(renewalTime(parseCert(s.certByName(names[0]!)!.cert), undefined).getTime() + DAY);
  const renewedByB = await pass(b, due);
  assert.equal(renewedByB.orders, 2, errors(renewedByB.report));
  const afterB = { writes: written(), fps: fingerprints() };
  assert.notDeepEqual(afterB.fps, settled.fps);
  for (let i = 0; i < 3; i++) {
    const byA = await pass(a);
    assert.equal(byA.orders, 0);
    assert.deepEqual(byA.report.results.map((r) => r.decision.reason), ['PushedElsewhere', 'PushedElsewhere']);
    assert.match(byA.report.results[0]!.decision.message, /a newer copy is in the orchestrator \(pushed elsewhere\)/);
    const byB = await pass(b);
    assert.equal(byB.orders, 0);
    assert.deepEqual(byB.report.results.map((r) => r.decision.reason), ['UpToDate', 'UpToDate']);
  }
  assert.deepEqual(written(), afterB.writes, 'the first manager never pushed its older copy over the newer one');
  assert.deepEqual(fingerprints(), afterB.fps);
});

test('a foreign certificate expiring in 10 days: manager --once exits 1, and plan, /api/status, the page and the metrics show it; never written', async () => {
  const s = await sims.start();
  const theirs = await createSelfSigned(['legacy.decisions.example.com'], { days: 10 });
  s.addCertificate({ name: 'legacy.decisions.example.com', cert: theirs.cert, key: theirs.key, description: 'uploaded by hand' });
  const snapshot = JSON.stringify(s.certByName('legacy.decisions.example.com'));
  const env = envFor('foreign', s, { DOMAINS: 'legacy.decisions.example.com;fresh.decisions.example.com', LOG_LEVEL: 'info' });

  const once = await runCli(['manager', '--once'], env);
  assert.equal(once.code, 1, once.stdout.slice(-2000));
  assert.match(once.stdout, /legacy\.decisions\.example\.com: none — orchestrator holds a certificate certwrangler does not manage, and it expires in 10 days/);

  const plan = await runCli(['plan'], env);
  assert.match(plan.stdout, /legacy\.decisions\.example\.com\s+none\s+orchestrator holds a certificate certwrangler does not manage, and it expires in 10 days \(\d{4}-\d\d-\d\d\): renew it yourself, or list it in ADOPT_EXISTING/);

  const port = await freePort();
  const manager = startCli(['manager'], { ...env, STATUS_ADDR: `127.0.0.1:${port}`, SCHEDULE: '0 0 1 1 *' });
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const ready = await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false);
      if (ready) break;
      if (i > 300) throw new Error(`manager not ready: ${manager.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const st = (await (await fetch(`${url}/api/status`)).json()) as StatusSnapshot;
    const row = st.certificates.find((c) => c.name === 'legacy.decisions.example.com')!;
    assert.equal(row.health, 'expiring');
    assert.equal(row.foreign, true);
    assert.equal(row.notAfter, parseCert(theirs.cert).notAfter.toISOString());
    assert.ok(st.alerts.some((a) => /^legacy\.decisions\.example\.com: the orchestrator's certificate, which certwrangler does not manage, expires in 9 days/.test(a)), st.alerts.join('\n'));
    const page = await (await fetch(url)).text();
    assert.match(page, /data-name="legacy\.decisions\.example\.com" data-health="expiring"/);
    assert.match(page, /foreign<br><span class="muted">not managed, never written/);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /certwrangler_certificate_expiration_timestamp_seconds\{name="legacy\.decisions\.example\.com",kind="foreign"\} \d+/);
  } finally {
    manager.proc.kill('SIGTERM');
    await manager.done;
  }
  assert.equal(JSON.stringify(s.certByName('legacy.decisions.example.com')), snapshot, 'not one byte changed');
});

test('a name the CA refuses at new-order: the order is released from the ledger and backs off; a second pass in the backoff makes no order', async () => {
  const s = await sims.start();
  const env = envFor('refused', s, { DOMAINS: `${BLOCKED};fine.decisions.example.com` });
  const now = new Date();
  const first = await pass(env, now);
  const by = new Map(first.report.results.map((r) => [r.name, r]));
  const blocked = by.get(BLOCKED)!;
  assert.equal(blocked.outcome, 'failed');
  assert.match(blocked.error!, /new order: .*blocked/i);
  assert.equal(Date.parse(blocked.nextAttempt!), now.getTime() + 3_600_000, 'backs off an hour');
  assert.equal(by.get('fine.decisions.example.com')!.outcome, 'ok');
  assert.equal(first.orders, 1, 'only the fine name got an order');
  assert.deepEqual(ledgerOf(env.DATA_DIR!).flatMap((l) => l.orders.flatMap((o) => o.names)), ['fine.decisions.example.com'], 'the refused order does not count');

  const later = new Date(now.getTime() + 30 * 60_000);
  const second = await pass(env, later);
  assert.equal(orderPosts(second.requests), 0, 'no new-order request at all while backing off');
  const again = second.report.results.find((r) => r.name === BLOCKED)!;
  assert.equal(again.decision.action, 'wait');
  assert.equal(again.decision.reason, 'BackingOff');
  assert.equal(again.outcome, 'waiting');

  // After the backoff it tries again, and the next backoff is twice as long.
  const third = await pass(env, new Date(now.getTime() + 3_600_000 + 1000));
  const tried = third.report.results.find((r) => r.name === BLOCKED)!;
  assert.equal(tried.outcome, 'failed');
  assert.equal(Date.parse(tried.nextAttempt!), now.getTime() + 3_600_000 + 1000 + 2 * 3_600_000);
  assert.deepEqual(ledgerOf(env.DATA_DIR!).flatMap((l) => l.orders.flatMap((o) => o.names)), ['fine.decisions.example.com']);
});
