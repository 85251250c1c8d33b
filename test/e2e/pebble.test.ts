/**
 * End to end against real Pebble: the webroot answers Pebble's HTTP-01 validations, the manager orders
 * and stores certificates and writes them to CERTS_DIR. Each test asserts what an operator sees.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { assemble } from '../../src/assemble.js';
import { planPass, type PassReport } from '../../src/reconciler.js';
import { keyMatchesCert, parseCert } from '../../src/certs/parse.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { renewalTime } from '../../src/policy.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, assertChainVerifies, assertNoncesReused, filesUnder, passWithOrders, pebbleEnv, runCli } from '../support/harness.js';
import { freePort } from '../support/ports.js';

const base = mkdtempSync(join(tmpdir(), 'cw-e2e-'));
const lab = acmeLab(base);
const WEBROOT = lab.webroot;
const DOMAINS = 'one.example.com;multi.example.com,www.multi.example.com,api.multi.example.com;three.example.com';
const pebbleWithWebroot = (name: string, nonceReject = 0) => lab.pebble(name, { nonceReject });

let main: Pebble;
before(async () => {
  main = await lab.pebble('pebble-main');
});
after(() => lab.stop());

function envFor(dir: string, extra: Record<string, string>): Record<string, string> {
  return { DATA_DIR: join(base, dir, 'data'), CERTS_DIR: join(base, dir, 'live'), WEBROOT_DIR: WEBROOT, LOG_LEVEL: 'silent', ...extra };
}

const pass = (env: Record<string, string>, now?: Date) => passWithOrders(env, now ? { now: () => now } : {});

/** Identity of every file: a file rewritten, even with the same bytes, shows as changed. */
function snapshot(dir: string): Map<string, string> {
  return new Map(
    filesUnder(dir).map((p) => {
      const s = statSync(p);
      return [p, `${s.ino}:${s.mtimeMs}:${s.size}`];
    }),
  );
}

test('a fresh start issues every certificate in DOMAINS, SANs included, into CERTS_DIR', async () => {
  const env = envFor('fresh', { DOMAINS, ...pebbleEnv(main, 'production') });
  const { report, orders, requests } = await pass(env);
  assert.equal(report.ok, true, JSON.stringify(report.results.map((r) => r.error)));
  assert.equal(orders, 3);
  assertNoncesReused(requests);
  const root = await main.root();
  for (const [name, names] of [
    ['one.example.com', ['one.example.com']],
    ['multi.example.com', ['multi.example.com', 'www.multi.example.com', 'api.multi.example.com']],
    ['three.example.com', ['three.example.com']],
  ] as const) {
    const dir = join(env.CERTS_DIR!, name);
    for (const f of ['cert.pem', 'chain.pem', 'fullchain.pem', 'privkey.pem', 'bundle.pem']) assert.ok(existsSync(join(dir, f)), `${name}/${f}`);
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const info = parseCert(cert);
    assert.equal(info.commonName, name);
    assert.deepEqual([...info.names].sort(), [...names].sort());
    assert.equal(info.selfSigned, false);
    assert.ok(!readFileSync(join(dir, 'chain.pem'), 'utf8').includes(cert.trim()), 'chain.pem holds intermediates only');
    assertChainVerifies(readFileSync(join(dir, 'fullchain.pem'), 'utf8'), root);
    assert.ok(keyMatchesCert(readFileSync(join(dir, 'privkey.pem'), 'utf8'), cert));
    assert.equal(statSync(join(dir, 'privkey.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'bundle.pem')).mode & 0o777, 0o600);
    const storeDir = join(env.DATA_DIR!, 'certs', name);
    assert.equal(statSync(join(storeDir, 'privkey.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(storeDir).mode & 0o777, 0o700);
    assert.equal(JSON.parse(readFileSync(join(storeDir, 'meta.json'), 'utf8')).kind, 'production');
  }
  // No challenge file is left in the webroot.
  assert.deepEqual(readdirSync(join(WEBROOT, '.well-known', 'acme-challenge')), []);
});

test('a second pass makes no order and rewrites no file', async () => {
  const env = envFor('fresh', { DOMAINS, ...pebbleEnv(main, 'production') });
  const before = new Map([...snapshot(env.DATA_DIR!), ...snapshot(env.CERTS_DIR!)]);
  const { report, orders } = await pass(env);
  assert.equal(orders, 0);
  assert.equal(report.ok, true);
  assert.deepEqual(report.results.map((r) => r.decision.reason), ['UpToDate', 'UpToDate', 'UpToDate']);
  assert.deepEqual(new Map([...snapshot(env.DATA_DIR!), ...snapshot(env.CERTS_DIR!)]), before);
  // One account for the directory, registered on the first pass and reused by this one.
  assert.equal(readdirSync(join(env.DATA_DIR!, 'accounts')).length, 1);
  const account = join(env.DATA_DIR!, 'accounts', readdirSync(join(env.DATA_DIR!, 'accounts'))[0]!, 'account.json');
  assert.equal(statSync(account).mode & 0o777, 0o600);
});

test('flipping STAGING to false upgrades every certificate once, then stays put', async () => {
  const staging = await pebbleWithWebroot('pebble-staging');
  const production = await pebbleWithWebroot('pebble-production');
  const both = { ACME_STAGING_DIRECTORY_URL: staging.directoryUrl, ACME_DIRECTORY_URL: production.directoryUrl };
  writeFileSync(join(base, 'both-ca.pem'), readFileSync(staging.caBundlePath, 'utf8') + readFileSync(production.caBundlePath, 'utf8'));
  const env = (flag: string) => envFor('flip', { DOMAINS, ...both, STAGING: flag, ACME_CA_BUNDLE: join(base, 'both-ca.pem') });

  const first = await pass(env('true'));
  assert.equal(first.orders, 3);
  assert.deepEqual(first.report.results.map((r) => r.kind), ['staging', 'staging', 'staging']);
  const stagingIssuer = parseCert(readFileSync(join(base, 'flip', 'live', 'one.example.com', 'cert.pem'), 'utf8')).issuer;

  const plan = await planPass(await assemble(loadConfig(env('false')), createLogger('silent')));
  assert.deepEqual(plan.results.map((r) => r.decision.message), Array(3).fill('upgrade staging → production'));

  const flipped = await pass(env('false'));
  assert.equal(flipped.report.ok, true, JSON.stringify(flipped.report.results.map((r) => r.error)));
  assert.equal(flipped.orders, 3, 'exactly one new order per certificate');
  assert.equal(flipped.report.ok, true);
  assert.deepEqual(flipped.report.results.map((r) => r.kind), ['production', 'production', 'production']);
  const live = parseCert(readFileSync(join(base, 'flip', 'live', 'one.example.com', 'cert.pem'), 'utf8'));
  assert.notEqual(live.issuer, stagingIssuer, 'the live certificate now comes from the production CA');
  assertChainVerifies(readFileSync(join(base, 'flip', 'live', 'one.example.com', 'fullchain.pem'), 'utf8'), await production.root());

  assert.equal((await pass(env('false'))).orders, 0);
  assert.equal((await pass(env('true'))).orders, 0, 'production is never downgraded to staging');
});

const cli = runCli;

test('manager --once: with the CA unreachable a placeholder goes live and the exit code is 1; once the CA is back the placeholder is replaced', async () => {
  const closed = await freePort();
  const down = envFor('placeholder', { DOMAINS: 'ph.example.com,www.ph.example.com', ACME_DIRECTORY_URL: `https://127.0.0.1:${closed}/dir`, STAGING: 'false', ACME_CA_BUNDLE: main.caBundlePath, LOG_LEVEL: 'info' });
  const r1 = await cli(['manager', '--once'], down);
  assert.equal(r1.code, 1, r1.stderr);
  const live = join(down.CERTS_DIR!, 'ph.example.com');
  const placeholder = parseCert(readFileSync(join(live, 'cert.pem'), 'utf8'));
  assert.equal(placeholder.selfSigned, true);
  assert.deepEqual(placeholder.names, ['ph.example.com', 'www.ph.example.com']);
  assert.ok(keyMatchesCert(readFileSync(join(live, 'privkey.pem'), 'utf8'), readFileSync(join(live, 'cert.pem'), 'utf8')));
  const lines = r1.stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: string });
  assert.ok(lines.some((l) => /placeholder first/.test(l.msg)), 'the log says why a placeholder was made');
  assert.ok(lines.some((l) => l.level === 'error' && /ph.example.com: placeholder failed: .*ECONNREFUSED/.test(l.msg)), 'the log names the certificate and the error');
  assert.ok(!/PRIVATE KEY/.test(r1.stdout + r1.stderr), 'no key in the output');

  const up = { ...down, ACME_DIRECTORY_URL: main.directoryUrl };
  const plan = await cli(['plan', '--json'], up);
  assert.equal(plan.code, 0, plan.stderr);
  assert.equal((JSON.parse(plan.stdout) as PassReport).results[0]!.decision.reason, 'ReplacePlaceholder');
  const r2 = await cli(['manager', '--once'], up);
  assert.equal(r2.code, 0, r2.stdout + r2.stderr);
  assert.ok(!/PRIVATE KEY/.test(r2.stdout + r2.stderr + plan.stdout), 'no key in the output');
  const real = parseCert(readFileSync(join(live, 'cert.pem'), 'utf8'));
  assert.equal(real.selfSigned, false);
  assert.notEqual(real.fingerprint, placeholder.fingerprint);
});

test('expiry: past the renewal point the next pass renews; an expired orchestrator copy with a fresh local one is pushed without an order', async () => {
  const hookLog = join(base, 'expiry-hook.log');
  const env = envFor('expiry', {
    DOMAINS: 'exp.example.com',
    ...pebbleEnv(main, 'production'),
    ON_CHANGE_COMMAND: `echo "$CERTWRANGLER_NAME $CERTWRANGLER_KIND $CERTWRANGLER_FULLCHAIN" >> ${hookLog}`,
  });
  assert.equal((await pass(env)).orders, 1);
  const liveCert = join(env.CERTS_DIR!, 'exp.example.com', 'cert.pem');
  const first = parseCert(readFileSync(liveCert, 'utf8'));

  const beforeRenewal = new Date(renewalTime(first, undefined).getTime() - 86_400_000);
  const quiet = await pass(env, beforeRenewal);
  assert.equal(quiet.orders, 0);

  const pastRenewal = new Date(renewalTime(first, undefined).getTime() + 86_400_000);
  const renewed = await pass(env, pastRenewal);
  assert.equal(renewed.orders, 1);
  assert.equal(renewed.report.results[0]!.decision.reason, 'Renew');
  const second = parseCert(readFileSync(liveCert, 'utf8'));
  assert.notEqual(second.fingerprint, first.fingerprint);

  // Someone (a restore, an old deploy) put an expired certificate where the balancer reads it.
  const stale = await createSelfSigned(['exp.example.com'], { now: new Date(Date.now() - 100 * 86_400_000), days: 30 });
  writeFileSync(liveCert, stale.cert);
  const pushed = await pass(env);
  assert.equal(pushed.orders, 0);
  assert.equal(pushed.report.results[0]!.decision.reason, 'RemoteExpired');
  assert.equal(parseCert(readFileSync(liveCert, 'utf8')).fingerprint, second.fingerprint);
  // ON_CHANGE_COMMAND ran once per change (placeholder, issue, renewal, push), never on a quiet pass.
  const fullchain = join(env.CERTS_DIR!, 'exp.example.com', 'fullchain.pem');
  assert.deepEqual(readFileSync(hookLog, 'utf8').trim().split('\n'), [
    `exp.example.com self-signed ${fullchain}`,
    `exp.example.com production ${fullchain}`,
    `exp.example.com production ${fullchain}`,
    `exp.example.com production ${fullchain}`,
  ]);
});

test('with Pebble refusing half of all nonces (PEBBLE_WFE_NONCEREJECT=50) every issuance still succeeds', async () => {
  const flaky = await pebbleWithWebroot('pebble-nonce', 50);
  const env = envFor('nonce', { DOMAINS, ...pebbleEnv(flaky, 'production'), ACME_CONCURRENCY: '3' });
  const { report, orders, requests } = await pass(env);
  assert.equal(report.ok, true, JSON.stringify(report.results.map((r) => r.error)));
  assert.equal(orders, 3);
  assertNoncesReused(requests);
});
