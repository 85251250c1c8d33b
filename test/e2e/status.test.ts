/**
 * Issue 6 end to end: a real `certwrangler manager` against Pebble, with the status endpoint, a webhook
 * receiver and hooks; the page opened in headless Chromium.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
  const bad = await fetch(`${statusUrl}/api/certificates/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ names: ['10.0.0.1'] }) });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /IP address/);

  const put = await fetch(`${statusUrl}/api/certificates/${name}?wait=60`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ names: [`www.${name}`, name] }) });
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

  assert.equal((await fetch(`${statusUrl}/api/certificates/${GOOD}`, { method: 'DELETE' })).status, 409, 'DOMAINS certificates are not the API\'s to drop');
  assert.equal((await fetch(`${statusUrl}/api/certificates/${name}`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${statusUrl}/api/certificates/${name}`, { method: 'DELETE' })).status, 404);
  const recon = await fetch(`${statusUrl}/api/reconcile?wait=60`, { method: 'POST' });
  assert.equal(recon.status, 502, 'the pass is not all fine while broken.status-example.com fails');
  assert.ok(!(await status()).certificates.some((c) => c.name === name), 'no longer wanted');
  assert.ok(existsSync(join(base, 'data', 'live', name, 'fullchain.pem')), 'its files are kept');
});
