/**
 * `npm run demo` as a new user meets it: beside another certwrangler that holds the default status port, it
 * still issues on ports of its own; and when one of its children dies it exits with that error instead of
 * hanging until its two-minute deadline.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The status endpoint's default (STATUS_ADDR), which another certwrangler on the machine may hold. */
const DEFAULT_STATUS_PORT = 9180;
/** Far above a demo's run here (a few seconds) and far below its own 2-minute deadline: a hang fails. */
const DEMO_LIMIT_MS = 60_000;

let dir: string;
let held: Server | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cw-demo-'));
  // Hold the default port, as another certwrangler would. If something already holds it, it is held anyway.
  held = await new Promise<Server | undefined>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(DEFAULT_STATUS_PORT, '127.0.0.1', () => resolve(s));
  });
});

after(() => {
  held?.close();
  rmSync(dir, { recursive: true, force: true });
});

function demo(env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', '--exit'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (b: Buffer) => (output += b));
    p.stderr.on('data', (b: Buffer) => (output += b));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      output += `\n[test: the demo was still running after ${DEMO_LIMIT_MS} ms and was killed]`;
    }, DEMO_LIMIT_MS);
    p.on('exit', (code) => (clearTimeout(t), resolve({ code, output })));
  });
}

test('demo: with the default status port taken, it issues on free ports of its own and exits 0', async () => {
  const out = join(dir, 'ok');
  const r = await demo({ DEMO_DIR: out });
  assert.equal(r.code, 0, r.output);
  assert.doesNotMatch(r.output, /EADDRINUSE/);
  assert.match(r.output, /status page on http:\/\/127\.0\.0\.1:(\d+)\//);
  assert.notEqual(Number(/status page on http:\/\/127\.0\.0\.1:(\d+)\//.exec(r.output)![1]), DEFAULT_STATUS_PORT);
  assert.ok(existsSync(join(out, 'live', 'demo.example.com', 'cert.pem')), r.output);
});

test('demo: a child that dies ends the demo at once with its error, not a hang', async () => {
  // Both children refuse this at start (exit 2); the first to go stops the demo.
  const r = await demo({ DEMO_DIR: join(dir, 'dies'), SCHEDULE: 'not a schedule' });
  assert.equal(r.code, 1, r.output);
  assert.match(r.output, /SCHEDULE/, 'the manager\'s own error is shown');
  assert.match(r.output, /demo: certwrangler (manager|webroot) exited \(code 2\)/);
  assert.doesNotMatch(r.output, /was killed/);
});
