/**
 * The switch from rancher-lets-encrypt (issue 18): the seed's state is made as the seed made it, with the real
 * certbot (`certbot certonly --webroot -d <name>`, one certificate per name) against Pebble, and its certificates
 * put into the Rancher simulator as the seed pushed them (named after the domain, no description, trailing
 * newlines stripped). Then only the image changes: the same variables (CERTBOT_EMAIL, DOMAINS, the hosts label,
 * LETSENCRYPT_ROOTDIR) drive certwrangler, which must order nothing, make no account, and keep every certificate
 * served, then renew them in place when they are due. One of the seed's renewals never reached Rancher (the seed
 * ignored its pushes' answers), as happens: Rancher holds that name's older certificate.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCert } from '../../src/certs/parse.js';
import { renewalTime } from '../../src/policy.js';
import { DEFAULT_HOSTS_LABEL, loadConfig, type Config } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/log.js';
import { importAtStart } from '../../src/import/at-start.js';
import { describeImport, importCertbot } from '../../src/import/certbot.js';
import { LocalStore } from '../../src/certs/store.js';
import { assemble } from '../../src/assemble.js';
import { planPass } from '../../src/reconciler.js';
import { Writable } from 'node:stream';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, filesUnder, passWithOrders, pebbleEnv, runCli } from '../support/harness.js';
import { simPool, type RancherSim, type RequestRecord } from '../support/rancher-sim.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

/** The import at start into the files store of the configuration (what the manager opens for STORE=files). */
const importAtStartFiles = (c: Config, log: Logger) => importAtStart(c, log, new FilesStore(c.dataDir));

const run = promisify(execFile);
const base = mkdtempSync(join(tmpdir(), 'cw-seed-'));
const lab = acmeLab(base);
const sims = simPool();
const LABEL = DEFAULT_HOSTS_LABEL;
const SEED_DOMAINS = ['a.example.com', 'b.example.com'];
const LABELLED = 'c.example.com';
const ALL = [...SEED_DOMAINS, LABELLED];
const RENEWED = 'a.example.com';
/** The seed's certbot store (its letsencrypt-certs volume), made once; each test copies it. */
const seedStore = join(base, 'letsencrypt');
let pebble: Pebble;

/** What the seed ran for each name (tozny rancher.py `create_cert`), with the store kept in the test's folder. */
async function certbot(name: string): Promise<void> {
  await run(
    'certbot',
    ['certonly', '--non-interactive', '--server', pebble.directoryUrl, '--webroot', '-w', lab.webroot, '--text', '-d', name, '-m', 'ops@example.com', '--agree-tos', '--no-eff-email', '--renew-by-default', '--config-dir', seedStore, '--work-dir', join(base, 'certbot-work'), '--logs-dir', join(base, 'certbot-logs')],
    { env: { ...process.env, REQUESTS_CA_BUNDLE: pebble.caBundlePath }, timeout: 60_000 },
  );
}

before(async () => {
  pebble = await lab.pebble('pebble');
  mkdirSync(lab.webroot, { recursive: true });
  // certbot takes a lock on its config dir: one name at a time, as the seed's loop did. The seed renewed
  // a.example.com once more, and that push failed (it never checked): Rancher holds a's first certificate.
  for (const name of [...ALL, RENEWED]) await certbot(name);
});
after(async () => {
  await sims.closeAll();
  await lab.stop();
});

const live = (store: string, name: string, file: string) => readFileSync(join(store, 'live', name, file), 'utf8');
const fingerprint = (pem: string) => parseCert(pem).fingerprint;
const writes = (log: RequestRecord[]) => log.filter((r) => r.method !== 'GET');

/** Rancher as the seed left it: one certificate per name, and a traffic manager serving them by name. */
async function seedRancher(store: string): Promise<RancherSim> {
  const s = await sims.start();
  s.addService({ name: 'web', labels: { [LABEL]: LABELLED } });
  for (const name of ALL) {
    // tozny's post_cert: cert.pem, chain.pem and privkey.pem with trailing newlines stripped, no description.
    const [cert, chain, key] = ['cert', 'chain', 'privkey'].map((f) => (name === RENEWED ? readFileSync(join(store, 'archive', name, `${f}1.pem`), 'utf8') : live(store, name, `${f}.pem`)).trim());
    s.addCertificate({ name, cert: cert!, certChain: chain!, key: key!, description: null });
  }
  s.addBalancer({ name: 'traffic-manager-ssl', defaultCertificateName: 'a.example.com', certificateNames: ['b.example.com', LABELLED] });
  return s;
}

/** The seed's variables, as its stack set them, with Pebble in place of Let's Encrypt. */
function seedEnv(dir: string, s: RancherSim, store: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...s.env,
    CERTBOT_EMAIL: 'ops@example.com',
    DOMAINS: SEED_DOMAINS.join(','),
    CERTBOT_WEBROOT: lab.webroot,
    LETSENCRYPT_ROOTDIR: store,
    LOOP_TIME: '300',
    DATA_DIR: join(base, dir, 'data'),
    LOG_LEVEL: 'info',
    STATUS_ADDR: 'off',
    ...pebbleEnv(pebble, 'production'),
    ...extra,
  };
}

function copyStore(dir: string): string {
  const to = join(base, dir, 'letsencrypt');
  cpSync(seedStore, to, { recursive: true, verbatimSymlinks: true });
  return to;
}

test('the seed swapped for certwrangler: first and second pass order nothing and make no account, every certificate stays served, and each is renewed in place when due', async () => {
  const store = copyStore('switch');
  const s = await seedRancher(store);
  const ids = new Map(ALL.map((n) => [n, s.certByName(n)!.id]));
  const seedFingerprints = new Map(ALL.map((n) => [n, fingerprint(live(store, n, 'cert.pem'))]));
  const regr = JSON.parse(readFileSync(filesUnder(join(store, 'accounts')).find((f) => f.endsWith('regr.json'))!, 'utf8')) as { uri: string };
  const env = seedEnv('switch', s, store);

  // First start, as the image runs it: the log says seed-compatible mode first, then imports, then one pass.
  const first = await runCli(['manager', '--once'], env);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  const lines = first.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { msg: string });
  assert.match(lines[0]!.msg, /^seed-compatible mode: CERTBOT_EMAIL is set and EMAIL is not/);
  assert.match(lines[0]!.msg, new RegExp(`every name in DOMAINS and in the ${LABEL.replace(/\./g, '\\.')} label is its own certificate`));
  assert.match(lines[1]!.msg, /^to leave seed-compatible mode: set EMAIL \(in place of CERTBOT_EMAIL\)/);
  for (const n of ALL) assert.ok(lines.some((l) => l.msg.startsWith(`certificate ${n} from ${join(store, 'live', n)}: imported (production`)), `${n} imported: ${first.stdout}`);
  assert.ok(lines.some((l) => l.msg.startsWith(`account for ${pebble.directoryUrl} from `) && l.msg.includes(': imported')));
  assert.ok(!first.stdout.includes('PRIVATE KEY') && !first.stderr.includes('PRIVATE KEY'), 'no key in the log');
  // The first pass orders nothing; its one write puts a's live certificate where the seed's failed push left the
  // older one (a version from certbot's archive/, so the seed's: certwrangler's to replace, in place).
  const decided = lines.filter((l) => 'action' in l && 'names' in l) as unknown as Array<{ cert: string; action: string }>;
  assert.deepEqual(decided.map((d) => [d.cert, d.action]).sort(), ALL.map((n) => [n, n === RENEWED ? 'push' : 'none']), 'no order');
  const lb = [...s.services.values()].find((v) => v.name === 'traffic-manager-ssl')!;
  assert.deepEqual(writes(s.log).map((r) => `${r.method} ${r.path}`), [`PUT /v2-beta/projects/${s.projectId}/certificates/${ids.get(RENEWED)}`, `POST /v2-beta/projects/${s.projectId}/loadbalancerservices/${lb.id}/`], "a's certificate replaced in place, and the traffic manager's update action");
  assert.equal(fingerprint(s.certByName(RENEWED)!.cert), seedFingerprints.get(RENEWED));
  assert.equal(fingerprint(lb.served.get(ids.get(RENEWED)!)!), seedFingerprints.get(RENEWED), 'the traffic manager serves the live certificate');

  // What was imported: the seed's own certificates and keys (0600), and its account, URL and all.
  const data = env.DATA_DIR!;
  const local = new LocalStore(new FilesStore(data));
  for (const n of ALL) {
    const copy = await local.read(n, { recover: false });
    assert.equal(copy.state, 'present');
    if (copy.state !== 'present') continue;
    assert.equal(copy.info.fingerprint, seedFingerprints.get(n));
    assert.deepEqual(copy.bundle.names, [n], 'one certificate per name, as the seed made them');
    assert.equal(copy.meta.kind, 'production');
    assert.equal(statSync(join(local.certDir(n), 'privkey.pem')).mode & 0o777, 0o600);
  }
  const accountFiles = filesUnder(join(data, 'accounts')).filter((f) => f.endsWith('account.json'));
  assert.equal(accountFiles.length, 1);
  assert.equal((JSON.parse(readFileSync(accountFiles[0]!, 'utf8')) as { url: string }).url, regr.uri, "the seed's account, reused");
  assert.equal(statSync(accountFiles[0]!).mode & 0o777, 0o600);

  // `plan` sees them as certwrangler's own, up to date.
  const plan = await planPass(await assemble(loadConfig(env), createLogger('silent'), { dryRun: true }));
  assert.deepEqual(plan.results.map((r) => [r.name, r.decision.reason]).sort(), ALL.map((n) => [n, 'UpToDate']));

  // The second pass, counted on the wire: nothing ordered, no account asked for.
  s.clearLog();
  const second = await passWithOrders(env, { settleTimeoutMs: 5000 });
  assert.equal(second.report.ok, true, JSON.stringify(second.report.results.map((r) => [r.name, r.decision.reason, r.error])));
  assert.equal(second.orders, 0);
  assert.deepEqual([...second.requests.keys()].filter((k) => /sign-me-up|new-acct|order/.test(k)), [], 'no account made, no order');
  assert.deepEqual(second.report.results.map((r) => [r.name, r.decision.reason]).sort(), ALL.map((n) => [n, 'UpToDate']), 'owned and up to date, not foreign');
  assert.deepEqual(writes(s.log), [], '0 writes');
  for (const n of ALL) {
    const c = s.certByName(n)!;
    assert.equal(c.id, ids.get(n));
    assert.equal(fingerprint(c.cert), seedFingerprints.get(n), `${n} is still the seed's certificate`);
  }
  assert.deepEqual([lb.lbConfig!.defaultCertificateId, ...lb.lbConfig!.certificateIds], ALL.map((n) => ids.get(n)), 'the traffic manager serves the same certificates');

  // When they are due, certwrangler renews the seed's certificates in place: same ids, the traffic manager reloaded.
  const due = new Date(Math.max(...ALL.map((n) => renewalTime(parseCert(s.certByName(n)!.cert), undefined).getTime())) + 86_400_000);
  // Rancher refuses the first push of b's renewal: b's copy there is still the seed's, and it stays ours to replace.
  s.clearLog();
  s.fault({ kind: 403, method: 'PUT', url: new RegExp(`/certificates/${ids.get('b.example.com')}`), times: 100 });
  const renewal = await passWithOrders(env, { settleTimeoutMs: 5000, now: () => due });
  assert.deepEqual(renewal.report.results.filter((r) => r.error).map((r) => r.name), ['b.example.com'], JSON.stringify(renewal.report.results.map((r) => [r.name, r.decision.reason, r.error])));
  assert.equal(renewal.orders, ALL.length, 'one order per name: still one certificate per name');
  assert.deepEqual([...renewal.requests.keys()].filter((k) => /sign-me-up/.test(k)), [], "renewed with the seed's account");
  assert.equal(fingerprint(s.certByName('b.example.com')!.cert), seedFingerprints.get('b.example.com'));
  s.clearFaults();
  // (At the real time: the renewed certificates are fresh then.)
  const retry = await passWithOrders(env, { settleTimeoutMs: 5000 });
  assert.equal(retry.report.ok, true, JSON.stringify(retry.report.results.map((r) => [r.name, r.decision.reason, r.error])));
  assert.equal(retry.orders, 0, 'the renewed certificate is pushed, not ordered again');
  assert.deepEqual(retry.report.results.filter((r) => r.decision.action === 'push').map((r) => r.name), ['b.example.com']);
  for (const n of ALL) {
    const c = s.certByName(n)!;
    assert.equal(c.id, ids.get(n), 'replaced in place');
    assert.notEqual(fingerprint(c.cert), seedFingerprints.get(n));
    assert.deepEqual(parseCert(c.cert).names, [n]);
    assert.match(c.description ?? '', /^managed by certwrangler/);
  }
  assert.ok(!s.log.some((r) => r.method === 'POST' && /\/certificates?$/.test(r.path)), 'nothing created beside them');
  assert.equal(lb.reloadCount, ALL.length + 1, "once for a's push in the first pass, once per renewal");
});

test('certwrangler import certbot <dir> by hand: the same import, idempotent; a certificate certwrangler holds is kept', async () => {
  const store = copyStore('by-hand');
  const data = join(base, 'by-hand', 'data');
  const env = { DATA_DIR: data, EMAIL: 'ops@example.com', LOG_LEVEL: 'silent', STATUS_ADDR: 'off', ...pebbleEnv(pebble, 'production') };
  const once = await runCli(['import', 'certbot', store], env);
  assert.equal(once.code, 0, once.stdout + once.stderr);
  for (const n of ALL) assert.match(once.stdout, new RegExp(`^certificate ${n.replace(/\./g, '\\.')} from .*: imported \\(production, expires `, 'm'));
  assert.match(once.stdout, /^account for https:\/\/127\.0\.0\.1:\d+\/dir from .*: imported$/m);
  assert.ok(!once.stdout.includes('PRIVATE KEY'));
  const keyFiles = filesUnder(data).filter((f) => f.endsWith('privkey.pem') || f.endsWith('account.json'));
  assert.equal(keyFiles.length, ALL.length + 1);
  for (const f of keyFiles) assert.equal(statSync(f).mode & 0o777, 0o600, f);
  const before = new Map(filesUnder(data).map((f) => [f, readFileSync(f, 'utf8')]));

  // Again (in-process: the CLI is the same function): nothing new, nothing rewritten.
  const again = describeImport(await importCertbot(store, { store: new FilesStore(data), productionDirectoryUrl: pebble.directoryUrl, stagingDirectoryUrl: 'https://acme-staging-v02.api.letsencrypt.org/directory' })).join('\n');
  for (const n of ALL) assert.match(again, new RegExp(`^certificate ${n.replace(/\./g, '\\.')} from .*: already imported`, 'm'));
  assert.match(again, /: kept \(.*account\.json exists; certwrangler's account is kept\)$/m);
  assert.deepEqual(new Map(filesUnder(data).map((f) => [f, readFileSync(f, 'utf8')])), before, 'nothing rewritten');
});

test('bad or partial certbot stores: each problem names the file; what is whole is still imported; the manager does not start on a half import', async () => {
  const target = (dir: string) => ({ store: new FilesStore(join(base, dir, 'data')), productionDirectoryUrl: pebble.directoryUrl, stagingDirectoryUrl: 'https://acme-staging-v02.api.letsencrypt.org/directory' });
  const store = copyStore('partial');
  // A lineage whose key went missing from archive/, one with no renewal conf, a key that is not JSON, a regr.json without its URL.
  const keyLink = join(store, 'live', 'a.example.com', 'privkey.pem');
  rmSync(realpathSync(keyLink));
  rmSync(join(store, 'renewal', 'b.example.com.conf'));
  const accountDir = filesUnder(join(store, 'accounts')).find((f) => f.endsWith('regr.json'))!.replace(/regr\.json$/, '');
  writeFileSync(join(accountDir, 'regr.json'), '{"body": {}}');
  const report = await importCertbot(store, target('partial'));
  assert.deepEqual(report.certs.filter((c) => c.outcome === 'imported').map((c) => c.name), [LABELLED], 'the whole lineage is imported');
  assert.equal(report.problems.length, 3, report.problems.join('\n'));
  assert.match(report.problems[0]!, new RegExp(`^${keyLink}: missing \\(a link to \\.\\./\\.\\./archive/a\\.example\\.com/privkey2\\.pem\\)`));
  assert.match(report.problems[1]!, new RegExp(`^${join(store, 'renewal', 'b.example.com.conf')}: missing`));
  assert.match(report.problems[2]!, new RegExp(`^${join(accountDir, 'regr.json')}: no "uri"`));
  assert.deepEqual(readdirSync(join(base, 'partial', 'data')).filter((f) => f === 'accounts'), [], 'no account half-imported');

  writeFileSync(join(accountDir, 'private_key.json'), 'not json', { mode: 0o600 });
  const badKey = await importCertbot(store, target('partial-2'));
  assert.ok(badKey.problems.some((p) => p.startsWith(`${join(accountDir, 'private_key.json')}: not a private key (not valid JSON)`)), badKey.problems.join('\n'));
  assert.ok(badKey.problems.every((p) => !p.includes('PRIVATE KEY-----')));

  // Several accounts for one directory: the one the renewal confs use; none used, a problem naming the folder.
  const twoAccounts = copyStore('two-accounts');
  const used = filesUnder(join(twoAccounts, 'accounts')).find((f) => f.endsWith('regr.json'))!.replace(/\/regr\.json$/, '');
  cpSync(used, join(used, '..', '0123456789abcdef0123456789abcdef'), { recursive: true });
  const picked = await importCertbot(twoAccounts, target('two-accounts'));
  assert.deepEqual(picked.accounts.map((a) => [a.from, a.outcome]), [[used, 'imported']], picked.problems.join('\n'));
  for (const conf of readdirSync(join(twoAccounts, 'renewal'))) {
    const path = join(twoAccounts, 'renewal', conf);
    writeFileSync(path, readFileSync(path, 'utf8').replace(/^account = .*$/m, ''));
  }
  const ambiguous = await importCertbot(twoAccounts, target('two-accounts-2'));
  assert.ok(ambiguous.problems.some((p) => p.startsWith(`${join(used, '..')}: certbot holds 2 accounts for ${pebble.directoryUrl}`)), ambiguous.problems.join('\n'));

  const notCertbot = join(base, 'not-certbot');
  mkdirSync(notCertbot, { recursive: true });
  writeFileSync(join(notCertbot, 'notes.txt'), 'hello');
  await assert.rejects(importCertbot(notCertbot, target('not-certbot')), new RegExp(`certbot store ${notCertbot} holds neither live/ nor accounts/`));

  // At start: the manager says what is wrong and how to go on, and starts no pass.
  const cfg = loadConfig({ CERTBOT_EMAIL: 'ops@example.com', DOMAINS: 'a.example.com', LETSENCRYPT_ROOTDIR: store, DATA_DIR: join(base, 'partial-3', 'data'), ...pebbleEnv(pebble, 'production') });
  const logged: Array<{ level: string; msg: string }> = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (logged.push(JSON.parse(chunk.toString()) as { level: string; msg: string }), cb()) });
  await assert.rejects(importAtStartFiles(cfg, createLogger('info', sink)), /could not be imported whole \(3 problems, each logged above naming its file\); what could be was imported\. Fix them and start again, or set LETSENCRYPT_ROOTDIR=off/);
  const errorLines = logged.filter((l) => l.level === 'error').map((l) => l.msg);
  const named = [keyLink, join(store, 'renewal', 'b.example.com.conf'), join(accountDir, 'private_key.json')];
  assert.equal(errorLines.length, named.length, errorLines.join('\n'));
  named.forEach((file, i) => assert.ok(errorLines[i]!.startsWith(`not imported: ${file}: `), `${errorLines[i]} names ${file}`));
  // The seed's default, not named: Debian's certbot package leaves only a cli.ini in /etc/letsencrypt.
  const packaged = join(base, 'etc-letsencrypt');
  mkdirSync(packaged, { recursive: true });
  writeFileSync(join(packaged, 'cli.ini'), 'max-log-backups = 0\n');
  const seedDefault = loadConfig({ CERTBOT_EMAIL: 'ops@example.com', DATA_DIR: join(base, 'partial-5', 'data') });
  logged.length = 0;
  await importAtStartFiles({ ...seedDefault, seed: { ...seedDefault.seed, certbotDir: { path: packaged, explicit: false } } }, createLogger('info', sink));
  assert.deepEqual(logged.map((l) => l.msg), [`no certbot store at ${packaged} (the seed's LETSENCRYPT_ROOTDIR): nothing to import`]);
  await assert.rejects(importAtStartFiles(loadConfig({ CERTBOT_EMAIL: 'ops@example.com', LETSENCRYPT_ROOTDIR: packaged, DATA_DIR: join(base, 'partial-6', 'data') }), createLogger('silent')), /holds neither live\/ nor accounts\/: it is not certbot's config dir .*; set LETSENCRYPT_ROOTDIR=off/);
  const missing = loadConfig({ CERTBOT_EMAIL: 'ops@example.com', LETSENCRYPT_ROOTDIR: join(base, 'nowhere'), DATA_DIR: join(base, 'partial-4', 'data') });
  await assert.rejects(importAtStartFiles(missing, createLogger('silent')), /LETSENCRYPT_ROOTDIR=.*nowhere: no such directory; mount the seed's letsencrypt-certs volume there, or set LETSENCRYPT_ROOTDIR=off/);
});

test("ACME_ACCOUNT_KEY_FILE: certbot's account key (JWK) alone is the account; the CA's existing account is used, none is made", async () => {
  const s = await sims.start();
  const keyFile = filesUnder(join(seedStore, 'accounts')).find((f) => f.endsWith('private_key.json'))!;
  const regr = JSON.parse(readFileSync(keyFile.replace(/private_key\.json$/, 'regr.json'), 'utf8')) as { uri: string };
  const env = { ...s.env, EMAIL: 'ops@example.com', DOMAINS: 'd.example.com', ACME_ACCOUNT_KEY_FILE: keyFile, DATA_DIR: join(base, 'key-only', 'data'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', ...pebbleEnv(pebble, 'production') };
  const config = loadConfig(env);
  await importAtStartFiles(config, createLogger('silent'));
  const { report, orders, requests } = await passWithOrders(env, { settleTimeoutMs: 5000 });
  assert.equal(report.ok, true, JSON.stringify(report.results.map((r) => r.error)));
  assert.equal(orders, 1);
  assert.deepEqual([...requests.keys()].filter((k) => /^201 POST \/sign-me-up/.test(k)), [], 'no account created');
  const account = filesUnder(join(env.DATA_DIR, 'accounts')).find((f) => f.endsWith('account.json'))!;
  assert.equal((JSON.parse(readFileSync(account, 'utf8')) as { url: string }).url, regr.uri);

  const bad = join(base, 'bad-key.pem');
  writeFileSync(bad, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  await assert.rejects(importAtStartFiles(loadConfig({ ...env, ACME_ACCOUNT_KEY_FILE: bad, DATA_DIR: join(base, 'bad-key', 'data') }), createLogger('silent')), new RegExp(`^Error: ACME_ACCOUNT_KEY_FILE: ${bad}: not a private key \\(no PRIVATE KEY block\\); accepted: a PEM private key`));
});
