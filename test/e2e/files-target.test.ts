/**
 * The files target as an operator's CERTS_DIR sees it: folders certwrangler did not write are left byte for
 * byte, sets are versions behind one symlink, a reader never sees a key beside another certificate, the
 * layout before versions moves on first start, and old versions are pruned.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { ARCHIVE, FilesOrchestrator, KEEP_VERSIONS } from '../../src/orchestrators/files/files.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { keyMatchesCert, parseCert } from '../../src/certs/parse.js';
import type { CertBundle } from '../../src/certs/store.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, filesUnder, passWithOrders, pebbleEnv, runCli } from '../support/harness.js';

const base = mkdtempSync(join(tmpdir(), 'cw-files-'));
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
  LOG_LEVEL: 'silent',
  ...pebbleEnv(ca, 'production'),
  ...extra,
});

async function bundle(name: string): Promise<CertBundle> {
  const ss = await createSelfSigned([name]);
  return { name, names: [name], key: ss.key, cert: ss.cert, chain: '', kind: 'self-signed', directoryUrl: '' };
}

/** Content and mode of every file under `dir`, by path relative to it. */
function contents(dir: string): Map<string, string> {
  return new Map(filesUnder(dir).map((p) => [relative(dir, p), `${(statSync(p).mode & 0o777).toString(8)} ${readFileSync(p, 'latin1')}`]));
}

/** An acme.sh/certbot-style folder: fullchain.pem and privkey.pem only (no cert.pem, no marker), and a stray `x.new`. */
async function foreignFolder(certsDir: string, name: string): Promise<{ dir: string; notAfter: Date }> {
  const dir = join(certsDir, name);
  mkdirSync(dir, { recursive: true });
  const theirs = await createSelfSigned([name], { days: 40 });
  const other = await createSelfSigned(['intermediate.example']);
  writeFileSync(join(dir, 'fullchain.pem'), theirs.cert + other.cert, { mode: 0o644 });
  writeFileSync(join(dir, 'privkey.pem'), theirs.key, { mode: 0o640 });
  chmodSync(join(dir, 'privkey.pem'), 0o640);
  writeFileSync(join(dir, 'x.new'), 'half of something the other tool was writing');
  chmodSync(dir, 0o750);
  return { dir, notAfter: parseCert(theirs.cert).notAfter };
}

test('a certbot/acme.sh folder with a wanted name: left byte for byte after a pass (content, modes, its .new file), reported as foreign with its expiry; adopted only when ADOPT_EXISTING names it', async () => {
  const name = 'theirs.example.com';
  const env = envFor('foreign', { DOMAINS: name });
  const { dir, notAfter } = await foreignFolder(env.CERTS_DIR!, name);
  const before = contents(dir);
  const dirMode = statSync(dir).mode & 0o777;

  const listed = (await new FilesOrchestrator({ certsDir: env.CERTS_DIR! }).list([name])).get(name)!;
  assert.equal(listed.state, 'present', JSON.stringify(listed));
  assert.equal(listed.state === 'present' && listed.owned, false, 'reported as foreign');
  assert.equal(listed.state === 'present' && listed.info.notAfter.getTime(), notAfter.getTime(), 'its expiry is read from the first certificate of fullchain.pem');

  await passWithOrders(env);
  assert.deepEqual(contents(dir), before, 'every file as it was, the .new file included');
  assert.equal(statSync(dir).mode & 0o777, dirMode);
  assert.ok(lstatSync(dir).isDirectory(), 'still the operator\'s folder, not a symlink');
  await assert.rejects(new FilesOrchestrator({ certsDir: env.CERTS_DIR! }).push(await bundle(name), { adopt: false }), /holds files certwrangler did not write .*ADOPT_EXISTING/);
  assert.deepEqual(contents(dir), before);

  // Named in ADOPT_EXISTING: certwrangler takes the name over, and keeps the folder it replaced.
  const adopted = await passWithOrders({ ...env, ADOPT_EXISTING: name });
  assert.equal(adopted.report.ok, true, JSON.stringify(adopted.report.results.map((r) => [r.decision, r.error])));
  assert.ok(lstatSync(dir).isSymbolicLink(), 'CERTS_DIR/<name> now points at certwrangler\'s version');
  const served = parseCert(readFileSync(join(dir, 'cert.pem'), 'utf8'));
  assert.equal(served.selfSigned, false, 'a certificate from the CA');
  assert.ok(keyMatchesCert(readFileSync(join(dir, 'privkey.pem'), 'utf8'), readFileSync(join(dir, 'cert.pem'), 'utf8')));
  const kept = readdirSync(join(env.CERTS_DIR!, ARCHIVE, name)).filter((e) => e.startsWith('adopted-'));
  assert.equal(kept.length, 1);
  assert.deepEqual(contents(join(env.CERTS_DIR!, ARCHIVE, name, kept[0]!)), before, 'the replaced folder is kept whole');
});

test('an existing CERTS_DIR with mode 0750 keeps 0750; the folders certwrangler creates are 0755', async () => {
  const certsDir = join(base, 'modes', 'live');
  mkdirSync(certsDir, { recursive: true });
  chmodSync(certsDir, 0o750);
  const files = new FilesOrchestrator({ certsDir });
  await files.push(await bundle('modes.example.com'), { adopt: false });
  await files.push(await bundle('modes.example.com'), { adopt: false });
  assert.equal(statSync(certsDir).mode & 0o777, 0o750);
  assert.equal(statSync(join(certsDir, ARCHIVE)).mode & 0o777, 0o755);
  assert.equal(statSync(join(certsDir, 'modes.example.com')).mode & 0o777, 0o755);
  assert.equal(statSync(join(certsDir, 'modes.example.com', 'privkey.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(join(certsDir, 'modes.example.com', 'bundle.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(join(certsDir, 'modes.example.com', 'cert.pem')).mode & 0o777, 0o644);
});

test('a reader looping over live/<name>/ in another process during 50 renewals never sees a key that does not match its certificate', async () => {
  const name = 'reader.example.com';
  const certsDir = join(base, 'reader', 'live');
  const files = new FilesOrchestrator({ certsDir });
  const sets = await Promise.all(Array.from({ length: 51 }, () => bundle(name)));
  await files.push(sets[0]!, { adopt: false });
  const reader = spawn(process.execPath, ['--import', 'tsx', 'test/support/live-reader.ts', certsDir, name], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  reader.stdout.on('data', (b: Buffer) => (out += b));
  await new Promise<void>((resolve) => reader.stdout.once('data', () => resolve()));
  for (const set of sets.slice(1)) await files.push(set, { adopt: false });
  reader.stdin.end();
  await new Promise((r) => reader.once('close', r));
  const result = JSON.parse(out.split('\n').filter(Boolean).pop()!) as { reads: number; mismatches: number; missing: number };
  assert.ok(result.reads > 50, `the reader read ${result.reads} times`);
  assert.equal(result.mismatches, 0, `${result.mismatches} of ${result.reads} reads paired a key with another certificate`);
  assert.equal(readFileSync(join(certsDir, name, 'cert.pem'), 'utf8'), sets[50]!.cert, 'the last renewal is served');
});

test(`versions are pruned to the last ${KEEP_VERSIONS}; the link is relative and names the newest`, async () => {
  const name = 'prune.example.com';
  const certsDir = join(base, 'prune', 'live');
  const files = new FilesOrchestrator({ certsDir });
  let last: CertBundle | undefined;
  for (let i = 0; i < 5; i++) await files.push((last = await bundle(name)), { adopt: false });
  assert.deepEqual(readdirSync(join(certsDir, ARCHIVE, name)).sort(), ['3', '4', '5']);
  assert.equal(readlinkSync(join(certsDir, name)), join(ARCHIVE, name, '5'));
  assert.equal(readFileSync(join(certsDir, name, 'privkey.pem'), 'utf8'), last!.key);
  // A volume mounted elsewhere (a reader's container) still resolves the link.
  const moved = join(base, 'prune', 'mounted-elsewhere');
  renameSync(certsDir, moved);
  assert.equal(readFileSync(join(moved, name, 'cert.pem'), 'utf8'), last!.cert);
});

/** Turns a versioned CERTS_DIR/<name> back into the layout before versions: a real folder with the marker. */
function toOldLayout(certsDir: string, name: string): void {
  const link = join(certsDir, name);
  const target = join(certsDir, readlinkSync(link));
  rmSync(link);
  renameSync(target, link);
  rmSync(join(certsDir, ARCHIVE), { recursive: true });
}

test('the layout before versions (a real folder with the marker) moves to versions on the first start of `manager --once`: same files at the same paths, nothing ordered', async () => {
  const name = 'migrate.example.com';
  const env = envFor('migrate', { DOMAINS: name, LOG_LEVEL: 'info' });
  assert.equal((await passWithOrders({ ...env, LOG_LEVEL: 'silent' })).report.ok, true);
  const live = join(env.CERTS_DIR!, name);
  toOldLayout(env.CERTS_DIR!, name);
  assert.ok(lstatSync(live).isDirectory() && existsSync(join(live, '.certwrangler')));
  const before = contents(live);

  const run = await runCli(['manager', '--once'], env);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /moved to the versioned layout/);
  assert.doesNotMatch(run.stdout, /"action":"order"/);
  assert.ok(lstatSync(live).isSymbolicLink());
  assert.equal(readlinkSync(live), join(ARCHIVE, name, '1'));
  assert.deepEqual(contents(live), before, 'the same files, readable at the same paths');
});

test('a migration interrupted at either step is completed by the next start, and the files stay readable', async () => {
  const name = 'crashmig.example.com';
  const certsDir = join(base, 'crashmig', 'live');
  const files = new FilesOrchestrator({ certsDir });
  const b = await bundle(name);
  await files.push(b, { adopt: false });
  const live = join(certsDir, name);
  const pending = join(certsDir, `.${name}.migrate`);
  const version1 = join(ARCHIVE, name, '1');

  // Crash after the link was made, before the folder moved: the old folder is still served.
  toOldLayout(certsDir, name);
  mkdirSync(join(certsDir, ARCHIVE, name), { recursive: true });
  symlinkSync(version1, pending);
  assert.equal(readFileSync(join(live, 'privkey.pem'), 'utf8'), b.key);
  assert.deepEqual(await files.prepare(), [name]);
  assert.equal(readlinkSync(live), version1);
  assert.ok(!existsSync(pending));

  // Crash after the folder moved, before the link was renamed into place.
  renameSync(live, pending);
  assert.deepEqual(await files.prepare(), []);
  assert.equal(readlinkSync(live), version1);
  assert.equal(readFileSync(join(live, 'privkey.pem'), 'utf8'), b.key);
  assert.ok(keyMatchesCert(readFileSync(join(live, 'privkey.pem'), 'utf8'), readFileSync(join(live, 'cert.pem'), 'utf8')));
});

test('a link whose version was removed by hand is still certwrangler\'s: reported unreadable, and the next push repairs it', async () => {
  const name = 'dangling.example.com';
  const certsDir = join(base, 'dangling', 'live');
  const files = new FilesOrchestrator({ certsDir });
  await files.push(await bundle(name), { adopt: false });
  rmSync(join(certsDir, ARCHIVE, name), { recursive: true });
  const listed = (await files.list([name])).get(name)!;
  assert.deepEqual(listed.state === 'unreadable' && listed.owned, true, JSON.stringify(listed));
  const b = await bundle(name);
  await files.push(b, { adopt: false });
  assert.equal(readFileSync(join(certsDir, name, 'privkey.pem'), 'utf8'), b.key);
});
