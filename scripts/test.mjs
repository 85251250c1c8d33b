// npm test: every test, unit and end-to-end (real Pebble, real nginx). The Debian tools are installed
// first when possible; a missing tool fails the run rather than skipping its tests silently.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDebianTools, TEST_TOOLS } from './debian-tools.mjs';

if (!ensureDebianTools(TEST_TOOLS)) process.exit(1);

const only = process.argv.slice(2);
// Type errors in tests or helpers would otherwise only show as odd runtime failures (tsx strips types).
if (only.length === 0) {
  const tsc = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.test.json'], { stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}
const files = ['test/unit', 'test/integration', 'test/e2e']
  .flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.test.ts')).map((f) => join(d, f)))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
// Two files at a time: most of a file's time is spent waiting on Pebble, nginx, dockerd or a child CLI, and
// each file picks its own free ports and temp folders. TEST_CONCURRENCY=1 runs them one by one.
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
