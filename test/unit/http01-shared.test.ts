/**
 * Issue 23 (mutation run of src/acme/http01.ts): a challenge folder on a shared volume, owned by another user
 * (the webroot's, or the operator's), that the manager may write to but not chmod. The manager runs as
 * uid 65534 here (the tests run as root, for whom chmod never fails): its chmod fails with EPERM, which is
 * the folder owner's choice, not an error, and the token is still written. 
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHALLENGE_PATH } from '../../src/acme/http01.js';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
const solverUrl = new URL('../../src/acme/http01.js', import.meta.url).href;

/** present() run as uid 65534 in a child, with the loader this test runs under (tsx, or none for compiled tests). */
function presentAsNobody(webroot: string, token: string): { status: number | null; out: string } {
  const code = `import { WebrootSolver } from ${JSON.stringify(solverUrl)};
await new WebrootSolver(${JSON.stringify(webroot)}).present('a.example.com', ${JSON.stringify(token)}, ${JSON.stringify(`${token}.keyauth`)});`;
  const loader = process.execArgv.includes('tsx') || process.execArgv.some((a) => a.includes('tsx')) ? ['--import', 'tsx'] : [];
  const r = spawnSync(process.execPath, [...loader, '--input-type=module', '-e', code], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('http-01: a challenge folder owned by someone else, writable but not ours to chmod, is used as its owner set it', { skip: !asRoot && 'needs root to run the solver as another user' }, () => {
  const webroot = mkdtempSync(join(tmpdir(), 'cw-h01-shared-'));
  chmodSync(webroot, 0o755);
  mkdirSync(join(webroot, '.well-known'), { mode: 0o755 });
  chmodSync(join(webroot, '.well-known'), 0o755);
  const dir = join(webroot, CHALLENGE_PATH);
  mkdirSync(dir);
  // Others may do everything, its group nothing: the solver would open it to 0755, and may not (EPERM).
  chmodSync(dir, 0o707);
  const r = presentAsNobody(webroot, 'shared_Token');
  assert.equal(r.status, 0, r.out);
  assert.equal(readFileSync(join(dir, 'shared_Token'), 'utf8'), 'shared_Token.keyauth');
  assert.equal(statSync(dir).mode & 0o777, 0o707, 'its owner\'s mode is kept');
});

