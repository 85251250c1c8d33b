// npm test: every test, unit and end-to-end (real Pebble, real nginx). The Debian tools are installed
// first when possible; a missing tool fails the run rather than skipping its tests silently.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDebianTools, TEST_TOOLS } from './debian-tools.mjs';

if (!ensureDebianTools(TEST_TOOLS)) process.exit(1);

const only = process.argv.slice(2);
const files = ['test/unit', 'test/e2e']
  .flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.test.ts')).map((f) => join(d, f)))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
