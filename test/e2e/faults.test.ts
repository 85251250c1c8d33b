/**
 * The fault table of RELIABILITY.md, one test per row: each injects its fault into a real run (Pebble
 * killed and restarted, the Rancher simulator failing or holding calls, the manager process killed or
 * signalled, store files damaged, the data volume full or read-only) and checks what an operator would:
 * what the pass reports, what is left on disk and in the orchestrator, and how many orders it cost.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { keyMatchesCert, parseCert } from '../../src/certs/parse.js';
import { LocalStore, type CertBundle } from '../../src/certs/store.js';
import { directoryId } from '../../src/acme/account.js';
import { observeAcmeRequests } from '../../src/acme/transport.js';
import { renewalTime } from '../../src/policy.js';
import { CHALLENGE_PATH } from '../../src/acme/http01.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { acmeLab, assertChainVerifies, filesUnder, passWithOrders, pebbleEnv, startCli } from '../support/harness.js';
import { simPool, type RancherSim, type RequestRecord } from '../support/rancher-sim.js';
import { freePort } from '../support/ports.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const base = mkdtempSync(join(tmpdir(), 'cw-faults-'));
const lab = acmeLab(base);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
let main: Pebble;
const sims = simPool();
const servers: Server[] = [];
const extraPebbles: Pebble[] = [];

before(async () => {
  main = await lab.pebble('pebble-main');
});
after(async () => {
  await Promise.all([sims.closeAll(), ...extraPebbles.map((p) => p.stop())]);
  for (const s of servers) s.close();
  await lab.stop();
});

function filesEnv(dir: string, extra: Record<string, string>): Record<string, string> {
  return { DATA_DIR: join(base, dir, 'data'), CERTS_DIR: join(base, dir, 'live'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', ...pebbleEnv(main, 'production'), ...extra };
}

async function rancher(dir: string, extra: Record<string, string>): Promise<{ s: RancherSim; env: Record<string, string> }> {
  const s = await sims.start();
  return { s, env: { DATA_DIR: join(base, dir, 'data'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', ...s.env, ...pebbleEnv(main, 'production'), ...extra } };
}

const rancherPass = (env: Record<string, string>) => passWithOrders(env, { settleTimeoutMs: 5000 });

/** Every file under `dir` with its bytes, except the per-certificate status notes. */
function files(dir: string): Map<string, string> {
  return new Map(filesUnder(dir).filter((p) => basename(p) !== 'status.json').map((p) => [relative(dir, p), readFileSync(p, 'latin1')]));
}

/** Files a crash or a failed write could leave behind: temp files, uncommitted sets, commit markers. */
function debris(dir: string): string[] {
  return [...files(dir).keys()].filter((f) => /(^|\/)(\.commit|[^/]+\.new|\.[^/]+\.tmp-[0-9a-f]{12})$/.test(f));
}

async function waitFor(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const posts = (log: RequestRecord[]) => log.filter((r) => r.method === 'POST' && /\/certificates?$/.test(r.path));
const errorsOf = (r: { report: { results: { name: string; error?: string }[]; errors: string[] } }) =>
  JSON.stringify(r.report.results.filter((x) => x.error).map((x) => `${x.name}: ${x.error}`).concat(r.report.errors));

test('the CA goes away mid-order: the pass says so, the old certificate and key stay, and after the CA comes back (as a new CA that forgot our account) the next pass renews with one order', async () => {
  const ca = await lab.pebble('pebble-killed');
  const name = 'gone.example.com';
  const env = filesEnv('ca-gone', { DOMAINS: name, ...pebbleEnv(ca, 'production') });
  const first = await passWithOrders(env);
  assert.equal(first.report.ok, true, errorsOf(first));
  const live = join(env.CERTS_DIR!, name);
  const served = files(live);
  const stored = files(join(env.DATA_DIR!, 'certs', name));
  const due = new Date(renewalTime(parseCert(served.get('cert.pem')!), undefined).getTime() + DAY);

  // The moment the CA has created the renewal order, it is killed.
  const stop = observeAcmeRequests((r) => {
    if (r.status === '201' && new URL(r.url).pathname === '/order-plz') void ca.kill();
  });
  const second = await passWithOrders(env, { now: () => due }).finally(stop);
  const r = second.report.results[0]!;
  assert.equal(second.orders, 1);
  assert.equal(r.outcome, 'failed');
  assert.match(r.error!, /ECONNREFUSED|ECONNRESET|socket hang up/);
  assert.deepEqual(files(live), served, 'the certificate being served is untouched');
  const after = files(join(env.DATA_DIR!, 'certs', name));
  // The order the CA created before it went away is kept, to be carried on if the CA comes back knowing it.
  assert.ok(after.has('order.json'), 'the order in flight is remembered');
  after.delete('order.json');
  assert.deepEqual(after, stored, 'the stored certificate and key are untouched');
  assert.deepEqual(debris(env.DATA_DIR!), []);

  await ca.start();
  const third = await passWithOrders(env, { now: () => new Date(due.getTime() + 2 * HOUR) });
  assert.equal(third.report.ok, true, errorsOf(third));
  assert.equal(third.orders, 1, 'one order after the one the outage cost');
  assert.equal(existsSync(join(env.DATA_DIR!, 'certs', name, 'order.json')), false, 'the order the new CA does not know is forgotten');
  assert.equal(third.report.results[0]!.decision.reason, 'Renew');
  const renewed = readFileSync(join(live, 'cert.pem'), 'utf8');
  assert.notEqual(renewed, served.get('cert.pem'));
  assertChainVerifies(readFileSync(join(live, 'fullchain.pem'), 'utf8'), await ca.root());
  const accountDir = join(env.DATA_DIR!, 'accounts', directoryId(ca.directoryUrl));
  assert.ok(readdirSync(accountDir).some((f) => /^account\.json\.gone-/.test(f)), 'the forgotten account is kept aside, not deleted');
});

test('Rancher answers 500, 502, then 503 to a push: it is retried with growing waits and lands in the same pass', async () => {
  const { s, env } = await rancher('rancher-5xx', { DOMAINS: 'retry.example.com', PLACEHOLDERS: 'false' });
  for (const kind of [500, 502, 503] as const) s.fault({ kind, method: 'POST', url: /\/certificates$/ });
  const got = await rancherPass(env);
  assert.equal(got.report.ok, true, errorsOf(got));
  assert.equal(got.orders, 1);
  const tries = posts(s.log);
  assert.deepEqual(tries.map((t) => t.status), [500, 502, 503, 201]);
  const gaps = tries.slice(1).map((t, i) => t.at - tries[i]!.at);
  assert.ok(gaps[2]! > gaps[0]!, `waits grow: ${gaps.join(', ')} ms`);
  assert.equal(s.certByName('retry.example.com')!.state, 'active');
});

test('a push that keeps failing: the certificate is kept, and the next pass pushes it without a new order', async () => {
  const { s, env } = await rancher('rancher-push-fails', { DOMAINS: 'kept.example.com', PLACEHOLDERS: 'false' });
  s.fault({ kind: 503, method: 'POST', url: /\/certificates$/, times: 4 });
  const first = await rancherPass(env);
  const r = first.report.results[0]!;
  assert.equal(first.orders, 1);
  assert.equal(r.outcome, 'failed');
  assert.equal(r.issued, true, 'the order itself succeeded');
  assert.match(r.error!, /503/);
  assert.equal(s.certByName('kept.example.com'), undefined);
  const local = await new LocalStore(new FilesStore(env.DATA_DIR!)).read('kept.example.com', { recover: false });
  assert.ok(local.state === 'present' && local.keyMatches);

  const second = await rancherPass(env);
  assert.equal(second.report.ok, true, errorsOf(second));
  assert.equal(second.orders, 0, 'never ordered twice because a push failed');
  assert.equal(second.report.results[0]!.decision.reason, 'NotInOrchestrator');
  assert.equal(parseCert(s.certByName('kept.example.com')!.cert).fingerprint, local.state === 'present' ? local.info.fingerprint : '');
});

test('Rancher answers 403: one clear error naming the credential variables, not retried, nothing ordered or written', async () => {
  const { s, env } = await rancher('rancher-403', { DOMAINS: 'forbidden.example.com' });
  s.fault({ kind: 403, method: 'GET', url: /\/certificates/, times: 100 });
  const got = await rancherPass(env);
  assert.equal(got.report.ok, false);
  assert.equal(got.orders, 0);
  assert.match(got.report.errors.join('\n'), /403 Forbidden.*CATTLE_ACCESS_KEY and CATTLE_SECRET_KEY/);
  assert.equal(s.log.filter((r) => r.status === 403).length, 1, 'a 403 is not retried');
  assert.ok(s.log.every((r) => r.method === 'GET'));
  assert.ok(!existsSync(join(env.DATA_DIR!, 'certs', 'forbidden.example.com', 'cert.pem')));
});

test('labels cannot be read: the pass goes on with DOMAINS, says why, and removes nothing', async () => {
  const { s, env } = await rancher('rancher-labels', { DOMAINS: 'env.example.com' });
  s.addService({ name: 'web', labels: { 'com.danieldent.rancher-lets-encrypt.hosts': 'label.example.com' } });
  assert.equal((await rancherPass({ ...env, DOMAINS: 'env.example.com' })).report.ok, true);
  const labelled = JSON.stringify(s.certByName('label.example.com'));
  s.fault({ kind: 503, method: 'GET', url: /\/services/, times: 100 });
  const got = await rancherPass(env);
  assert.equal(got.report.ok, false);
  assert.match(got.report.errors.join('\n'), /cannot read labels from rancher: .*503/);
  assert.deepEqual(got.report.results.map((r) => [r.name, r.outcome]), [['env.example.com', 'ok']]);
  assert.equal(got.orders, 0);
  assert.equal(JSON.stringify(s.certByName('label.example.com')), labelled, 'the labelled certificate is left as it was');
});

test('SIGKILL between issue and push: on restart the stored certificate matches its key and is pushed, with no new order', async () => {
  const name = 'killed.example.com';
  const { s, env } = await rancher('kill-push', { DOMAINS: name, PLACEHOLDERS: 'false', LOG_LEVEL: 'info' });
  s.fault({ kind: 'delay', delayMs: 120_000, method: 'POST', url: /\/certificates$/ });
  const run = startCli(['manager', '--once'], env);
  await waitFor('the push to reach Rancher', () => posts(s.log).length > 0);
  run.proc.kill('SIGKILL');
  const end = await run.done;
  assert.equal(end.signal, 'SIGKILL');
  assert.match(end.stdout, /certificate issued/);
  s.clearFaults();
  assert.equal(s.certByName(name), undefined, 'the push never landed');
  assert.deepEqual(debris(env.DATA_DIR!), []);
  const local = await new LocalStore(new FilesStore(env.DATA_DIR!)).read(name, { recover: false });
  assert.ok(local.state === 'present' && local.keyMatches, 'a complete certificate with its own key');

  const next = await rancherPass({ ...env, LOG_LEVEL: 'silent' });
  assert.equal(next.report.ok, true, errorsOf(next));
  assert.equal(next.orders, 0);
  assert.equal(parseCert(s.certByName(name)!.cert).fingerprint, local.state === 'present' ? local.info.fingerprint : '');
});

test('SIGKILL during store writes, 12 times at random moments: every restart finds the old or the new certificate whole, and the pass orders nothing', async () => {
  const name = 'crash.example.com';
  // Two real certificates for the same name, from two stores.
  const envA = filesEnv('crash-a', { DOMAINS: name });
  const envB = filesEnv('crash-b', { DOMAINS: name });
  for (const e of [envA, envB]) assert.equal((await passWithOrders(e)).report.ok, true);
  const bundles: CertBundle[] = [];
  for (const e of [envA, envB]) {
    const got = await new LocalStore(new FilesStore(e.DATA_DIR!)).read(name);
    assert.ok(got.state === 'present');
    bundles.push(got.bundle);
  }
  const fingerprints = bundles.map((b) => parseCert(b.cert).fingerprint);
  const bundlesPath = join(base, 'crash-bundles.json');
  writeFileSync(bundlesPath, JSON.stringify(bundles), { mode: 0o600 });

  let interrupted = 0;
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 12; i++) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/store-writer.ts', envA.DATA_DIR!, bundlesPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`store writer exited with ${code}`)));
    });
    await new Promise((r) => setTimeout(r, 5 + random() * 60));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    if (debris(envA.DATA_DIR!).length > 0) interrupted += 1;
    const read = await new LocalStore(new FilesStore(envA.DATA_DIR!)).read(name);
    assert.equal(read.state, 'present', `kill ${i + 1}: ${read.state === 'unreadable' ? read.error : 'absent'}`);
    if (read.state !== 'present') continue;
    assert.ok(read.keyMatches, `kill ${i + 1}: the key matches its certificate`);
    assert.ok(fingerprints.includes(read.info.fingerprint), `kill ${i + 1}: one of the two certificates`);
    assert.deepEqual(debris(envA.DATA_DIR!), [], 'recovery leaves no temp files');
  }
  assert.ok(interrupted >= 3, `at least a few kills landed inside a write (${interrupted} of 12)`);
  const after = await passWithOrders(envA);
  assert.equal(after.report.ok, true, errorsOf(after));
  assert.equal(after.orders, 0);
});

test('SIGTERM while an order is validating: the order is abandoned, its challenge file removed, exit 0 within 10 s, no backoff recorded', async () => {
  // Pebble validates against this server, which tells the test and never answers: the pass stays in flight.
  const dir = join(base, 'sigterm');
  const webroot = join(dir, 'www');
  const challengeDir = join(webroot, CHALLENGE_PATH);
  let asked: (files: string[]) => void;
  const validating = new Promise<string[]>((r) => (asked = r));
  const hang = createServer(() => asked(existsSync(challengeDir) ? readdirSync(challengeDir) : []));
  const httpPort = await freePort();
  await new Promise<void>((r) => hang.listen(httpPort, '127.0.0.1', r));
  servers.push(hang);
  const ca = await startPebble({ dir: join(dir, 'pebble'), httpPort, nonceReject: 0 });
  extraPebbles.push(ca);
  const env = { DATA_DIR: join(dir, 'data'), CERTS_DIR: join(dir, 'live'), WEBROOT_DIR: webroot, DOMAINS: 'term.example.com', STATUS_ADDR: 'off', LOG_LEVEL: 'info', ...pebbleEnv(ca, 'production') };
  const run = startCli(['manager'], env);
  const present = await validating;
  assert.equal(present.length, 1, 'the challenge file is in place while the CA validates');
  const signalled = Date.now();
  run.proc.kill('SIGTERM');
  const end = await run.done;
  const took = Date.now() - signalled;
  assert.equal(end.code, 0, end.stdout + end.stderr);
  assert.ok(took < 10_000, `exited ${took} ms after SIGTERM`);
  assert.match(end.stdout, /abandoned: the manager is shutting down \(SIGTERM\)/);
  assert.deepEqual(readdirSync(challengeDir), [], 'no challenge file left in the webroot');
  const status = join(env.DATA_DIR, 'certs', 'term.example.com', 'status.json');
  assert.ok(!existsSync(status) || (JSON.parse(readFileSync(status, 'utf8')) as { failures: number }).failures === 0, 'shutting down is not a failure of the certificate');
  assert.deepEqual(debris(env.DATA_DIR), []);
});

test('a truncated certificate and a garbled key in the store: each is reported and re-issued; nothing else is touched', async () => {
  const names = ['intact.example.com', 'truncated.example.com', 'garbled.example.com'];
  const env = filesEnv('corrupt', { DOMAINS: names.join(';') });
  assert.equal((await passWithOrders(env)).report.ok, true);
  const certs = (n: string) => join(env.DATA_DIR!, 'certs', n);
  const cert = readFileSync(join(certs('truncated.example.com'), 'cert.pem'), 'utf8');
  writeFileSync(join(certs('truncated.example.com'), 'cert.pem'), cert.slice(0, cert.length / 2));
  writeFileSync(join(certs('garbled.example.com'), 'privkey.pem'), '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n');
  const intactStore = files(certs('intact.example.com'));
  const intactLive = files(join(env.CERTS_DIR!, 'intact.example.com'));

  const got = await passWithOrders(env);
  assert.equal(got.report.ok, true, errorsOf(got));
  assert.equal(got.orders, 2);
  const by = new Map(got.report.results.map((r) => [r.name, r]));
  assert.equal(by.get('truncated.example.com')!.decision.reason, 'LocalUnreadable');
  assert.equal(by.get('garbled.example.com')!.decision.reason, 'LocalUnreadable');
  assert.match(by.get('garbled.example.com')!.decision.message, /privkey\.pem does not parse/);
  assert.equal(by.get('intact.example.com')!.decision.reason, 'UpToDate');
  assert.deepEqual(files(certs('intact.example.com')), intactStore);
  assert.deepEqual(files(join(env.CERTS_DIR!, 'intact.example.com')), intactLive);
  for (const n of ['truncated.example.com', 'garbled.example.com']) {
    const local = await new LocalStore(new FilesStore(env.DATA_DIR!)).read(n);
    assert.ok(local.state === 'present' && local.keyMatches, `${n} is whole again`);
    assert.ok(keyMatchesCert(readFileSync(join(env.CERTS_DIR!, n, 'privkey.pem'), 'utf8'), readFileSync(join(env.CERTS_DIR!, n, 'cert.pem'), 'utf8')));
  }
});

/** Runs `manager --once` in a private mount namespace whose DATA_DIR is set up by `mountScript` (sh). */
function inMountNamespace(mountScript: string, dataDir: string, env: Record<string, string>, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = [process.execPath, '--import', 'tsx', 'src/cli.ts', ...args].map((a) => `'${a}'`).join(' ');
  // After the run, list anything half-written while the mount still exists.
  const script = `set -e; ${mountScript}; set +e; ${cli}; code=$?; find '${dataDir}' \\( -name '*.new' -o -name '.commit' -o -name '.*.tmp-*' \\) -printf 'LEFTOVER %p\\n'; exit $code`;
  return startCli([], env, { wrap: ['unshare', ...unshareFlags(), 'sh', '-c', script, 'sh'] }).done.then(({ code, stdout, stderr }) => ({ code, stdout, stderr }));
}

let flags: string[] | undefined;
function unshareFlags(): string[] {
  // Root with CAP_SYS_ADMIN mounts directly; otherwise an unprivileged user namespace may.
  flags ??= [['-m'], ['-Urm']].find((f) => spawnSync('unshare', [...f, 'sh', '-c', 'mount -t tmpfs tmpfs /mnt'], { stdio: 'ignore' }).status === 0);
  if (!flags) throw new Error('this test needs `unshare -m` (root) or unprivileged user namespaces to mount a small tmpfs');
  return flags;
}

test('the data volume is full, or read-only: a clear error, no order, no partial file, the certificate in place still served', async () => {
  const name = 'volume.example.com';
  const env = filesEnv('volume', { DOMAINS: name, LOG_LEVEL: 'info' });
  assert.equal((await passWithOrders({ ...env, LOG_LEVEL: 'silent' })).report.ok, true);
  const served = files(join(env.CERTS_DIR!, name));
  const due = new Date(renewalTime(parseCert(served.get('cert.pem')!), undefined).getTime() + DAY).toISOString();
  // The same data, on a 1 MiB tmpfs filled to the last block.
  const full = join(base, 'volume', 'full');
  mkdirSync(full, { recursive: true });
  const fill = `mount -t tmpfs -o size=1m tmpfs '${full}'; cp -a '${env.DATA_DIR}/.' '${full}/'; dd if=/dev/zero of='${full}/filler' bs=4k 2>/dev/null || true`;
  const onFull = await inMountNamespace(fill, full, { ...env, DATA_DIR: full }, ['manager', '--once', '--at', due]);
  assert.equal(onFull.code, 1, onFull.stdout + onFull.stderr);
  assert.match(onFull.stdout, /cannot record the order in the rate-limit ledger .*ENOSPC: no space left on device.*no order made/);
  assert.doesNotMatch(onFull.stdout, /order created/);
  assert.doesNotMatch(onFull.stdout, /LEFTOVER/);

  const ro = `mount --bind '${env.DATA_DIR}' '${env.DATA_DIR}'; mount -o remount,bind,ro '${env.DATA_DIR}'`;
  const onReadOnly = await inMountNamespace(ro, env.DATA_DIR!, env, ['manager', '--once', '--at', due]);
  assert.equal(onReadOnly.code, 1, onReadOnly.stdout + onReadOnly.stderr);
  assert.match(onReadOnly.stderr, /DATA_DIR .* cannot be prepared \(the volume is read-only\): certwrangler keeps its keys and certificates there/);
  assert.doesNotMatch(onReadOnly.stdout, /order created|LEFTOVER/);

  assert.deepEqual(files(join(env.CERTS_DIR!, name)), served, 'the certificate in place is still what is served');
  assert.equal(statSync(join(env.CERTS_DIR!, name, 'privkey.pem')).mode & 0o777, 0o600);
});
