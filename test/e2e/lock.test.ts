/**
 * One writer per DATA_DIR, with real processes: two `manager --once` started together never order twice or
 * pair a key with another certificate; a second daemon refuses to start, naming the holder; a lock left by a
 * dead process is taken over.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { keyMatchesCert } from '../../src/certs/parse.js';
import { LocalStore } from '../../src/certs/store.js';
import { LOCK_NAME, STALE_MS } from '../../src/lock.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, pebbleEnv, runCli, startCli } from '../support/harness.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const base = mkdtempSync(join(tmpdir(), 'cw-lock-'));
const lab = acmeLab(base);
let ca: Pebble;
before(async () => {
  ca = await lab.pebble('pebble');
});
after(() => lab.stop());

const envFor = (dir: string, extra: Record<string, string> = {}): Record<string, string> => ({
  DATA_DIR: join(base, dir, 'data'),
  CERTS_DIR: join(base, dir, 'live'),
  WEBROOT_DIR: lab.webroot,
  STATUS_ADDR: 'off',
  LOG_LEVEL: 'info',
  ...pebbleEnv(ca, 'production'),
  ...extra,
});

/** Log lines of a run that record an order placed with the CA. */
const ordersIn = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { action?: string; cert?: string })
    .filter((l) => l.action === 'order');

test('two `manager --once` on one DATA_DIR, started together 20 times: no order is made twice, the key always matches the certificate', async () => {
  // 20 rounds in 4 lanes of 5, each lane on its own DATA_DIR, so the idle time of a waiting run is used.
  const LANES = 4;
  const ROUNDS = 5;
  let waited = 0;
  await Promise.all(
    Array.from({ length: LANES }, async (_, lane) => {
      const env = envFor(`twice-${lane}`);
      for (let i = 0; i < ROUNDS; i++) {
        // A new name each round, so each round has exactly one order to make.
        const name = `r${i}.l${lane}.twice.example.com`;
        const round = `lane ${lane + 1} round ${i + 1}`;
        const runs = await Promise.all([runCli(['manager', '--once'], { ...env, DOMAINS: name }), runCli(['manager', '--once'], { ...env, DOMAINS: name })]);
        for (const r of runs) assert.equal(r.code, 0, `${round}: ${r.stdout}${r.stderr}`);
        const orders = runs.flatMap((r) => ordersIn(r.stdout));
        assert.equal(orders.length, 1, `${round}: ${orders.length} orders for ${name}`);
        const local = await new LocalStore(new FilesStore(env.DATA_DIR!)).read(name, { recover: false });
        assert.ok(local.state === 'present' && local.keyMatches, `${round}: the stored key matches the stored certificate`);
        const live = join(env.CERTS_DIR!, name);
        const cert = readFileSync(join(live, 'cert.pem'), 'utf8');
        assert.ok(keyMatchesCert(readFileSync(join(live, 'privkey.pem'), 'utf8'), cert), `${round}: the served key matches the served certificate`);
        assert.equal(cert, local.state === 'present' ? local.bundle.cert : '', `${round}: the served certificate is the stored one`);
        if (runs.some((r) => /is in use by another manager .*: waiting up to/.test(r.stdout))) waited += 1;
      }
      assert.ok(!existsSync(join(env.DATA_DIR!, LOCK_NAME)), 'the lock is released at exit');
    }),
  );
  assert.ok(waited > 0, 'the runs overlapped: one waited for the other');
});

test('a second daemon on the same DATA_DIR refuses to start, naming the holder\'s pid and host; `--once` waits LOCK_WAIT, then says the same; SIGTERM releases the lock', async () => {
  const env = envFor('daemon');
  const first = startCli(['manager'], env);
  const owner = join(env.DATA_DIR!, LOCK_NAME, 'owner.json');
  while (!existsSync(owner) && first.proc.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(owner), first.output());
  const holder = `pid ${first.proc.pid} on host ${hostname()}`;

  const second = await runCli(['manager'], env);
  assert.equal(second.code, 1, second.stdout + second.stderr);
  const line = second.stderr.trim();
  assert.equal(line.split('\n').length, 1, 'one line');
  assert.match(line, new RegExp(`^certwrangler: DATA_DIR ${env.DATA_DIR} is in use by another certwrangler manager \\(${holder}, since \\S+\\): one manager per DATA_DIR`));
  assert.doesNotMatch(second.stdout, /"action"/, 'it did nothing');

  const once = await runCli(['manager', '--once'], { ...env, LOCK_WAIT: '1s' });
  assert.equal(once.code, 1, once.stdout + once.stderr);
  assert.match(once.stderr, new RegExp(`\\(${holder}, since \\S+\\); waited 1 s \\(LOCK_WAIT\\)`));

  first.proc.kill('SIGTERM');
  const end = await first.done;
  assert.equal(end.code, 0, end.stdout + end.stderr);
  assert.ok(!existsSync(join(env.DATA_DIR!, LOCK_NAME)), 'the lock is gone');
  const after = await runCli(['manager', '--once'], { ...env, LOCK_WAIT: '0s' });
  assert.equal(after.code, 0, after.stdout + after.stderr);
});

/** Leaves a lock as a manager that died would: its folder, its owner record, and a heartbeat `ageMs` old. */
// The test's pid namespace is the manager's it starts: "this host" in the lock's sense.
const OUR_PIDNS = readlinkSync('/proc/self/ns/pid');

function leaveLock(dataDir: string, owner: { pid: number; host: string; pidns?: string }, ageMs: number): void {
  const dir = join(dataDir, LOCK_NAME);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'owner.json'), JSON.stringify({ ...owner, since: new Date(Date.now() - ageMs).toISOString() }));
  const t = new Date(Date.now() - ageMs);
  utimesSync(dir, t, t);
}

test('a lock left by a dead process is taken over at once on the same host; from another host once its heartbeat is stale, and not before', async () => {
  const env = envFor('stale', { LOCK_WAIT: '0s' });
  // A pid that was just in use and is not any more.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  assert.ok(deadPid > 0);
  leaveLock(env.DATA_DIR!, { pid: deadPid, host: hostname(), pidns: OUR_PIDNS }, 0);
  const sameHost = await runCli(['manager', '--once'], env);
  assert.equal(sameHost.code, 0, sameHost.stdout + sameHost.stderr);
  assert.match(sameHost.stdout, new RegExp(`took over the lock on DATA_DIR .* left by pid ${deadPid} on host .*: pid ${deadPid} is not running`));

  const lockDir = join(env.DATA_DIR!, LOCK_NAME);
  const waitedThenTookOver = (out: string, holder: RegExp) => {
    const lines = out.split('\n');
    const waited = lines.findIndex((l) => /is held by a manager whose heartbeat has stopped .*waiting for its lock to go stale/.test(l));
    const took = lines.findIndex((l) => holder.test(l) && /took over the lock .*: no heartbeat for \d+ s/.test(l));
    assert.ok(waited >= 0 && took > waited, `waited for the lock to go stale, then took it over:\n${out}`);
  };

  // Another container with the same host name (host network, a fixed `hostname:`) whose heartbeat moves: a
  // live manager, whatever its pid means on this side. Refused, never taken over.
  leaveLock(env.DATA_DIR!, { pid: deadPid, host: hostname(), pidns: 'pid:[1]' }, 0);
  const beat = setInterval(() => utimesSync(lockDir, new Date(), new Date()), 500);
  const twin = await runCli(['manager', '--once'], env).finally(() => clearInterval(beat));
  assert.equal(twin.code, 1, twin.stdout + twin.stderr);
  assert.match(twin.stderr, new RegExp(`in use by another certwrangler manager \\(pid ${deadPid} on host `));

  // This host's manager from another pid namespace whose heartbeat has stopped: our own container before a
  // crash (a restarted container gets a new namespace). Waited for until stale, even with LOCK_WAIT=0s, and
  // taken over, instead of exiting and being restarted until then.
  leaveLock(env.DATA_DIR!, { pid: 1, host: hostname(), pidns: 'pid:[1]' }, STALE_MS - 6000);
  const restarted = await runCli(['manager', '--once'], env);
  assert.equal(restarted.code, 0, restarted.stdout + restarted.stderr);
  waitedThenTookOver(restarted.stdout, new RegExp(`left by pid 1 on host ${hostname().replace(/[.]/g, '\\.')}`));

  // Another host's live manager: refused while its heartbeat is fresh (an mtime ahead of now stays fresh
  // however slowly the CLI starts).
  leaveLock(env.DATA_DIR!, { pid: 1, host: 'elsewhere.invalid' }, -60_000);
  const fresh = await runCli(['manager', '--once'], env);
  assert.equal(fresh.code, 1, fresh.stdout + fresh.stderr);
  assert.match(fresh.stderr, /in use by another certwrangler manager \(pid 1 on host elsewhere\.invalid, since /);
  assert.ok(existsSync(join(env.DATA_DIR!, LOCK_NAME, 'owner.json')), 'a live lock is left alone');

  // One that has missed its beats (a container killed on upgrade): waited for until it is stale, then taken
  // over, even with LOCK_WAIT=0s, rather than refused (a refusal would only restart the new container).
  leaveLock(env.DATA_DIR!, { pid: 1, host: 'elsewhere.invalid' }, STALE_MS - 6000);
  const dying = await runCli(['manager', '--once'], env);
  assert.equal(dying.code, 0, dying.stdout + dying.stderr);
  waitedThenTookOver(dying.stdout, /left by pid 1 on host elsewhere\.invalid/);

  // ...and taken over once its heartbeat is older than the stale limit.
  leaveLock(env.DATA_DIR!, { pid: 1, host: 'elsewhere.invalid' }, STALE_MS + 5000);
  const stale = await runCli(['manager', '--once'], env);
  assert.equal(stale.code, 0, stale.stdout + stale.stderr);
  assert.match(stale.stdout, /took over the lock .* left by pid 1 on host elsewhere\.invalid.*: no heartbeat for \d+ s/);
  assert.ok(!existsSync(join(env.DATA_DIR!, LOCK_NAME)));
});

test('LOCK_WAIT that is not a duration is refused at start, naming it', async () => {
  const run = await runCli(['manager', '--once'], envFor('badwait', { LOCK_WAIT: 'a while' }));
  assert.equal(run.code, 2, run.stdout + run.stderr);
  assert.match(run.stderr, /LOCK_WAIT.*a while.*a duration such as 60s/);
  assert.ok(!existsSync(join(base, 'badwait', 'data')), 'nothing was written');
});

test('8 managers taking over one stale lock at the same moment: one at a time holds it, and one removed the stale lock', async () => {
  const dataDir = join(base, 'race', 'data');
  const marker = join(base, 'race', 'inside');
  const children = Array.from({ length: 8 }, () => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'test/support/lock-holder.ts', dataDir, marker], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b));
    const ready = new Promise<void>((resolve) => p.stdout.once('data', () => resolve()));
    const done = new Promise<string>((resolve) => p.once('close', () => resolve(out)));
    return { p, ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  leaveLock(dataDir, { pid: Number(dead.stdout), host: hostname(), pidns: OUR_PIDNS }, 0);
  for (const c of children) c.p.stdin!.write('go\n');
  const outs = await Promise.all(children.map((c) => c.done));
  const lines = outs.map((o) => o.split('\n').filter((l) => l !== 'ready').join(' ').trim());
  assert.equal(lines.filter((l) => l.startsWith('inside-alone')).length, 8, lines.join('\n'));
  assert.equal(lines.filter((l) => l.endsWith('took-over')).length, 1, lines.join('\n'));
  assert.ok(!existsSync(join(dataDir, LOCK_NAME)));
});
