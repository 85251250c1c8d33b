import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateStatusToken, readStatusToken } from '../../src/status/token.js';

test('status token: generated once into DATA_DIR/status-token at 0600 whatever the umask, then reused; STATUS_TOKEN wins for the CLI', async () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'cw-token-')), 'data');
  const old = process.umask(0o000);
  let first;
  try {
    first = await loadOrCreateStatusToken(dataDir);
  } finally {
    process.umask(old);
  }
  assert.equal(first.created, true);
  assert.equal(statSync(first.path).mode & 0o777, 0o600);
  assert.equal(readFileSync(first.path, 'utf8'), `${first.token}\n`);
  assert.deepEqual(readdirSync(dataDir), ['status-token'], 'no temp file left');

  const again = await loadOrCreateStatusToken(dataDir);
  assert.deepEqual({ token: again.token, created: again.created }, { token: first.token, created: false }, 'a restart keeps the token');
  chmodSync(first.path, 0o644);
  await loadOrCreateStatusToken(dataDir);
  assert.equal(statSync(first.path).mode & 0o777, 0o600, 'a widened mode is narrowed again');

  assert.deepEqual(readStatusToken(dataDir, undefined), { token: first.token, from: first.path });
  assert.deepEqual(readStatusToken(dataDir, 'from-the-environment-0123'), { token: 'from-the-environment-0123', from: 'STATUS_TOKEN' });
  assert.equal(readStatusToken(join(dataDir, 'nowhere'), undefined), undefined);

  writeFileSync(first.path, 'short\n');
  const replaced = await loadOrCreateStatusToken(dataDir);
  assert.ok(replaced.created && replaced.token !== first.token, 'a file that holds no token is replaced');
});
