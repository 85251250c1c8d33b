/**
 * Revocation and decommission against real Pebble (issue 17 item 5): `certwrangler revoke` revokes with the
 * account key and renews in the same run; a certificate no source asks for is served and not renewed
 * (Unwanted), and DECOMMISSION=remove takes it out of CERTS_DIR (kept in the archive) or out of Rancher once
 * no balancer references it, revoking it under REVOKE_ON_REMOVE. Pebble's management API is asked whether
 * a certificate is really revoked.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCert } from '../../src/certs/parse.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { REVOCATION_REASONS, revokeStored } from '../../src/revoke.js';
import { planPass, type PassReport } from '../../src/reconciler.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { assemble } from '../../src/assemble.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, passWithOrders, pebbleEnv, runCli, errors } from '../support/harness.js';
import { pebbleCertStatus } from '../support/revocation.js';
import { simPool, type RancherSim } from '../support/rancher-sim.js';

const base = mkdtempSync(join(tmpdir(), 'cw-revoke-'));
const lab = acmeLab(base);
const sims = simPool();
let pebble: Pebble;

before(async () => {
  pebble = await lab.pebble('pebble');
});
after(async () => {
  await sims.closeAll();
  await lab.stop();
});

function filesEnv(dir: string, extra: Record<string, string>): Record<string, string> {
  return { DATA_DIR: join(base, dir, 'data'), CERTS_DIR: join(base, dir, 'live'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', ...pebbleEnv(pebble, 'production'), ...extra };
}

function rancherEnv(dir: string, s: RancherSim, extra: Record<string, string>): Record<string, string> {
  return { DATA_DIR: join(base, dir, 'data'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', ...s.env, ...pebbleEnv(pebble, 'production'), ...extra };
}

/** What `plan` shows, in-process (a CLI start costs seconds on a busy machine). */
async function plan(env: Record<string, string>, now?: Date): Promise<PassReport> {
  return planPass(await assemble(loadConfig(env), createLogger('silent'), { dryRun: true, ...(now ? { now: () => now } : {}) }));
}

const served = (env: Record<string, string>, name: string) => parseCert(readFileSync(join(env.CERTS_DIR!, name, 'cert.pem'), 'utf8'));

test('certwrangler revoke revokes with the account key, and the same run renews it with a new key', async () => {
  const env = filesEnv('revoke', { DOMAINS: 'shop.example.com,www.shop.example.com' });
  const first = await passWithOrders(env);
  assert.equal(first.report.ok, true, errors(first.report));
  const old = served(env, 'shop.example.com');
  const oldKey = readFileSync(join(env.CERTS_DIR!, 'shop.example.com', 'privkey.pem'), 'utf8');
  assert.equal((await pebbleCertStatus(pebble, old.serialNumber)).Status, 'Valid');

  const run = await runCli(['revoke', 'shop.example.com', '--reason', 'keyCompromise'], env);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /shop\.example\.com: revoked \(serial \d+, reason keyCompromise\)/);
  assert.match(run.stdout, /renewed: a new production certificate/);

  const status = await pebbleCertStatus(pebble, old.serialNumber);
  assert.equal(status.Status, 'Revoked');
  assert.equal(status.Reason, REVOCATION_REASONS.keyCompromise);
  const now = served(env, 'shop.example.com');
  assert.notEqual(now.serialNumber, old.serialNumber, 'CERTS_DIR serves a new certificate');
  assert.deepEqual([...now.names].sort(), ['shop.example.com', 'www.shop.example.com']);
  assert.equal((await pebbleCertStatus(pebble, now.serialNumber)).Status, 'Valid');
  assert.notEqual(readFileSync(join(env.CERTS_DIR!, 'shop.example.com', 'privkey.pem'), 'utf8'), oldKey, 'a compromised key is never reused');

  // Quiet afterwards: the new certificate is not the revoked one.
  const after = await passWithOrders(env);
  assert.equal(after.orders, 0);
  assert.equal(after.report.results[0]!.decision.reason, 'UpToDate');
});

test('revoke --no-renew only marks it: plan says Revoked, and the next pass replaces it', async () => {
  const env = filesEnv('no-renew', { DOMAINS: 'blog.example.com' });
  assert.equal((await passWithOrders(env)).report.ok, true);
  const old = served(env, 'blog.example.com');

  const run = await runCli(['revoke', 'blog.example.com', '--reason', 'superseded', '--no-renew'], env);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /marked for renewal/);
  assert.equal(served(env, 'blog.example.com').serialNumber, old.serialNumber, 'nothing renewed yet');
  const status = await pebbleCertStatus(pebble, old.serialNumber);
  assert.equal(status.Status, 'Revoked');
  assert.equal(status.Reason, REVOCATION_REASONS.superseded);

  const planned = (await plan(env)).results[0]!.decision;
  assert.equal(planned.action, 'issue');
  assert.equal(planned.reason, 'Revoked');
  assert.match(planned.message, /^revoked \(superseded\)/);

  // Revoking it again is not an error and revokes nothing more.
  const m = await assemble(loadConfig(env), createLogger('silent'));
  assert.equal((await revokeStored(m, 'blog.example.com', 'unspecified')).already, true);

  const { report, orders } = await passWithOrders(env);
  assert.equal(orders, 1);
  assert.equal(report.results[0]!.decision.reason, 'Revoked');
  assert.notEqual(served(env, 'blog.example.com').serialNumber, old.serialNumber);
});

test('revoke refuses, naming the input, a name it does not hold, a placeholder, and a reason it does not know', async () => {
  const env = filesEnv('refuse', { DOMAINS: 'never.example.com' });
  const reason = await runCli(['revoke', 'never.example.com', '--reason', 'affiliationChanged'], env);
  assert.equal(reason.code, 2);
  assert.match(reason.stderr, /--reason needs one of keyCompromise, superseded, cessationOfOperation, got "affiliationChanged"/);

  // A placeholder, as the first pass stores it before the order.
  const m = await assemble(loadConfig(env), createLogger('silent'));
  const ph = await createSelfSigned(['never.example.com'], { sharedKey: true });
  await m.store.write({ name: 'never.example.com', names: ['never.example.com'], key: ph.key, cert: ph.cert, chain: '', kind: 'self-signed', directoryUrl: '' });
  await assert.rejects(revokeStored(m, 'nothing.example.com', 'unspecified'), /revoke: no certificate named nothing\.example\.com in .*certs; give a certificate's name/);
  await assert.rejects(revokeStored(m, 'never.example.com', 'unspecified'), /never\.example\.com holds a self-signed placeholder, which no CA issued: there is nothing to revoke/);
});

test('files: a certificate no source asks for is served and not renewed (Unwanted); DECOMMISSION=remove archives it and REVOKE_ON_REMOVE revokes it', async () => {
  const env = filesEnv('files-decommission', { DOMAINS: 'keep.example.com;gone.example.com' });
  assert.equal((await passWithOrders(env)).report.ok, true);
  const gone = served(env, 'gone.example.com');
  // A folder certwrangler did not write, beside them: never touched.
  const foreign = join(env.CERTS_DIR!, 'legacy.example.com');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'fullchain.pem'), 'operator\n');

  // DOMAINS no longer asks for gone.example.com: kept in service, never renewed, even when due.
  const late = new Date(gone.notAfter.getTime() - 86_400_000);
  const keep = await passWithOrders({ ...env, DOMAINS: 'keep.example.com' }, { now: () => late });
  const row = keep.report.results.find((r) => r.name === 'gone.example.com')!;
  assert.equal(row.decision.reason, 'Unwanted');
  assert.equal(row.decision.action, 'none');
  assert.match(row.decision.message, /no source asks for it any more/);
  assert.equal(keep.report.results.find((r) => r.name === 'keep.example.com')!.decision.reason, 'Renew');
  assert.equal(keep.orders, 1, 'only keep.example.com is renewed');
  assert.equal(served(env, 'gone.example.com').serialNumber, gone.serialNumber, 'still served');
  assert.equal(keep.report.ok, true, errors(keep.report));

  const planned = (await plan({ ...env, DOMAINS: 'keep.example.com', DECOMMISSION: 'remove' }, late)).results.find((r) => r.name === 'gone.example.com')!.decision;
  assert.equal(planned.action, 'none');
  assert.match(planned.message, /no source asks for it any more .*; removed after .* \(DECOMMISSION_AFTER\)/);

  const removeEnv = { ...env, DOMAINS: 'keep.example.com', DECOMMISSION: 'remove', DECOMMISSION_AFTER: '0s', REVOKE_ON_REMOVE: 'true' };
  // The clock of the pass that found it unwanted (`late`) goes on.
  const removed = await passWithOrders(removeEnv, { now: () => late });
  assert.equal(removed.report.ok, true, errors(removed.report));
  assert.equal(removed.report.results.find((r) => r.name === 'gone.example.com')!.decision.action, 'remove');
  assert.equal(existsSync(join(env.CERTS_DIR!, 'gone.example.com')), false, 'out of CERTS_DIR');
  const kept = readdirSync(join(env.CERTS_DIR!, '.certwrangler-archive', '.removed'));
  assert.equal(kept.length, 1);
  assert.match(kept[0]!, /^gone\.example\.com-/);
  assert.ok(existsSync(join(env.CERTS_DIR!, '.certwrangler-archive', '.removed', kept[0]!, '1', 'cert.pem')), 'its versions are kept');
  const archived = readdirSync(join(env.DATA_DIR!, 'archive'));
  assert.ok(archived.some((a) => a.startsWith('gone.example.com-') && existsSync(join(env.DATA_DIR!, 'archive', a, 'privkey.pem'))), 'the key is kept in DATA_DIR/archive');
  const status = await pebbleCertStatus(pebble, gone.serialNumber);
  assert.equal(status.Status, 'Revoked');
  assert.equal(status.Reason, REVOCATION_REASONS.cessationOfOperation);
  assert.equal(readFileSync(join(foreign, 'fullchain.pem'), 'utf8'), 'operator\n');
  assert.ok(lstatSync(join(env.CERTS_DIR!, 'keep.example.com')).isSymbolicLink());

  // Nothing left to decide about it.
  const quiet = await passWithOrders(removeEnv, { now: () => late });
  assert.deepEqual(quiet.report.results.map((r) => r.name), ['keep.example.com']);
});

test('Rancher: DECOMMISSION=remove keeps a certificate a balancer still references, and removes and revokes it once none does', async () => {
  const s = await sims.start();
  // Served by SNI only (lbConfig.certificateIds): Cattle would let it be deleted (specs §4.6); we must not.
  const lb = s.addBalancer({ name: 'edge', certificateNames: ['old.example.com'] });
  const env = rancherEnv('rancher-decommission', s, { DOMAINS: 'app.example.com;old.example.com' });
  assert.equal((await passWithOrders(env, { settleTimeoutMs: 5000 })).report.ok, true);
  const oldCert = s.certByName('old.example.com')!;
  assert.deepEqual(lb.lbConfig!.certificateIds, [oldCert.id]);
  const serial = parseCert(oldCert.cert).serialNumber;

  const removeEnv = { ...env, DOMAINS: 'app.example.com', DECOMMISSION: 'remove', DECOMMISSION_AFTER: '0s', REVOKE_ON_REMOVE: 'true' };
  s.clearLog();
  const inUse = await passWithOrders(removeEnv, { settleTimeoutMs: 5000 });
  assert.equal(inUse.report.ok, true, errors(inUse.report));
  const row = inUse.report.results.find((r) => r.name === 'old.example.com')!;
  assert.equal(row.decision.reason, 'Unwanted');
  assert.equal(row.decision.action, 'none');
  assert.match(row.decision.message, new RegExp(`kept while balancers still use it: edge \\(${lb.id}\\)`));
  assert.equal(s.log.filter((r) => r.method === 'DELETE').length, 0, 'no DELETE while a balancer references it');
  assert.equal(s.certByName('old.example.com')?.id, oldCert.id);
  assert.equal((await pebbleCertStatus(pebble, serial)).Status, 'Valid', 'not revoked while in use');

  // The operator points the balancer elsewhere.
  lb.lbConfig!.certificateIds = [];
  const gone = await passWithOrders(removeEnv, { settleTimeoutMs: 5000 });
  assert.equal(gone.report.ok, true, errors(gone.report));
  assert.equal(gone.report.results.find((r) => r.name === 'old.example.com')!.decision.action, 'remove');
  assert.equal(s.certByName('old.example.com'), undefined, 'removed from Rancher');
  assert.equal(s.certificates.get(oldCert.id)!.state, 'removed');
  assert.ok(s.certByName('app.example.com'), 'the wanted one stays');
  const status = await pebbleCertStatus(pebble, serial);
  assert.equal(status.Status, 'Revoked');
  assert.equal(status.Reason, REVOCATION_REASONS.cessationOfOperation);
});
