/**
 * VERIFY end to end (issue 19 item 2): after a push, certwrangler asks the balancer over TLS with SNI what it
 * serves. Files target: a real nginx serving CERTS_DIR over HTTPS, reloaded (or not) by ON_CHANGE_COMMAND.
 * Rancher: the simulator's balancer listening on a loopback TLS port listed in its publicEndpoints, serving
 * what it held at its last `update` action. A reload that did not take is reloaded once more, then reported
 * NotServed (status, event, metric), and never answered with a new order.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { assemble } from '../../src/assemble.js';
import { planPass } from '../../src/reconciler.js';
import { parseCert } from '../../src/certs/parse.js';
import { Metrics } from '../../src/status/metrics.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, passWithOrders, pebbleEnv } from '../support/harness.js';
import { startNginx, type Nginx } from '../support/nginx.js';
import { freePort } from '../support/ports.js';
import { simPool } from '../support/rancher-sim.js';

const base = mkdtempSync(join(tmpdir(), 'cw-verify-'));
const lab = acmeLab(base);
const sims = simPool();
let pebble: Pebble;
let nginx: Nginx | undefined;

before(async () => {
  pebble = await lab.pebble('pebble');
});
after(async () => {
  await nginx?.stop();
  await sims.closeAll();
  await lab.stop();
});

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []);
const DAY = 86_400_000;

function filesEnv(dir: string, domain: string, onChange: string, extra: Record<string, string> = {}): Record<string, string> {
  const d = join(base, dir);
  return {
    DATA_DIR: join(d, 'data'),
    CERTS_DIR: join(d, 'live'),
    WEBROOT_DIR: lab.webroot,
    LOG_LEVEL: 'silent',
    DOMAINS: domain,
    ...pebbleEnv(pebble, 'production'),
    ON_CHANGE_COMMAND: `echo "$CERTWRANGLER_EVENT" >> ${join(d, 'hook.log')}; ${onChange}`,
    ON_FAILURE_COMMAND: `echo "$CERTWRANGLER_EVENT" >> ${join(d, 'failure.log')}`,
    // Quick keys and no placeholders: this file is about what reaches the balancer.
    KEY_TYPE: 'ecdsa-p256',
    PLACEHOLDERS: 'false',
    VERIFY_TIMEOUT: '600ms',
    ...extra,
  };
}

const servedFp = (env: Record<string, string>, name: string) => parseCert(readFileSync(join(env.CERTS_DIR!, name, 'cert.pem'), 'utf8')).fingerprint;

test('files target behind nginx over HTTPS: a hook that reloads gives Served; one that does not gives NotServed after one more reload, and no extra order', async () => {
  const port = await freePort();
  const addrs = { VERIFY_ADDRS: `127.0.0.1:${port}` };
  // First certificates, before nginx can start (it needs their files): no balancer to ask yet.
  const good = filesEnv('good', 'good.example.com', 'kill -HUP "$(cat ' + join(base, 'nginx', 'nginx.pid') + ')"', addrs);
  const stale = filesEnv('stale', 'stale.example.com', 'true', addrs);
  const first = await Promise.all([good, stale].map((e) => passWithOrders({ ...e, VERIFY: 'false' })));
  for (const f of first) assert.equal(f.report.ok, true, JSON.stringify(f.report.results.map((r) => r.error)));
  const vhost = (env: Record<string, string>, name: string) =>
    `server {\n  listen 127.0.0.1:${port} ssl;\n  server_name ${name} alt.${name};\n  server_tokens off;\n  ssl_certificate ${join(env.CERTS_DIR!, name, 'fullchain.pem')};\n  ssl_certificate_key ${join(env.CERTS_DIR!, name, 'privkey.pem')};\n  return 200 "ok";\n}\n`;
  nginx = await startNginx(join(base, 'nginx'), vhost(good, 'good.example.com') + vhost(stale, 'stale.example.com'), port);

  // A name is added: the new certificate must reach the balancer.
  good.DOMAINS = 'good.example.com,alt.good.example.com';
  stale.DOMAINS = 'stale.example.com,alt.stale.example.com';
  const g = await passWithOrders(good);
  const gr = g.report.results[0]!;
  assert.equal(g.orders, 1);
  assert.equal(gr.served, true, gr.error);
  assert.ok(gr.serving!.every((c) => c.matches && c.fingerprint === servedFp(good, 'good.example.com')));
  assert.deepEqual(lines(join(base, 'good', 'hook.log')).slice(-1), ['renewed'], 'no extra reload when it was served');

  const s = await passWithOrders(stale);
  const sr = s.report.results[0]!;
  assert.equal(s.orders, 1, 'the renewal, and no second order');
  assert.equal(sr.served, false);
  assert.equal(sr.outcome, 'failed');
  assert.equal(s.report.ok, false, '--once exits 1');
  assert.match(sr.error ?? '', new RegExp(`^NotServed: VERIFY_ADDRS at 127\\.0\\.0\\.1:${port} for stale\\.example\\.com: serves sha256 .*; VERIFY_ADDRS at 127\\.0\\.0\\.1:${port} for alt\\.stale\\.example\\.com: serves sha256 `));
  assert.deepEqual(lines(join(base, 'stale', 'hook.log')).slice(-2), ['renewed', 'reload'], 'one more reload through ON_CHANGE_COMMAND');
  assert.deepEqual(lines(join(base, 'stale', 'failure.log')), ['not-served'], 'the event reaches ON_FAILURE_COMMAND');
  const metrics = new Metrics();
  metrics.recordPass(s.report, () => 'failed');
  metrics.recordPass({ ...g.report, results: [...g.report.results, sr] }, () => 'ok');
  const text = await metrics.text();
  assert.match(text, /certwrangler_certificate_served\{name="stale\.example\.com"\} 0/);
  assert.match(text, /certwrangler_certificate_served\{name="good\.example\.com"\} 1/);

  // The next pass orders nothing, checks again, and does not send the event again.
  const again = await passWithOrders(stale);
  assert.equal(again.orders, 0);
  assert.equal(again.report.results[0]!.served, false);
  assert.deepEqual(lines(join(base, 'stale', 'failure.log')), ['not-served']);

  // plan shows what the balancer serves now: not the local copy.
  const plan = await planPass(await assemble(loadConfig(stale), createLogger('silent'), { dryRun: true }));
  assert.equal(plan.results[0]!.serving![0]!.matches, false);
  assert.notEqual(plan.results[0]!.serving![0]!.fingerprint, servedFp(stale, 'stale.example.com'));

  // Someone reloads nginx: the next pass sees it served, still without an order.
  nginx.reload();
  let fixed;
  for (let i = 0; i < 40; i++) {
    fixed = await passWithOrders({ ...stale, VERIFY_TIMEOUT: '100ms' });
    if (fixed.report.results[0]!.served) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(fixed!.orders, 0);
  assert.equal(fixed!.report.results[0]!.served, true);
  assert.equal(fixed!.report.ok, true);
});

test('Rancher: the balancer serves what it holds after its update action, found through publicEndpoints; a balancer whose update never takes is NotServed, without a new order', async () => {
  const sim = await sims.start();
  const lb = sim.addBalancer({ name: 'edge', certificateNames: ['shop.example.com'] });
  const tlsPort = await sim.listenTls(lb.id);
  const env = { DATA_DIR: join(base, 'rancher', 'data'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', DOMAINS: 'shop.example.com', ...sim.env, ...pebbleEnv(pebble, 'production'), KEY_TYPE: 'ecdsa-p256', PLACEHOLDERS: 'false', VERIFY_TIMEOUT: '600ms' };
  const first = await passWithOrders(env, { retryBaseMs: 10, settleTimeoutMs: 2000 });
  const r = first.report.results[0]!;
  assert.equal(first.orders, 1);
  assert.equal(r.served, true, r.error);
  const held = parseCert(readFileSync(join(env.DATA_DIR, 'certs', 'shop.example.com', 'cert.pem'), 'utf8')).fingerprint;
  assert.deepEqual(r.serving!.map((c) => [c.balancer, c.address, c.fingerprint]), [[`edge (${lb.id})`, `127.0.0.1:${tlsPort}`, held]]);

  // Every update of the balancer now fails: the renewed certificate is in Rancher but not served.
  sim.failUpdate(lb.id, 10, 'error');
  const renewAt = new Date(Date.parse(r.renewAt!) + DAY);
  const before = lb.updateCalls;
  const second = await passWithOrders(env, { now: () => renewAt, retryBaseMs: 10, settleTimeoutMs: 2000 });
  const r2 = second.report.results[0]!;
  assert.equal(second.orders, 1, 'the renewal only');
  assert.equal(r2.served, false);
  assert.match(r2.error ?? '', new RegExp(`^NotServed: edge \\(${lb.id}\\) at 127\\.0\\.0\\.1:${tlsPort} for shop\\.example\\.com: serves sha256 ${held.slice(0, 23)}`), 'it still serves the old one');
  assert.equal(lb.updateCalls - before, 2, 'the push\'s update, and one more');
});
