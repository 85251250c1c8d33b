// Stryker's build step in its sandbox (npm run mutate): every TypeScript file of src/ and test/, mutants
// included, compiled beside itself to JavaScript, so each mutant's test run is plain `node <file>.js`
// rather than `node --import tsx`: half the time per run. Imports already name the .js files (NodeNext).
import { chmodSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

// The sandbox is made 0700; webroot-user.test.ts runs the webroot from it as uid 65534, which must read it.
chmodSync('.', 0o755);
const ts = (dir) => readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).map((f) => join(dir, f));
await build({ entryPoints: [...ts('src'), ...ts('test')], outdir: '.', outbase: '.', format: 'esm', platform: 'node', target: 'node20', logLevel: 'warning' });
