// StrykerJS settings for `npm run mutate` (scripts/mutate.mjs runs one module at a time with these; see there).
// The tap runner runs each test file as `node <file>` (node:test prints TAP when piped) and
// records which files reach which mutant, so a mutant is tested only by the files that execute it.
const module = process.env.CW_MUTATE_MODULE;
const lines = process.env.CW_MUTATE_LINES;
const report = `reports/mutation/${module?.replace(/[/.]/g, '_')}${lines ? '.lines' : ''}`;
// The sandbox's build step compiles every .ts beside itself (scripts/mutate-build.mjs): the .js files run.
const testFiles = (process.env.CW_MUTATE_TESTS ?? '').split(',').filter(Boolean).map((f) => f.replace(/\.ts$/, '.js'));
if (!module || testFiles.length === 0) throw new Error('run `npm run mutate` (scripts/mutate.mjs), which names the module and its test files');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  tap: { testFiles, nodeArgs: ['-r', '{{hookFile}}', '{{testFile}}'], forceBail: true },
  coverageAnalysis: 'perTest',
  // CW_MUTATE_LINES ("48-52,60-70"): only the mutants on these lines, reported apart (`.lines.json`), e.g. to
  // test again only the lines of the last run's survivors after adding tests; killed mutants stay killed.
  mutate: lines ? lines.split(',').map((r) => `${module}:${r}`) : [module],
  plugins: ['@stryker-mutator/tap-runner'],
  buildCommand: 'node scripts/mutate-build.mjs',
  // Two cores here; more runners only queue for them. CW_MUTATE_CONCURRENCY overrides.
  concurrency: Number(process.env.CW_MUTATE_CONCURRENCY ?? 2),
  // Test files start servers and child processes: a mutant that hangs one ends as a timeout (killed). On a
  // loaded machine a test file can take several times its dry-run time; a short timeout then counts slow
  // runs as killed. CW_MUTATE_TIMEOUT_MS overrides.
  timeoutMS: Number(process.env.CW_MUTATE_TIMEOUT_MS ?? 60_000),
  timeoutFactor: 2,
  // Only mutants or tests that changed since the last run of this module are run again.
  incremental: !lines,
  incrementalFile: `${report}.incremental.json`,
  reporters: ['clear-text', 'progress-append-only', 'json'],
  jsonReporter: { fileName: `${report}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  ignorePatterns: ['dist', 'bench', 'reports', 'test-artifacts', 'scratch', 'demo-data', 'data', '*.log'],
  thresholds: { high: 90, low: 90, break: null },
  cleanTempDir: 'always',
};
