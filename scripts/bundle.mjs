// npm run build's second step, after tsc: the CLI and the health check bundled by esbuild into dist/, with
// their dependencies, so a start reads a handful of files instead of about 900 modules (BENCHMARKS.md,
// "Start-up"). dist/cli.js is src/launch.ts, which sets the process up and then imports dist/certwrangler.js
// (src/cli.ts); what only some commands need (webroot, status page, import, revoke, Docker's reload job) is
// split into dist/chunks/ and loaded when that command runs. tsc's per-module output stays beside it for the
// benchmarks that import modules one by one (bench/steady-pass.mjs).
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';

const CHUNKS = 'dist/chunks';
// Hashed names: an earlier build's chunks would otherwise pile up.
rmSync(CHUNKS, { recursive: true, force: true });

await build({
  entryPoints: { cli: 'src/launch.ts', certwrangler: 'src/cli.ts', healthcheck: 'src/healthcheck.ts' },
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  // package.json "engines": Node 20 and later.
  target: 'node20',
  sourcemap: true,
  // Asked for by name at run time, only with LOG_FORMAT=pretty (src/log.ts): resolved from node_modules then.
  external: ['pino-pretty'],
  // CommonJS dependencies call require() for Node's own modules; an ES module has no require of its own.
  banner: { js: "import { createRequire as __certwranglerRequire } from 'node:module'; const require = __certwranglerRequire(import.meta.url);" },
  logLevel: 'warning',
});
chmodSync('dist/cli.js', 0o755);
