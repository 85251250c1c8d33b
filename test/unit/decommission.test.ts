/**
 * Which stored certificates are unwanted, which key an order uses, and what the files target removes
 * (issue 17 items 4 and 5). The end-to-end runs against Pebble are in e2e/revoke and e2e/keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStore, type CertBundle } from '../../src/certs/store.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { generatePrivateKey } from '../../src/certs/keys.js';
import { loadConfig } from '../../src/config.js';
import { findUnwanted } from '../../src/decommission.js';
import { chooseKey } from '../../src/key-choice.js';
import { FilesOrchestrator } from '../../src/orchestrators/files/files.js';
import { createOutputs } from '../../src/outputs/config.js';
import { rmSync } from 'node:fs';
import { runPass, type PassDeps } from '../../src/reconciler.js';
import { assemble } from '../../src/assemble.js';
import { StatusBook } from '../../src/status/book.js';
import { createLogger } from '../../src/log.js';
import type { Decided } from '../../src/observe.js';
import type { WantedCert } from '../../src/domains.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const NOW = new Date('2027-01-01T00:00:00Z');

async function storeWith(names: string[], extra: Record<string, string> = {}): Promise<PassDeps> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cw-unwanted-'));
  const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...extra });
  const store = new LocalStore(new FilesStore(dataDir));
  await store.init();
  for (const name of names) {
    const ss = await createSelfSigned([name], { sharedKey: true });
    await store.write({ name, names: [name], key: ss.key, cert: ss.cert, chain: '', kind: 'self-signed', directoryUrl: '' });
  }
  return { config, store } as unknown as PassDeps;
}

const wanted = (name: string): WantedCert => ({ name, names: [name], sources: ['DOMAINS'], origin: 'DOMAINS' });

test('unwanted: a stored certificate no source asks for, and when it was first found so, kept across passes', async () => {
  const deps = await storeWith(['a.example.com', 'b.example.com'], { DECOMMISSION: 'remove', DECOMMISSION_AFTER: '1h' });
  const first = await findUnwanted(deps, [wanted('a.example.com')], [], [], NOW, true);
  assert.deepEqual(first.certs.map((c) => c.name), ['b.example.com']);
  assert.deepEqual(first.unwanted.get('b.example.com'), { since: NOW, removeAt: new Date(NOW.getTime() + 3_600_000), usedBy: [] });
  const later = new Date(NOW.getTime() + 7_200_000);
  assert.deepEqual((await findUnwanted(deps, [wanted('a.example.com')], [], [], later, true)).unwanted.get('b.example.com')?.since, NOW, 'a restart does not start the wait again');
  // Asked for again: forgotten, so going unwanted later waits DECOMMISSION_AFTER again.
  await findUnwanted(deps, [wanted('a.example.com'), wanted('b.example.com')], [], [], later, true);
  assert.deepEqual(JSON.parse(readFileSync(join(deps.config.dataDir, 'unwanted.json'), 'utf8')).since, {});
});

test('unwanted: nothing is judged unwanted while a source could not be read, nor a certificate a refused request still names', async () => {
  const deps = await storeWith(['a.example.com', 'b.example.com']);
  assert.deepEqual((await findUnwanted(deps, [], [], ['cannot read labels from rancher: 503'], NOW, true)).certs, []);
  const refused = [{ spec: 'b.example.com,www.b.example.com', source: 'label x on service web (1s3)', error: 'over LABEL_MAX_NAMES' }];
  assert.deepEqual((await findUnwanted(deps, [], refused, [], NOW, true)).certs.map((c) => c.name), ['a.example.com']);
});

test('unwanted: plan reads when it went unwanted and writes nothing; a folder without a certificate is not one', async () => {
  const deps = await storeWith(['a.example.com']);
  mkdirSync(join(deps.config.dataDir, 'certs', 'failed.example.com'));
  writeFileSync(join(deps.config.dataDir, 'certs', 'failed.example.com', 'status.json'), '{"failures":1}');
  const planned = await findUnwanted(deps, [], [], [], NOW, false);
  assert.deepEqual(planned.certs.map((c) => c.name), ['a.example.com']);
  assert.equal(planned.unwanted.get('a.example.com')?.removeAt, undefined, 'DECOMMISSION=keep by default');
  assert.equal(existsSync(join(deps.config.dataDir, 'unwanted.json')), false);
});

test('keys: fresh by default; REUSE_KEY keeps a matching key of the type asked for, never a placeholder\'s or a compromised one', async () => {
  const key = await generatePrivateKey('ecdsa-p256');
  // Only the key is looked at: whether it matches its certificate is `keyMatches`, read by the store.
  const bundle: CertBundle = { name: 'k.example.com', names: ['k.example.com'], key, cert: '', chain: '', kind: 'production', directoryUrl: 'https://ca/dir' };
  // An issued copy: the kind is the CA's, whatever the test certificate's issuer.
  const info = { selfSigned: false } as never;
  const o = (kind: 'production' | 'self-signed', extra: Partial<Decided['input']> = {}, w: Partial<WantedCert> = {}) =>
    ({
      wanted: { ...wanted('k.example.com'), ...w },
      local: { state: 'present', info, meta: {}, bundle, keyMatches: true },
      localCopy: { state: 'present', info, kind, keyMatches: true, owned: true },
      input: { ...extra },
    }) as unknown as Decided;
  const config = { keyType: 'ecdsa-p256' as const, reuseKey: true };
  assert.deepEqual(chooseKey(o('production'), { ...config, reuseKey: false }), { keyType: 'ecdsa-p256' });
  assert.equal(chooseKey(o('production'), config).reuse, key);
  assert.equal(chooseKey(o('production', {}, { reuseKey: false }), config).reuse, undefined, 'a label saying false wins over REUSE_KEY');
  assert.equal(chooseKey(o('production'), { keyType: 'ecdsa-p256', reuseKey: false }).reuse, undefined);
  assert.equal(chooseKey(o('production', {}, { reuseKey: true }), { keyType: 'ecdsa-p256', reuseKey: false }).reuse, key, 'a label saying true');
  assert.equal(chooseKey(o('self-signed'), config).reuse, undefined, "a placeholder's shared key is never kept");
  assert.match(chooseKey(o('production', { revoked: { reason: 'keyCompromise', at: NOW } }), config).fresh!, /keyCompromise/);
  assert.equal(chooseKey(o('production', { revoked: { reason: 'superseded', at: NOW } }), config).reuse, key);
  assert.match(chooseKey(o('production', {}, { keyType: 'rsa-2048' }), config).fresh!, /the stored key is ecdsa-p256, and rsa-2048 is asked for/);
});

test('files: remove never touches a folder certwrangler did not write, nor a file in its place', async () => {
  const certsDir = mkdtempSync(join(tmpdir(), 'cw-files-remove-'));
  const files = new FilesOrchestrator({ certsDir });
  mkdirSync(join(certsDir, 'certbot.example.com'));
  writeFileSync(join(certsDir, 'certbot.example.com', 'fullchain.pem'), 'theirs\n');
  writeFileSync(join(certsDir, 'file.example.com'), 'a file\n');
  assert.deepEqual(await files.remove('certbot.example.com'), { removed: false, why: `${join(certsDir, 'certbot.example.com')} was not written by certwrangler (no .certwrangler marker): never removed` });
  assert.equal((await files.remove('file.example.com')).removed, false);
  assert.equal(readFileSync(join(certsDir, 'certbot.example.com', 'fullchain.pem'), 'utf8'), 'theirs\n');
  assert.equal(readFileSync(join(certsDir, 'file.example.com'), 'utf8'), 'a file\n');
  assert.deepEqual(await files.remove('never.example.com'), { removed: true, target: `${join(certsDir, 'never.example.com')}: not there any more` });
});

test('files: an nginx include that names the certificate holds its removal until the operator deletes it (nginx -t would fail)', async () => {
  const certsDir = mkdtempSync(join(tmpdir(), 'cw-files-pinned-'));
  const includes = join(certsDir, 'nginx');
  const files = new FilesOrchestrator({ certsDir, outputs: createOutputs({ balancerCertsDir: certsDir, nginx: { dir: includes } }, createLogger('silent')) });
  const ss = await createSelfSigned(['pinned.example.com']);
  await files.push({ name: 'pinned.example.com', names: ['pinned.example.com'], key: ss.key, cert: ss.cert, chain: '', kind: 'production', directoryUrl: 'https://ca.test/dir' }, { adopt: false });
  const include = join(includes, 'pinned.example.com.conf');
  assert.ok(existsSync(include), 'the push wrote the include');
  const held = await files.remove('pinned.example.com');
  assert.equal(held.removed, false);
  assert.match((held as { why: string }).why, /pinned\.example\.com\.conf may still be included by nginx/);
  assert.ok(existsSync(join(certsDir, 'pinned.example.com', 'fullchain.pem')), 'still served where the include points');
  rmSync(include);
  assert.equal((await files.remove('pinned.example.com')).removed, true);
  assert.equal(existsSync(join(certsDir, 'pinned.example.com')), false);
});

test('REVOKE_ON_REMOVE with the CA unreachable: removed from CERTS_DIR, the stored copy stays, and every pass tries the revocation again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-revoke-down-'));
  const ca = 'https://127.0.0.1:1/dir';
  const env = { DATA_DIR: join(dir, 'data'), CERTS_DIR: join(dir, 'live'), LOG_LEVEL: 'silent', ACME_DIRECTORY_URL: ca, STAGING: 'false', ACME_TIMEOUT: '1s', DECOMMISSION: 'remove', DECOMMISSION_AFTER: '0s', REVOKE_ON_REMOVE: 'true' };
  const m = await assemble(loadConfig(env), createLogger('silent'), { retryBaseMs: 10 });
  // An issued certificate of that CA, in the store and in CERTS_DIR, that no source asks for.
  const ss = await createSelfSigned(['old.example.com']);
  const bundle: CertBundle = { name: 'old.example.com', names: ['old.example.com'], key: ss.key, cert: ss.cert, chain: '', kind: 'production', directoryUrl: ca };
  await m.store.write(bundle);
  await m.orchestrator.push(bundle, { adopt: false });
  for (let pass = 1; pass <= 2; pass++) {
    const report = await runPass(m);
    const r = report.results.find((x) => x.name === 'old.example.com')!;
    assert.equal(r.decision.action, 'remove');
    assert.equal(r.outcome, 'failed', `pass ${pass}`);
    assert.match(r.error!, /ECONNREFUSED|connect/);
    assert.equal(report.ok, false, 'the operator is told');
    assert.equal(existsSync(join(env.CERTS_DIR, 'old.example.com')), false, 'out of service');
    assert.equal(readFileSync(join(env.DATA_DIR, 'certs', 'old.example.com', 'privkey.pem'), 'utf8'), ss.key, 'the stored copy stays until it is revoked');
  }
});

test('status page: an unwanted certificate near its end raises no alert (it is not renewed on purpose); an expired one still does', () => {
  const book = new StatusBook('test');
  const row = (name: string, reason: 'Unwanted' | 'UpToDate', ageDays: number) => ({
    name,
    names: [name],
    sources: reason === 'Unwanted' ? [] : ['DOMAINS'],
    decision: { action: 'none' as const, reason, message: reason },
    outcome: 'ok' as const,
    orders: 0,
    pushed: false,
    placeholder: false,
    kind: 'production' as const,
    notBefore: new Date(NOW.getTime() - ageDays * 86_400_000).toISOString(),
    notAfter: new Date(NOW.getTime() + (90 - ageDays) * 86_400_000).toISOString(),
  });
  book.record({ startedAt: NOW.toISOString(), finishedAt: NOW.toISOString(), refused: [], errors: [], ok: true, results: [row('gone.example.com', 'Unwanted', 85), row('old.example.com', 'Unwanted', 95), row('kept.example.com', 'UpToDate', 85)] });
  const snap = book.snapshot(NOW);
  const health = Object.fromEntries(snap.certificates.map((c) => [c.name, c.health]));
  assert.deepEqual(health, { 'gone.example.com': 'ok', 'old.example.com': 'expired', 'kept.example.com': 'expiring' });
  assert.equal(snap.alerts.some((a) => a.startsWith('gone.example.com')), false);
  assert.deepEqual(snap.certificates.find((c) => c.name === 'gone.example.com')!.decision, { action: 'none', reason: 'Unwanted', message: 'Unwanted' });
});
