// npm run build's second step, after tsc: the CLI and the health check bundled by esbuild into dist/, with
// their dependencies, so a start reads a handful of files instead of about 900 modules (BENCHMARKS.md,
// "Start-up"). dist/cli.js is src/launch.ts, which sets the process up and then imports dist/certwrangler.js
// (src/cli.ts); what only some commands need (webroot, status page, import, revoke, Docker's reload job) is
// split into dist/chunks/ and loaded when that command runs. tsc's per-module output stays beside it for the
// benchmarks that import modules one by one (bench/steady-pass.mjs).
import { build } from 'esbuild';
import { chmodSync, readFileSync, rmSync } from 'node:fs';

/**
 * acme-client loads @peculiar/x509 with asn1js and its schemas (about 0.15 s of a start), and node-forge, when
 * its index is required, for helpers certwrangler calls rarely or never: its CSR is built by src/acme/csr.ts,
 * and an order's finalize does not go through them. These edits make those requires happen on first use, so
 * an issuance never loads them; what does use them (a preferred chain's issuer, `acme.forge`) still gets them.
 * Each edit must find its text: an acme-client that changed them fails the build rather than ship unedited.
 */
const LAZY_EDITS = {
  'acme-client/src/crypto/index.js': [
    [
      "const asn1js = require('asn1js');\nconst x509 = require('@peculiar/x509');",
      "const __lazy = (load) => { let m; return new Proxy({}, { get: (_, k) => (m ??= load())[k] }); };\n" +
        "const asn1js = __lazy(() => require('asn1js'));\n" +
        "const x509 = __lazy(() => { const m = require('@peculiar/x509'); m.cryptoProvider.set(crypto.webcrypto); return m; });",
    ],
    ['\nx509.cryptoProvider.set(crypto.webcrypto);\n', '\n'],
  ],
  'acme-client/src/index.js': [["exports.forge = require('./crypto/forge');", "Object.defineProperty(exports, 'forge', { enumerable: true, get: () => require('./crypto/forge') });"]],
};

const lazyRequires = {
  name: 'lazy-requires',
  setup(b) {
    b.onLoad({ filter: /acme-client[\\/]src[\\/](crypto[\\/])?index\.js$/ }, (args) => {
      const key = Object.keys(LAZY_EDITS).find((k) => args.path.replaceAll('\\', '/').endsWith(k));
      if (!key) return undefined;
      let text = readFileSync(args.path, 'utf8');
      for (const [from, to] of LAZY_EDITS[key]) {
        if (!text.includes(from)) throw new Error(`scripts/bundle.mjs: ${key} no longer contains ${JSON.stringify(from)}`);
        text = text.replace(from, to);
      }
      return { contents: text, loader: 'js' };
    });
  },
};

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
  plugins: [lazyRequires],
  logLevel: 'warning',
});
chmodSync('dist/cli.js', 0o755);
