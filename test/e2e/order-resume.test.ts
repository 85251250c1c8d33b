/**
 * Issue 20 item 2: a manager that takes over from one killed mid-order finishes that order, with the key kept
 * beside it, and makes no second one. The killed manager is a pass whose HTTP-01 answer never comes (it hangs in
 * present(), as a process frozen or killed there would): it leaves an order pending at Pebble and its record in
 * the store. A second manager over the same DATA_DIR carries that order on.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { assemble } from '../../src/assemble.js';
import { runPass, type PassReport } from '../../src/reconciler.js';
import { countAcmeRequests } from '../../src/acme/transport.js';
import { keyMatchesCert } from '../../src/certs/parse.js';
import type { ChallengeSolver } from '../../src/acme/challenge.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, errors, pebbleEnv } from '../support/harness.js';

const base = mkdtempSync(join(tmpdir(), 'cw-order-resume-'));
const lab = acmeLab(base);
let pebble: Pebble;

before(async () => {
  pebble = await lab.pebble('pebble');
});
after(() => lab.stop());

function envFor(dataDir: string, domain: string): Record<string, string> {
  return { ORCHESTRATOR: 'files', DATA_DIR: dataDir, CERTS_DIR: join(dataDir, 'live'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', EMAIL: 'ops@example.com', DOMAINS: domain, PLACEHOLDERS: 'false', DYNAMIC_CONFIG: 'false', ...pebbleEnv(pebble, 'production') };
}

/** A pass that creates its order and then hangs answering the challenge: what a killed leader leaves. */
async function leaveOrderHalfDone(env: Record<string, string>, orderFile: string): Promise<void> {
  const m = await assemble(loadConfig(env), createLogger('silent'), { retryBaseMs: 50 });
  const hang: ChallengeSolver = { type: 'http-01', present: () => new Promise<void>(() => undefined), cleanup: async () => undefined, cleanupAll: async () => undefined };
  void runPass({ ...m, solver: hang as typeof m.solver });
  for (let i = 0; i < 600 && !existsSync(orderFile); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(orderFile), 'the first manager kept its order in the store before answering a challenge');
}

async function takeOver(env: Record<string, string>): Promise<{ report: PassReport; orders: number }> {
  const counter = countAcmeRequests();
  try {
    const m = await assemble(loadConfig(env), createLogger('silent'), { retryBaseMs: 50 });
    const report = await runPass(m);
    const orders = [...counter.counts].filter(([k]) => /^201 POST \/order-plz$/.test(k)).reduce((n, [, v]) => n + v, 0);
    return { report, orders };
  } finally {
    counter.stop();
  }
}

test('an order left half done is carried on by the next manager: no second order, the kept key, the record then forgotten', async () => {
  const dataDir = join(base, 'resume');
  const domain = 'resume.example.com';
  const env = envFor(dataDir, domain);
  const orderFile = join(dataDir, 'certs', domain, 'order.json');
  await leaveOrderHalfDone(env, orderFile);
  const left = JSON.parse(readFileSync(orderFile, 'utf8')) as { orderUrl: string; key: string };

  const { report, orders } = await takeOver(env);
  assert.equal(orders, 0, `no new order: ${errors(report)}`);
  const r = report.results.find((x) => x.name === domain);
  assert.ok(r?.issued, `issued from the order left behind: ${errors(report)}`);
  const meta = JSON.parse(readFileSync(join(dataDir, 'certs', domain, 'meta.json'), 'utf8')) as { orderUrl: string };
  assert.equal(meta.orderUrl, left.orderUrl, 'the certificate came from the order the first manager made');
  const key = readFileSync(join(dataDir, 'certs', domain, 'privkey.pem'), 'utf8');
  assert.equal(key, left.key, 'with the key kept beside the order');
  assert.ok(keyMatchesCert(key, readFileSync(join(dataDir, 'certs', domain, 'cert.pem'), 'utf8')));
  assert.equal(existsSync(orderFile), false, 'a finished order is forgotten');
});

test('an order the CA no longer knows is forgotten and a new one is made', async () => {
  const dataDir = join(base, 'gone');
  const domain = 'gone.example.com';
  const env = envFor(dataDir, domain);
  const orderFile = join(dataDir, 'certs', domain, 'order.json');
  await leaveOrderHalfDone(env, orderFile);
  const left = JSON.parse(readFileSync(orderFile, 'utf8')) as { orderUrl: string };
  writeFileSync(orderFile, JSON.stringify({ ...left, orderUrl: `${left.orderUrl}-unknown` }), { mode: 0o600 });

  const { report, orders } = await takeOver(env);
  assert.equal(orders, 1, `one new order: ${errors(report)}`);
  assert.ok(report.results.find((x) => x.name === domain)?.issued, errors(report));
  assert.equal(existsSync(orderFile), false);
});
