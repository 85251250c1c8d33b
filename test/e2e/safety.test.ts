/**
 * What protects the operator's account and keys: no reissue loop across passes and CA restarts,
 * ALLOWED_DOMAINS holding against labels, no secret in any output, and the modes of what is written.
 * Real Pebble (one of them requiring external account binding), the Rancher simulator, the real CLI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { parseCert } from '../../src/certs/parse.js';
import { DEFAULT_HOSTS_LABEL } from '../../src/config.js';
import type { LedgerData } from '../../src/limits/ledger.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, filesUnder, passWithOrders, pathsUnder, runCli } from '../support/harness.js';
import { simPool } from '../support/rancher-sim.js';
import { freePort } from '../support/ports.js';

const base = mkdtempSync(join(tmpdir(), 'cw-safety-'));
const lab = acmeLab(base);
const LABEL = DEFAULT_HOSTS_LABEL;
const sims = simPool();
const sim = () => sims.start();

after(async () => {
  await sims.closeAll();
  await lab.stop();
});

/** One ACME_CA_BUNDLE trusting the TLS listeners of several Pebbles. */
function bundleFor(name: string, pebbles: Pebble[]): string {
  const path = join(base, `${name}-ca.pem`);
  writeFileSync(path, pebbles.map((p) => readFileSync(p.caBundlePath, 'utf8')).join('\n'));
  return path;
}

let prod: Pebble;
let staging: Pebble;
before(async () => {
  [prod, staging] = await Promise.all([lab.pebble('prod'), lab.pebble('staging')]);
});

test('never a reissue loop: 10 passes over every kind, the production CA restarted (new names, our account forgotten) before each, cost exactly the orders the decision tree promises', async () => {
  const s = await sim();
  const closed = await freePort();
  const common = {
    DATA_DIR: join(base, 'loop', 'data'),
    WEBROOT_DIR: lab.webroot,
    LOG_LEVEL: 'silent',
    ...s.env,
    ACME_DIRECTORY_URL: prod.directoryUrl,
    ACME_STAGING_DIRECTORY_URL: staging.directoryUrl,
    ACME_CA_BUNDLE: bundleFor('loop', [prod, staging]),
  };
  const pass = (env: Record<string, string>) => passWithOrders({ ...common, ...env }, { settleTimeoutMs: 5000 });
  // The starting point: one certificate of each kind, made the way an operator's history would make it.
  assert.equal((await pass({ DOMAINS: 'stg.example.com', STAGING: 'true' })).report.ok, true);
  assert.equal((await pass({ DOMAINS: 'prod.example.com', STAGING: 'false' })).report.ok, true);
  // The CA unreachable: a self-signed placeholder goes live and the order never starts.
  const placeholder = await pass({ DOMAINS: 'ss.example.com', STAGING: 'false', ACME_DIRECTORY_URL: `https://127.0.0.1:${closed}/dir` });
  assert.equal(placeholder.report.results[0]!.placeholder, true);
  assert.equal(parseCert(s.certByName('ss.example.com')!.cert).selfSigned, true);
  const theirs = await createSelfSigned(['foreign.example.com']);
  s.addCertificate({ name: 'foreign.example.com', cert: theirs.cert, key: theirs.key, description: 'uploaded by the web team' });
  const foreignBefore = JSON.stringify(s.certByName('foreign.example.com'));
  const ids = new Map(['stg.example.com', 'prod.example.com', 'ss.example.com'].map((n) => [n, s.certByName(n)!.id]));

  const env = { DOMAINS: 'prod.example.com;stg.example.com;ss.example.com;foreign.example.com;new.example.com', STAGING: 'false' };
  const orders: number[] = [];
  const issuers = new Set<string>();
  for (let i = 0; i < 10; i++) {
    await prod.kill();
    await prod.start();
    const { report, orders: n } = await pass(env);
    orders.push(n);
    const by = new Map(report.results.map((r) => [r.name, r]));
    for (const r of report.results) if (r.outcome !== 'foreign') assert.equal(r.outcome, 'ok', `pass ${i + 1}, ${r.name}: ${r.error}`);
    assert.equal(by.get('foreign.example.com')!.decision.reason, 'Foreign');
    if (i === 0) {
      assert.deepEqual(
        Object.fromEntries(report.results.map((r) => [r.name, r.decision.reason])),
        { 'prod.example.com': 'UpToDate', 'stg.example.com': 'UpgradeKind', 'ss.example.com': 'ReplacePlaceholder', 'foreign.example.com': 'Foreign', 'new.example.com': 'NoCertificate' },
      );
    } else {
      for (const n of ['prod.example.com', 'stg.example.com', 'ss.example.com', 'new.example.com']) assert.equal(by.get(n)!.decision.reason, 'UpToDate', `pass ${i + 1}, ${n}`);
    }
    for (const n of ['stg.example.com', 'ss.example.com', 'new.example.com']) issuers.add(parseCert(s.certByName(n)!.cert).issuer);
  }
  assert.deepEqual(orders, [3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(JSON.stringify(s.certByName('foreign.example.com')), foreignBefore, 'the foreign certificate is byte for byte as it was');
  for (const [n, id] of ids) assert.equal(s.certByName(n)!.id, id, `${n} was updated in place`);
  assert.equal(parseCert(s.certByName('ss.example.com')!.cert).selfSigned, false);
});

test('ALLOWED_DOMAINS: names outside it, from labels or DOMAINS, are refused with a clear line and never ordered', async () => {
  const s = await sim();
  s.addService({ name: 'shop', labels: { [LABEL]: 'shop.example.com' } });
  s.addService({ name: 'intruder', labels: { [LABEL]: 'evil.attacker.net' } });
  s.addService({ name: 'lookalike', labels: { [LABEL]: 'example.com.attacker.net,shop2.example.com' } });
  const dataDir = join(base, 'allowed', 'data');
  const env = {
    DATA_DIR: dataDir,
    WEBROOT_DIR: lab.webroot,
    LOG_LEVEL: 'info',
    ...s.env,
    ACME_DIRECTORY_URL: prod.directoryUrl,
    ACME_CA_BUNDLE: prod.caBundlePath,
    STAGING: 'false',
    ALLOWED_DOMAINS: 'example.com',
    DOMAINS: 'www.example.com;mail.example.org',
  };
  const run = await runCli(['manager', '--once'], env);
  assert.equal(run.code, 1, 'refused names make the pass need attention');
  const lines = run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; cert?: string; action?: string });
  const refused = lines.filter((l) => l.msg.startsWith('refused ')).map((l) => l.msg);
  assert.equal(refused.length, 3, refused.join('\n'));
  assert.ok(refused.some((m) => /^refused evil\.attacker\.net from label .* on service intruder .*"evil\.attacker\.net" is outside ALLOWED_DOMAINS \(example\.com\)/.test(m)), refused.join('\n'));
  assert.ok(refused.some((m) => /^refused example\.com\.attacker\.net,shop2\.example\.com from label .* on service lookalike/.test(m)), 'a certificate with one bad name is refused whole');
  assert.ok(refused.some((m) => /^refused mail\.example\.org from DOMAINS/.test(m)));
  const ordered = lines.filter((l) => l.action === 'order').map((l) => l.cert).sort();
  assert.deepEqual(ordered, ['shop.example.com', 'www.example.com']);
  const ledgerDir = join(dataDir, 'ledger');
  const ledger = JSON.parse(readFileSync(join(ledgerDir, readdirSync(ledgerDir)[0]!), 'utf8')) as LedgerData;
  assert.deepEqual(ledger.orders.flatMap((o) => o.names).sort(), ['shop.example.com', 'www.example.com'], 'the account spent nothing on refused names');
  assert.deepEqual([...s.certificates.values()].map((c) => c.name).sort(), ['shop.example.com', 'www.example.com']);
});

/** Every directory 0700, every file holding a key 0600, nothing writable by others, all owned by us. */
function assertModes(dataDir: string): void {
  const uid = process.getuid!();
  for (const p of [dataDir, ...pathsUnder(dataDir)]) {
    const st = statSync(p);
    const m = st.mode & 0o777;
    assert.equal(st.uid, uid, `${p} is ours`);
    if (st.isDirectory()) assert.equal(m, 0o700, `${p} is 0700`);
    else {
      assert.equal(m & 0o022, 0, `${p} is writable by nobody else (${m.toString(8)})`);
      if (/privkey\.pem|account\.json|status\.json|ledger|requests\.json|issuers\.json/.test(p)) assert.equal(m, 0o600, `${p} is 0600`);
    }
  }
}

/** Every secret the runs knew, in the forms a leak would take. */
function secretsIn(dataDir: string, extra: string[]): string[] {
  const out = [...extra];
  for (const p of filesUnder(dataDir)) {
    if (basename(p) === 'privkey.pem') out.push(readFileSync(p, 'utf8'));
    else if (basename(p).startsWith('account.json')) out.push((JSON.parse(readFileSync(p, 'utf8')) as { key: string }).key);
  }
  // A PEM leaks as a whole or line by line: look for every base64 line of every key.
  return out.flatMap((s) => (s.includes('-----BEGIN') ? s.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----')) : [s]));
}

test('no private key, account key, CATTLE_SECRET_KEY, EAB or DNS provider secret in any output of runs that hit every error path; files 0600 and folders 0700', async () => {
  const eab = { kid: 'kid-certwrangler', hmacKey: randomBytes(32).toString('base64url') };
  const ca = await lab.pebble('eab', { eab });
  const dns = await fetch(`${ca.dnsManagementUrl}/add-a`, { method: 'POST', body: JSON.stringify({ host: 'broken.example.com.', addresses: ['127.0.0.2'] }) });
  assert.equal(dns.status, 200);
  const s = await sim();
  s.addService({ name: 'web', labels: { [LABEL]: 'web.example.com;broken.example.com' } });
  s.fault({ kind: 503, method: 'GET', url: /\/services/ });
  const dataDir = join(base, 'secrets', 'data');
  const deadPort = await freePort();
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    WEBROOT_DIR: lab.webroot,
    LOG_LEVEL: 'debug',
    ...s.env,
    ACME_DIRECTORY_URL: ca.directoryUrl,
    ACME_CA_BUNDLE: ca.caBundlePath,
    STAGING: 'false',
    DOMAINS: 'api.example.com',
    ACME_EAB_KID: eab.kid,
    ACME_EAB_HMAC_KEY: eab.hmacKey,
    ON_FAILURE_COMMAND: 'echo "failed $CERTWRANGLER_NAME"; exit 3',
    // A careless hook: it prints the key it was pointed at and every secret it can find in its environment.
    ON_CHANGE_COMMAND: 'echo "changed $CERTWRANGLER_NAME"; cat "$CERTWRANGLER_KEY"; env',
  };
  const wrongHmac = randomBytes(32).toString('base64url');
  const wrongSecret = `wrong-${randomBytes(8).toString('hex')}`;
  const tsigSecret = randomBytes(32).toString('base64');
  const cfToken = randomBytes(30).toString('base64url');
  const runs = [
    // Registration refused: no binding, then a binding with the wrong key.
    await runCli(['manager', '--once'], { ...env, ACME_EAB_KID: '', ACME_EAB_HMAC_KEY: '' }),
    await runCli(['manager', '--once'], { ...env, ACME_EAB_HMAC_KEY: wrongHmac }),
    // A binding key that is not base64url: a configuration error that must not echo it.
    await runCli(['manager', '--once'], { ...env, ACME_EAB_HMAC_KEY: `${wrongHmac}!/+` }),
    // Registration, issuance, a validation failure, a 503, a dead webhook, a failing hook.
    // DNS provider secrets in the environment too (every certificate here uses HTTP-01): hooks must not see them.
    await runCli(['manager', '--once'], { ...env, WEBHOOK_URL: `http://127.0.0.1:${deadPort}/hooks/T000/B000/XXXXsecretpath`, WEBHOOK_TIMEOUT: '1s', DNS_PROVIDER: 'rfc2136', RFC2136_NAMESERVER: `127.0.0.1:${deadPort}`, RFC2136_TSIG_KEY: 'k', RFC2136_TSIG_SECRET: tsigSecret, CLOUDFLARE_DNS_API_TOKEN: cfToken }),
    // The orchestrator refuses the key.
    await runCli(['manager', '--once'], { ...env, CATTLE_SECRET_KEY: wrongSecret }),
    await runCli(['plan', '--json'], env),
  ];
  const [noEab, badEab, badConfig, real, unauthorized] = runs;
  assert.equal(noEab!.code, 1);
  assert.match(noEab!.stdout, /account registration at \S+ refused: .*externalAccountBinding.*set ACME_EAB_KID and ACME_EAB_HMAC_KEY/);
  assert.equal(badEab!.code, 1);
  assert.match(badEab!.stdout, /account registration at \S+ refused: .*check ACME_EAB_KID and ACME_EAB_HMAC_KEY/);
  assert.equal(badConfig!.code, 2);
  assert.match(badConfig!.stderr, /ACME_EAB_HMAC_KEY=\(hidden\) is not valid; accepted: a base64url string/);
  assert.equal(real!.code, 1);
  assert.match(real!.stdout, /api\.example\.com: production certificate issued/);
  assert.match(real!.stdout, /broken\.example\.com: (placeholder|issue) failed/);
  assert.match(real!.stdout, /webhook/);
  assert.equal(unauthorized!.code, 1);
  assert.match(unauthorized!.stdout, /401 Unauthorized/);

  const output = runs.map((r) => r!.stdout + r!.stderr).join('\n');
  assert.doesNotMatch(output, /PRIVATE KEY/);
  const secrets = secretsIn(dataDir, [s.secretKey, wrongSecret, eab.hmacKey, wrongHmac, 'XXXXsecretpath', tsigSecret, cfToken]);
  assert.ok(secrets.length > 50, `${secrets.length} secret fragments to look for`);
  const leaked = secrets.filter((x) => output.includes(x));
  assert.deepEqual(leaked.map((x) => `${x.slice(0, 6)}…`), [], 'no secret in the output');
  assertModes(dataDir);
  const challengeDir = join(lab.webroot, '.well-known', 'acme-challenge');
  assert.equal(statSync(challengeDir).mode & 0o777, 0o755, 'the webroot process needs to read the challenge folder, nothing more');
});
