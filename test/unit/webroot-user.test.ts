/**
 * The webroot as the image runs it: `certwrangler webroot`, as another user than the manager (uid 65534
 * here when the tests run as root), in development mode. Challenge folders the manager writes under
 * umask 077 must still be readable to it, and a file it cannot read is a plain 500 with no stack or path.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebrootSolver } from '../../src/acme/http01.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../support/ports.js';
import { rawRequest } from '../support/http.js';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
const base = mkdtempSync(join(tmpdir(), 'cw-webroot-user-'));
chmodSync(base, 0o755); // mkdtemp makes it 0700: the other user must be able to enter
const webroot = join(base, 'www');
let port: number;
let webrootProc: ChildProcess;
let output = '';

before(async () => {
  port = await freePort();
  webrootProc = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'webroot'], {
    env: { ...process.env, WEBROOT_DIR: webroot, PORT: String(port), NODE_ENV: 'development', DATA_DIR: join(base, 'data') },
    ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  webrootProc.stdout!.on('data', (b: Buffer) => (output += b));
  webrootProc.stderr!.on('data', (b: Buffer) => (output += b));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await rawRequest(port, '/healthz').then((r) => r.status === 200, () => false);
    if (up) break;
    if (Date.now() > deadline || webrootProc.exitCode !== null) throw new Error(`the webroot did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  const exited = new Promise((r) => webrootProc.once('exit', r));
  webrootProc.kill('SIGTERM');
  await exited;
  rmSync(base, { recursive: true, force: true });
});

test('http-01: under umask 077 the challenge folders are 0755 and the token 0644, and a webroot running as another user serves it', async () => {
  const solver = new WebrootSolver(webroot);
  const old = process.umask(0o077);
  try {
    await solver.present('a.example.com', 'umask_Token-1', 'umask_Token-1.thumbprint');
  } finally {
    process.umask(old);
  }
  for (const dir of [webroot, join(webroot, '.well-known'), solver.challengeDir]) assert.equal(statSync(dir).mode & 0o777, 0o755, dir);
  assert.equal(statSync(join(solver.challengeDir, 'umask_Token-1')).mode & 0o777, 0o644);
  const r = await rawRequest(port, '/.well-known/acme-challenge/umask_Token-1');
  assert.equal(r.status, 200, asRoot ? 'served by uid 65534' : 'served');
  assert.equal(r.body.toString(), 'umask_Token-1.thumbprint');
  await solver.cleanup('a.example.com', 'umask_Token-1');
});

test('webroot: a token file it cannot read is a plain 500, with no stack trace or file path, even with NODE_ENV=development', async () => {
  const dir = join(webroot, '.well-known', 'acme-challenge');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'unreadable_Token'), 'x', { mode: 0o000 });
  chmodSync(join(dir, 'unreadable_Token'), 0o000);
  const r = await rawRequest(port, '/.well-known/acme-challenge/unreadable_Token');
  assert.equal(r.status, 500);
  const body = r.body.toString();
  assert.equal(body, 'internal server error\n');
  assert.ok(!/\bat \S+|EACCES|node_modules|\/src\/|unreadable_Token|<pre>/.test(body), body);
  assert.match(String(r.headers['content-type']), /^text\/plain/);
  // The operator is told, in the webroot's own log.
  const deadline = Date.now() + 5000;
  while (!/EACCES/.test(output) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  assert.match(output, /webroot: EACCES: permission denied/);
});
