/**
 * `npm test` on a fresh machine installs everything the tests start, and CI does nothing the README does not
 * say: TEST_TOOLS (scripts/debian-tools.mjs) is the one list. A test that starts a program missing from it, or
 * a CI step that installs a package of its own, fails here instead of on a new user's machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
// @ts-expect-error plain ESM helper shared with the test runner
import { TEST_TOOLS } from '../../scripts/debian-tools.mjs';

const tools = TEST_TOOLS as { command: string; pkg: string }[];

/** Programs of Debian's essential set (ldd: libc-bin), and Node and npm, there on every machine `npm test` can run on. */
const ESSENTIAL = new Set(['sh', 'bash', 'tar', 'umount', 'mount', 'unshare', 'sudo', 'ldd', 'node', 'npm', 'env', 'cat', 'kill']);

const SELF = 'test/unit/test-tools.test.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : /\.(ts|mjs)$/.test(f) && p !== SELF ? [p] : [];
  });
}

/**
 * The programs a file starts by name: `spawn('x'`, `execFile('x'`, `spawnSync('x'`, `execFileSync('x'`, a
 * promisified `run('x', [`, and playwright's `executablePath: '/usr/bin/x'`.
 */
function started(text: string): string[] {
  const names = [
    ...[...text.matchAll(/\b(?:spawn|spawnSync|execFile|execFileSync)\(\s*'([^']+)'/g)].map((m) => m[1]!),
    ...[...text.matchAll(/\brun\(\s*'([^']+)',\s*\[/g)].map((m) => m[1]!),
    ...[...text.matchAll(/executablePath:\s*'([^']+)'/g)].map((m) => m[1]!),
  ];
  return names.map((n) => n.replace(/^.*\//, ''));
}

test('test tools: every program the tests and the demo start is in TEST_TOOLS (or always there)', () => {
  const listed = new Set(tools.map((t) => t.command));
  const missing: string[] = [];
  for (const f of [...sources('test'), 'scripts/demo.ts']) {
    for (const name of started(readFileSync(f, 'utf8'))) {
      if (!listed.has(name) && !ESSENTIAL.has(name)) missing.push(`${name} (started in ${f})`);
    }
  }
  assert.deepEqual(missing, [], 'add these to TEST_TOOLS in scripts/debian-tools.mjs with their Debian package');
  // The scan sees what it must: the browser that once failed on a fresh machine, and the daemons.
  const seen = new Set([...sources('test'), 'scripts/demo.ts'].flatMap((f) => started(readFileSync(f, 'utf8'))));
  for (const n of ['chromium', 'nginx', 'pebble', 'dockerd']) assert.ok(seen.has(n), `the scan finds ${n}`);
});

test('test tools: .ci/run does only what the README says (npm ci, then npm test), installing nothing of its own', () => {
  const steps = readFileSync('.ci/run', 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const commands = steps.filter((l) => !/^(set |cd |export )/.test(l));
  assert.deepEqual(
    commands.map((c) => c.split(/\s+/).slice(0, 2).join(' ')),
    ['npm ci', 'npm test'],
    `.ci/run runs ${JSON.stringify(commands)}`,
  );
  assert.doesNotMatch(steps.join('\n'), /apt-get install|apt install/);
  const readme = readFileSync('README.md', 'utf8');
  assert.ok(readme.includes('TEST_TOOLS'), 'the README says where the list of Debian packages is');
});

test('test tools: every entry names a command and a package', () => {
  for (const t of tools) {
    assert.match(t.command, /^[a-z0-9][a-z0-9.+-]*$/, JSON.stringify(t));
    assert.match(t.pkg, /^[a-z0-9][a-z0-9.+-]*$/, JSON.stringify(t));
  }
});
