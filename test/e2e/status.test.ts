/**
 * Issue 6 end to end: a real `certwrangler manager` against Pebble, with the status endpoint, a webhook
 * receiver and hooks; the page opened in headless Chromium.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { acmeLab, pebbleEnv, runCli, type AcmeLab } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { parseMetrics, startReceiver, type Receiver } from '../support/receiver.js';
import { parseCert } from '../../src/certs/parse.js';
import type { StatusSnapshot } from '../../src/status/book.js';

const base = mkdtempSync(join(tmpdir(), 'cw-status-'));
const ARTIFACTS = resolve('test-artifacts');
const GOOD = 'good.status-example.com';
const BROKEN = 'broken.status-example.com';
let lab: AcmeLab;
let hooks: Receiver;
let manager: ChildProcess;
let logs: { level: string; msg: string; [k: string]: unknown }[] = [];
let statusUrl: string;
let env: Record<string, string>;
/** The token the manager generated into DATA_DIR/status-token (STATUS_TOKEN is not set). */
let token: string;
let auth: Record<string, string>;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; manager log:\n${logs.map((l) => l.msg).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const status = async () => (await (await fetch(`${statusUrl}/api/status`)).json()) as StatusSnapshot;

before(async () => {
  lab = acmeLab(base);
  const pebble = await lab.pebble('pebble');
  // broken.status-example.com resolves to an address nothing listens on: its HTTP-01 validation fails.
  const dns = await fetch(`${pebble.dnsManagementUrl}/add-a`, { method: 'POST', body: JSON.stringify({ host: `${BROKEN}.`, addresses: ['127.0.0.2'] }) });
  assert.equal(dns.status, 200);
  hooks = await startReceiver();
  const port = await freePort();
  statusUrl = `http://127.0.0.1:${port}`;
  env = {
    DOMAINS: `${GOOD},www.${GOOD};${BROKEN}`,
    ...pebbleEnv(pebble, 'production'),
    ORCHESTRATOR: 'files',
    DATA_DIR: join(base, 'data'),
    WEBROOT_DIR: lab.webroot,
    STATUS_ADDR: `127.0.0.1:${port}`,
    SCHEDULE: '0 0 1 1 *',
    WEBHOOK_URL: `${hooks.url}/hooks/secret-part`,
    ON_CHANGE_COMMAND: `echo "$CERTWRANGLER_EVENT $CERTWRANGLER_NAME $CERTWRANGLER_FULLCHAIN" >> ${join(base, 'changes.log')}`,
    // Hangs: it must be killed at HOOK_TIMEOUT, process group and all.
    ON_FAILURE_COMMAND: `echo $$ > ${join(base, 'failure-hook.pid')}; exec sleep 60`,
    HOOK_TIMEOUT: '1s',
    LOG_LEVEL: 'debug',
  };
  manager = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'manager'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  manager.stdout!.on('data', (b: Buffer) => {
    buf += b;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) if (l.trim()) logs.push(JSON.parse(l));
  });
  manager.stderr!.on('data', (b: Buffer) => process.stderr.write(b));
  await waitFor('readiness', async () => ((await fetch(`${statusUrl}/readyz`)).status === 200 ? true : undefined));
  token = readFileSync(join(base, 'data', 'status-token'), 'utf8').trim();
  auth = { authorization: `Bearer ${token}` };
});

after(async () => {
  if (manager.exitCode === null) {
    const exited = new Promise((r) => manager.once('exit', r));
    manager.kill('SIGTERM');
    await exited;
  }
  await hooks.close();
  await lab.stop();
  rmSync(base, { recursive: true, force: true });
});

test('status: /healthz, /readyz after the first pass, and /api/status with one row per certificate', async () => {
  assert.equal((await fetch(`${statusUrl}/healthz`)).status, 200);
  const s = await status();
  assert.equal(s.ready, true);
  const good = s.certificates.find((c) => c.name === GOOD)!;
  const broken = s.certificates.find((c) => c.name === BROKEN)!;
  assert.deepEqual(good.names, [GOOD, `www.${GOOD}`]);
  assert.equal(good.kind, 'production');
  assert.equal(good.health, 'ok');
  assert.match(good.issuer!, /Pebble Intermediate/);
  const live = parseCert(readFileSync(join(base, 'data', 'live', GOOD, 'cert.pem'), 'utf8'));
  assert.equal(good.notAfter, live.notAfter.toISOString());
  assert.ok(good.renewAt && Date.parse(good.renewAt) < live.notAfter.getTime());
  assert.deepEqual(good.lastAction && { action: good.lastAction.action, outcome: good.lastAction.outcome }, { action: 'issued', outcome: 'ok' });
  assert.equal(broken.health, 'failing');
  assert.match(broken.lastError!, /broken\.status-example\.com: authorization invalid/);
  assert.ok(broken.nextAttempt && Date.parse(broken.nextAttempt) > Date.now() + 50 * 60_000, 'backs off about an hour');
  assert.ok(s.alerts.some((a) => a.startsWith(`${BROKEN} is failing`)));
});

test('status page in headless Chromium: a row per certificate, the banner names the failing one', async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
    const res = await page.goto(statusUrl);
    assert.equal(res?.status(), 200);
    assert.equal(await page.locator('tr.cert').count(), 2);
    assert.equal(await page.locator(`tr.cert[data-name="${GOOD}"] .badge`).innerText(), 'OK');
    assert.equal(await page.locator(`tr.cert[data-name="${BROKEN}"] .badge`).innerText(), 'FAILING');
    assert.match(await page.locator(`tr.cert[data-name="${GOOD}"]`).innerText(), /production[\s\S]*Pebble Intermediate[\s\S]*in \d+ days/);
    const banner = page.getByRole('alert');
    assert.ok(await banner.isVisible());
    assert.match(await banner.innerText(), new RegExp(`${BROKEN.replace(/\./g, '\\.')} is failing: .*authorization invalid.*next attempt`));
    assert.equal(await page.locator('meta[http-equiv="refresh"]').getAttribute('content'), '30');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });
    assert.ok(existsSync(join(ARTIFACTS, 'status-page.png')));
  } finally {
    await browser.close();
  }
});

test('metrics: expiry, renewal and ready status of a known certificate, orders by result, ACME requests, pass time', async () => {
  const res = await fetch(`${statusUrl}/metrics`);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const samples = parseMetrics(await res.text());
  const one = (name: string, labels: Record<string, string> = {}) => {
    const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    assert.equal(found.length, 1, `${name} ${JSON.stringify(labels)}: ${found.length} samples`);
    return found[0]!.value;
  };
  const live = parseCert(readFileSync(join(base, 'data', 'live', GOOD, 'cert.pem'), 'utf8'));
  assert.equal(one('certwrangler_certificate_expiration_timestamp_seconds', { name: GOOD, kind: 'production' }), live.notAfter.getTime() / 1000);
  const s = await status();
  assert.equal(one('certwrangler_certificate_renewal_timestamp_seconds', { name: GOOD }), Date.parse(s.certificates.find((c) => c.name === GOOD)!.renewAt!) / 1000);
  assert.equal(one('certwrangler_certificate_ready_status', { name: GOOD, condition: 'True' }), 1);
  assert.equal(one('certwrangler_certificate_ready_status', { name: GOOD, condition: 'False' }), 0);
  assert.equal(one('certwrangler_certificate_ready_status', { name: BROKEN, condition: 'False' }), 1);
  assert.ok(one('certwrangler_orders_total', { result: 'issued' }) >= 1);
  assert.ok(one('certwrangler_orders_total', { result: 'failed' }) >= 1);
  const newOrders = samples.filter((x) => x.name === 'certwrangler_http_acme_client_request_count' && x.labels.path === '/order-plz' && x.labels.status === '201');
  assert.ok(newOrders.length === 1 && newOrders[0]!.value >= 2, 'two orders created, counted by path and status');
  assert.ok(one('certwrangler_pass_duration_seconds_count') >= 1);
  assert.ok(one('certwrangler_last_pass_timestamp_seconds') > Date.now() / 1000 - 600);
});

test('webhook: one JSON POST per event, with the certificate, its names and the error; the URL never logged', async () => {
  await hooks.waitFor((r) => r.some((x) => JSON.parse(x.body).event === 'issued') && r.some((x) => JSON.parse(x.body).event === 'failed'));
  const bodies = hooks.received.map((r) => JSON.parse(r.body) as Record<string, unknown>);
  assert.ok(hooks.received.every((r) => r.path === '/hooks/secret-part' && r.method === 'POST' && r.headers['content-type']?.startsWith('application/json')));
  const issued = bodies.find((b) => b.event === 'issued')!;
  assert.equal(issued.source, 'certwrangler');
  assert.equal(issued.certificate, GOOD);
  assert.deepEqual(issued.names, [GOOD, `www.${GOOD}`]);
  assert.equal(issued.kind, 'production');
  assert.equal(issued.notAfter, (await status()).certificates.find((c) => c.name === GOOD)!.notAfter);
  const failed = bodies.find((b) => b.event === 'failed')!;
  assert.equal(failed.certificate, BROKEN);
  assert.match(String(failed.error), /authorization invalid/);
  assert.ok(typeof failed.nextAttempt === 'string');
  // A placeholder came before the real certificate, for each certificate in order.
  const goodEvents = bodies.filter((b) => b.certificate === GOOD).map((b) => b.event);
  assert.deepEqual(goodEvents.slice(0, 2), ['placeholder', 'issued']);
  assert.ok(!logs.some((l) => JSON.stringify(l).includes('secret-part')), 'the webhook path (a secret for Slack) is never logged');
});

test('hooks: ON_CHANGE_COMMAND runs per change with the paths; a hanging ON_FAILURE_COMMAND is killed at HOOK_TIMEOUT', async () => {
  const fullchain = join(base, 'data', 'live', GOOD, 'fullchain.pem');
  await waitFor('change hook', async () => (readFileSync(join(base, 'changes.log'), 'utf8').includes(`issued ${GOOD} ${fullchain}`) ? true : undefined));
  const killed = await waitFor('hook timeout', async () => logs.find((l) => l.hook === 'ON_FAILURE_COMMAND' && /killed after 1000 ms/.test(l.msg)));
  assert.equal(killed.cert, BROKEN);
  const pid = Number(readFileSync(join(base, 'failure-hook.pid'), 'utf8'));
  assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the hook process is gone');
  // The pass was not held up by the hook: it finished before the hook was killed.
  const passDone = logs.findIndex((l) => /^pass finished/.test(l.msg));
  assert.ok(passDone >= 0 && passDone < logs.indexOf(killed));
});

test('API: PUT a certificate and wait for it; it is kept across restarts; DELETE stops asking for it', async () => {
  const name = 'api.status-example.com';
  const bad = await fetch(`${statusUrl}/api/certificates/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ names: ['10.0.0.1'] }) });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /IP address/);

  const put = await fetch(`${statusUrl}/api/certificates/${name}?wait=60`, { method: 'PUT', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ names: [`www.${name}`, name] }) });
  const body = (await put.json()) as { names: string[]; result: { outcome: string }; status: { kind: string; sources: string[] } };
  assert.equal(put.status, 200, JSON.stringify(body));
  assert.deepEqual(body.names, [name, `www.${name}`], 'the certificate name comes first');
  assert.equal(body.result.outcome, 'ok');
  assert.equal(body.status.kind, 'production');
  assert.deepEqual(body.status.sources, ['api']);
  assert.ok(existsSync(join(base, 'data', 'live', name, 'fullchain.pem')));

  // A fresh process (here `plan`) sees the request from DATA_DIR.
  const plan = await runCli(['plan', '--json'], env);
  const planned = (JSON.parse(plan.stdout) as { results: { name: string; sources: string[]; decision: { reason: string } }[] }).results.find((r) => r.name === name);
  assert.deepEqual(planned && { sources: planned.sources, reason: planned.decision.reason }, { sources: ['api'], reason: 'UpToDate' });

  assert.equal((await fetch(`${statusUrl}/api/certificates/${GOOD}`, { method: 'DELETE', headers: auth })).status, 409, 'DOMAINS certificates are not the API\'s to drop');
  assert.equal((await fetch(`${statusUrl}/api/certificates/${name}`, { method: 'DELETE' })).status, 401, 'no token, no change, on loopback too');
  assert.equal((await fetch(`${statusUrl}/api/certificates/${name}`, { method: 'DELETE', headers: auth })).status, 204);
  assert.equal((await fetch(`${statusUrl}/api/certificates/${name}`, { method: 'DELETE', headers: auth })).status, 404);
  const recon = await fetch(`${statusUrl}/api/reconcile?wait=60`, { method: 'POST', headers: auth });
  assert.equal(recon.status, 502, 'the pass is not all fine while broken.status-example.com fails');
  // Served as it is and never renewed; shown as Unwanted (issue 17 item 5).
  assert.equal((await status()).certificates.find((c) => c.name === name)?.decision.reason, 'Unwanted', 'no longer wanted');
  assert.ok(existsSync(join(base, 'data', 'live', name, 'fullchain.pem')), 'its files are kept');
});

test('status token: generated into DATA_DIR/status-token, 0600, 256 bits, and never in the log', async () => {
  const file = join(base, 'data', 'status-token');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.ok(logs.some((l) => l.msg.includes(file)), 'the log says where the token is');
  assert.ok(!logs.some((l) => JSON.stringify(l).includes(token)), 'but never what it is');
});

test('CLI: certwrangler request and reconcile talk to the running manager with the generated token', async () => {
  const name = 'cli.status-example.com';
  const req = await runCli(['request', name, `www.${name}`, '--wait', '60'], env);
  assert.equal(req.code, 0, req.stdout + req.stderr);
  assert.match(req.stdout, new RegExp(`^${name.replace(/\./g, '\\.')} \\[${name.replace(/\./g, '\\.')}, www\\.${name.replace(/\./g, '\\.')}\\]: production certificate in place, expires 20`));
  assert.ok(existsSync(join(base, 'data', 'live', name, 'fullchain.pem')));
  assert.deepEqual((await status()).certificates.find((c) => c.name === name)?.sources, ['api']);

  const accepted = await runCli(['request', name, `www.${name}`], env);
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.match(accepted.stdout, /requested; a pass starts now/);

  const refused = await runCli(['request', 'bad.status-example.com', '10.0.0.1'], env);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /the manager refused \(400\): .*IP address/);

  const failing = await runCli(['request', BROKEN, '--wait', '60'], env);
  assert.equal(failing.code, 1, 'broken.status-example.com fails (and is backing off)');
  assert.match(failing.stdout + failing.stderr, /^broken\.status-example\.com \[broken\.status-example\.com\]: (not finished|failed)/);

  const pass = await runCli(['reconcile', '--wait', '60'], env);
  assert.equal(pass.code, 1, 'a pass with a failing certificate needs attention');
  assert.match(pass.stderr, /needs attention:\n {2}broken\.status-example\.com: .*authorization invalid/);
  const now = await runCli(['reconcile'], env);
  assert.equal(now.code, 0, now.stderr);

  // These change nothing, so they run side by side (each CLI start costs seconds of tsx).
  const [wrong, noToken, noManager, usage] = await Promise.all([
    runCli(['reconcile'], { ...env, STATUS_TOKEN: 'not-the-right-token-0123' }),
    runCli(['reconcile'], { ...env, DATA_DIR: join(base, 'elsewhere') }),
    runCli(['reconcile'], { ...env, STATUS_ADDR: `127.0.0.1:${await freePort()}` }),
    runCli(['request', '--wait', 'soon'], env),
  ]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /the manager refused \(401\): missing or wrong token/);
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /no token: STATUS_TOKEN is not set and .*elsewhere\/status-token does not exist/);
  assert.equal(noManager.code, 1);
  assert.match(noManager.stderr, /no manager answers at http:\/\/127\.0\.0\.1:\d+ \(STATUS_ADDR\): ECONNREFUSED/);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--wait needs whole seconds from 0 to 600, got "soon"/);
  for (const r of [req, accepted, refused, failing, pass, now]) assert.ok(!(r.stdout + r.stderr).includes(token), 'the token is never printed');
});

test('headless Chromium: a page on another site (or a rebound name) cannot change anything, by form or by fetch', async () => {
  // The attacker's page, on another origin: a form POST to /api/reconcile, and a fetch that sends the
  // real token as if it had leaked (only the Origin check can stop that one).
  const page = (target: string) => `<!doctype html><form id="f" method="POST" action="${target}/api/reconcile"></form>
<script>
window.fetchResult = fetch('${target}/api/reconcile', { method: 'POST', headers: { authorization: 'Bearer ${token}' } })
  .then((r) => r.text().then((t) => r.status + ' ' + t), (e) => 'blocked ' + e.message);
</script>`;
  const evil: Server = createServer((_req, res) => res.setHeader('content-type', 'text/html').end(page(statusUrl))).listen(0, '127.0.0.1');
  await new Promise((r) => evil.once('listening', r));
  const evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
  const passesBefore = logs.filter((l) => /^pass finished/.test(l.msg)).length;
  // rebind.attacker.example resolves to 127.0.0.1 in this browser, as a rebinding DNS server would make it.
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--host-resolver-rules=MAP rebind.attacker.example 127.0.0.1'] });
  try {
    const tab = await browser.newPage();
    await tab.goto(evilUrl);
    const fetched = String(await tab.evaluate('window.fetchResult'));
    // Either the browser stops it (CORS preflight for the Authorization header) or we refuse it: never 2xx.
    assert.ok(fetched.startsWith('blocked') || /^403 .*cross-site/.test(fetched), fetched);
    const [answer] = await Promise.all([tab.waitForNavigation(), tab.evaluate('document.getElementById("f").submit()')]);
    assert.equal(answer?.status(), 403);
    assert.match(await tab.locator('body').innerText(), /refused: a cross-site request/);

    // DNS rebinding, as the browser sees it: a name of the attacker's that resolves to 127.0.0.1.
    // The page is now same-origin with the endpoint, so Origin says nothing: the Host does.
    const rebound = await browser.newPage();
    const res = await rebound.goto(`http://rebind.attacker.example:${new URL(statusUrl).port}/api/status`);
    assert.equal(res?.status(), 421, 'the status is not read');
    assert.match(await rebound.locator('body').innerText(), /Host .*rebind\.attacker\.example.* is not this endpoint/);
    const posted = String(await rebound.evaluate(`fetch('/api/reconcile', { method: 'POST' }).then((r) => String(r.status))`));
    assert.equal(posted, '421', 'nor is a pass started');
  } finally {
    await browser.close();
    evil.close();
  }
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(logs.filter((l) => /^pass finished/.test(l.msg)).length, passesBefore, 'no pass was started from the page');
});
