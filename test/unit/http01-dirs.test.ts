/**
 * Issue 23: the HTTP-01 solver's folders and clean-up, as a webroot running as another user sees them.
 * Folders the solver creates (up to a webroot that did not exist) are opened to 0755 whatever the umask; a
 * folder it did not create keeps its owner's mode; removing a token that is already gone is not an error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHALLENGE_PATH, WebrootSolver } from '../../src/acme/http01.js';

const mode = (p: string) => statSync(p).mode & 0o777;

async function underUmask<T>(mask: number, f: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await f();
  } finally {
    process.umask(old);
  }
}

test('http-01: a webroot that does not exist yet is created with its missing parents at 0755 under umask 077; the folder above them keeps its mode', async () => {
  const base = mkdtempSync(join(tmpdir(), 'cw-h01-'));
  chmodSync(base, 0o700);
  const webroot = join(base, 'a', 'b', 'www');
  const solver = new WebrootSolver(webroot);
  assert.equal(solver.type, 'http-01');
  await underUmask(0o077, () => solver.present('a.example.com', 'first_Token', 'first.keyauth'));
  for (const dir of [join(base, 'a'), join(base, 'a', 'b'), webroot, join(webroot, '.well-known'), join(webroot, CHALLENGE_PATH)]) assert.equal(mode(dir), 0o755, dir);
  assert.equal(mode(base), 0o700, 'a folder the solver did not create is never widened');
  assert.equal(mode(join(webroot, CHALLENGE_PATH, 'first_Token')), 0o644);
  // A second token: every folder is there now, nothing to create.
  await underUmask(0o077, () => solver.present('a.example.com', 'second_Token', 'second.keyauth'));
  assert.deepEqual(readdirSync(join(webroot, CHALLENGE_PATH)).sort(), ['first_Token', 'second_Token']);
});

test('http-01: an existing webroot is used as it is: a narrower challenge folder is opened to read, a wider one is not narrowed', async () => {
  const webroot = mkdtempSync(join(tmpdir(), 'cw-h01-'));
  chmodSync(webroot, 0o750);
  mkdirSync(join(webroot, '.well-known'), { mode: 0o777 });
  chmodSync(join(webroot, '.well-known'), 0o777);
  mkdirSync(join(webroot, CHALLENGE_PATH), { mode: 0o700 });
  chmodSync(join(webroot, CHALLENGE_PATH), 0o700);
  const solver = new WebrootSolver(webroot);
  await solver.present('a.example.com', 'tok', 'keyauth');
  assert.equal(mode(webroot), 0o750, 'the webroot itself is the operator\'s');
  assert.equal(mode(join(webroot, '.well-known')), 0o777, 'never narrowed');
  assert.equal(mode(join(webroot, CHALLENGE_PATH)), 0o755, 'opened up to read and enter');
});

test('http-01: clean-up of a token already gone (removed by hand, or never written) is not an error; cleanupAll removes what is left', async () => {
  const webroot = mkdtempSync(join(tmpdir(), 'cw-h01-'));
  const solver = new WebrootSolver(webroot);
  await solver.cleanup('a.example.com', 'never_Written');
  await solver.present('a.example.com', 'one', 'k1');
  await solver.present('a.example.com', 'two', 'k2');
  await solver.present('a.example.com', 'three', 'k3');
  rmSync(join(solver.challengeDir, 'one'));
  await solver.cleanup('a.example.com', 'one');
  rmSync(join(solver.challengeDir, 'two'));
  await solver.cleanupAll();
  assert.deepEqual(readdirSync(solver.challengeDir), []);
  assert.ok(existsSync(solver.challengeDir), 'the folder stays: it may be shared with another client');
});
