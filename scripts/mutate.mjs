// npm run mutate [-- <module>...]: mutation testing (issue 23) with StrykerJS over the modules that guard
// keys, tokens and limits, against the fast unit and integration tests that exercise each (not e2e). Not
// part of npm test or CI: slow (RELIABILITY.md, "Test strength", gives the time of each module's run).
// One module at a time, each with only its own test files: a dry run of every test file costs minutes, and
// Stryker runs a mutant only against the files that reach it anyway. Results are kept per module under
// reports/mutation/ and reused (incremental), so a second run tests only what changed.
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, resolve } from 'node:path';

/**
 * Each module, and the test files that exercise it (unit and integration; fast). Left out for their cost
 * per mutant: webroot-fuzz (3,000 requests) and webroot-user (starts the CLI as another user).
 */
export const MODULES = {
  'src/policy.ts': ['test/unit/policy.test.ts', 'test/unit/policy-boundary.test.ts', 'test/unit/policy-mutants.test.ts'],
  'src/webroot/server.ts': ['test/unit/webroot.test.ts', 'test/unit/webroot-tokens.test.ts', 'test/unit/webroot-mutants.test.ts'],
  'src/acme/http01.ts': ['test/unit/webroot-tokens.test.ts', 'test/unit/http01-dirs.test.ts', 'test/unit/http01-shared.test.ts', 'test/unit/http01-mutants.test.ts'],
  'src/limits/ledger.ts': ['test/unit/ledger-edges.test.ts', 'test/unit/ledger.test.ts', 'test/unit/ledger-mutants.test.ts'],
  'src/certs/atomic.ts': ['test/unit/atomic-sync.test.ts', 'test/unit/atomic-recover.test.ts', 'test/unit/atomic-mutants.test.ts', 'test/unit/store.test.ts', 'test/unit/status-token.test.ts'],
  'src/certs/store.ts': ['test/unit/store-read.test.ts', 'test/unit/store.test.ts', 'test/unit/store-mutants.test.ts'],
  'src/status/server.ts': ['test/unit/status-auth.test.ts', 'test/unit/status-wait.test.ts', 'test/unit/status.test.ts', 'test/unit/status-mutants.test.ts'],
  'src/domains.ts': ['test/unit/domain-names.test.ts', 'test/unit/domains.test.ts', 'test/unit/ownership.test.ts', 'test/unit/domains-mutants.test.ts'],
  // Added by the label-trust issues (15, 16): who owns a name, and the per-service caps.
  'src/ownership.ts': ['test/unit/ownership.test.ts', 'test/unit/ownership-mutants.test.ts'],
  'src/label-policy.ts': ['test/unit/label-caps.test.ts', 'test/unit/ownership.test.ts'],
};

const asked = process.argv.slice(2);
const unknown = asked.filter((m) => !(m in MODULES));
if (unknown.length > 0) {
  console.error(`npm run mutate: ${unknown.join(', ')} is not one of the mutated modules: ${Object.keys(MODULES).join(', ')}`);
  process.exit(2);
}
/**
 * The folders a mutant may reach on its way up from a test's temporary webroot: http01.ts opens up the folders it
 * created (chmod), and a mutant that walks past them chmodded /tmp to 0755 in one run (every later test that runs
 * as another user then failed). Their modes are taken before each module and put back after it, loudly.
 */
function ancestors(...from) {
  const out = new Set(['/']);
  for (let d of from) for (d = resolve(d); d !== dirname(d); d = dirname(d)) out.add(d);
  return [...out];
}
const guarded = ancestors(tmpdir(), '/tmp', process.cwd());
const modesOf = () => new Map(guarded.map((d) => [d, statSync(d).mode & 0o7777]));
function putBack(before, module) {
  for (const [d, mode] of before) {
    const now = statSync(d).mode & 0o7777;
    if (now === mode) continue;
    chmodSync(d, mode);
    console.error(`npm run mutate: a mutant of ${module} changed the mode of ${d} from ${mode.toString(8)} to ${now.toString(8)}; put back`);
  }
}

const scores = [];
for (const module of asked.length > 0 ? asked : Object.keys(MODULES)) {
  const started = Date.now();
  const before = modesOf();
  const r = spawnSync(process.execPath, ['node_modules/@stryker-mutator/core/bin/stryker.js', 'run', 'stryker.config.mjs'], {
    stdio: 'inherit',
    env: { ...process.env, CW_MUTATE_MODULE: module, CW_MUTATE_TESTS: MODULES[module].join(',') },
  });
  putBack(before, module);
  if (r.status !== 0) process.exit(r.status ?? 1);
  const report = JSON.parse(readFileSync(`reports/mutation/${module.replace(/[/.]/g, '_')}${process.env.CW_MUTATE_LINES ? '.lines' : ''}.json`, 'utf8'));
  const mutants = Object.values(report.files).flatMap((f) => f.mutants);
  const count = (...s) => mutants.filter((m) => s.includes(m.status)).length;
  const killed = count('Killed', 'Timeout');
  const valid = killed + count('Survived', 'NoCoverage');
  scores.push({ module, killed, survived: count('Survived'), noCoverage: count('NoCoverage'), score: valid ? Math.round((killed / valid) * 1000) / 10 : 100, minutes: Math.round((Date.now() - started) / 6000) / 10 });
}
console.table(scores);
const low = scores.filter((s) => s.score < 90);
if (low.length > 0) {
  console.error(`below 90% killed: ${low.map((s) => `${s.module} ${s.score}%`).join(', ')}`);
  process.exit(1);
}
