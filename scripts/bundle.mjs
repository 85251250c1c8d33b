// npm run build's second step, after tsc: the CLI and the health check bundled by esbuild into dist/, with
// their dependencies, so a start reads a handful of files instead of about 900 modules (BENCHMARKS.md,
// "Start-up"). dist/cli.js is src/launch.ts, which sets the process up and then imports dist/certwrangler.js
// (src/cli.ts); what only some commands need (webroot, status page, import, revoke, Docker's reload job) is
// split into dist/chunks/ and loaded when that command runs. The steady bench's manager is bundled the same way
// into dist/bench/pass.js (below). tsc's per-module output stays beside it for the benchmarks that import modules
// one by one (bench/redis-pass.mjs, and bench/steady-pass.mjs with BENCH_MODULES=1).
import { build } from 'esbuild';
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

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
  // axios fills its fetch adapter's cache at load, which reads globalThis.Request and so makes Node load undici
  // (about 20 ms); certwrangler uses the http adapter only. The cache is filled when the fetch adapter is first
  // asked for instead.
  // Likewise globalThis.FormData, read at load: it is read now only for an object that could be a FormData (an
  // object with an `append` method and a prototype of its own), which no ACME or Rancher request body is.
  'axios/dist/node/axios.cjs': [
    ['\n};\ngetFetch();\n', '\n};\n'],
    // node:http2 (four of Node's own modules) only for a request that asks for HTTP/2, which none does.
    ["var http2 = require('http2');", "var http2 = new Proxy({}, { get: (_, k) => require('http2')[k] });"],
    ["const FormDataCtor = typeof G.FormData !== 'undefined' ? G.FormData : undefined;", "const formDataCtor = () => (typeof G.FormData !== 'undefined' ? G.FormData : undefined);"],
    ['  if (FormDataCtor && thing instanceof FormDataCtor) return true;\n', ''],
    ['  if (!isFunction$1(thing.append)) return false;\n', '  if (!isFunction$1(thing.append)) return false;\n  const FormDataCtor = formDataCtor();\n  if (FormDataCtor && thing instanceof FormDataCtor) return true;\n'],
  ],
};

// Which LAZY_EDITS files were edited: a package that moved its entry file would otherwise be bundled unedited
// without a word (its text checks run only when the file is loaded).
const applied = new Set();
const lazyRequires = {
  name: 'lazy-requires',
  setup(b) {
    b.onLoad({ filter: /(acme-client[\\/]src[\\/](crypto[\\/])?index\.js|axios[\\/]dist[\\/]node[\\/]axios\.cjs)$/ }, (args) => {
      const key = Object.keys(LAZY_EDITS).find((k) => args.path.replaceAll('\\', '/').endsWith(k));
      if (!key) return undefined;
      applied.add(key);
      let text = readFileSync(args.path, 'utf8');
      for (const [from, to] of LAZY_EDITS[key]) {
        if (!text.includes(from)) throw new Error(`scripts/bundle.mjs: ${key} no longer contains ${JSON.stringify(from)}`);
        text = text.replace(from, to);
      }
      return { contents: text, loader: 'js' };
    });
  },
};

/**
 * Packages that most starts never use, built apart into dist/chunks/lazy-<group>.cjs and stood in for, in the
 * program, by a module whose properties load that file on first use: they are neither compiled nor run at a start
 * that does not need them. ioredis: STORE=redis, REDIS_URL or the NethServer output; cron-parser (with luxon):
 * SCHEDULE; @peculiar/x509 and asn1js: acme-client's helpers for PREFERRED_CHAIN and tls-alpn, never an ordinary
 * order (see LAZY_EDITS); node-forge (590 KB): a pass that makes a placeholder. With one axios (below), a start
 * reads 1.1 MB of program instead of 3.5 MB (BENCHMARKS.md).
 * A group's packages share one file, so a package and its dependency are one copy of each.
 */
const LAZY_GROUPS = { ioredis: ['ioredis'], cron: ['cron-parser'], x509: ['@peculiar/x509', 'asn1js'], forge: ['node-forge'], mime: ['mime-types'] };
/**
 * A group whose packages are the dependency of one package only (its own copy under its node_modules): mime-types
 * with its 200 KB mime-db, which form-data (through axios) reads only to name a file part's type. Other importers
 * (express's own mime-types) keep theirs.
 */
const LAZY_FOR = { mime: 'form-data' };
const LAZY_PACKAGE_GROUP = Object.fromEntries(Object.entries(LAZY_GROUPS).flatMap(([group, pkgs]) => pkgs.map((p) => [p, group])));
const requireHere = createRequire(import.meta.url);

/**
 * The stand-in for one package: a CommonJS module whose every property is read from the real one, loaded then.
 * esbuild's interop copies an imported module's own keys into getters when it is imported, so the keys are listed
 * here (read from the package now, at build time) and `__esModule` is answered without loading it.
 */
/** `require` as the group's packages are resolved: from its one importer's folder (LAZY_FOR), else from here. */
const requireFor = (group) => (LAZY_FOR[group] ? createRequire(requireHere.resolve(`${LAZY_FOR[group]}/package.json`)) : requireHere);

function lazyStandIn(pkg, group) {
  const real = requireFor(group)(pkg);
  const keys = Object.keys(real);
  return `const keys = ${JSON.stringify(keys)};
let real;
const load = () => (real ??= require(require('node:url').fileURLToPath(new URL(${JSON.stringify(`lazy-${group}.cjs`)}, __certwranglerChunks)))[${JSON.stringify(pkg)}]);
module.exports = new Proxy({}, {
  get: (_, k) => (k === '__esModule' ? ${JSON.stringify(real.__esModule === true)} : load()[k]),
  has: (_, k) => k in load(),
  ownKeys: () => keys,
  getOwnPropertyDescriptor: (_, k) => (keys.includes(k) ? { configurable: true, enumerable: true, writable: true, value: undefined } : undefined),
});
`;
}

const lazyPackages = {
  name: 'lazy-packages',
  setup(b) {
    const filter = new RegExp(`^(${Object.keys(LAZY_PACKAGE_GROUP).map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})$`);
    b.onResolve({ filter }, (args) => {
      const only = LAZY_FOR[LAZY_PACKAGE_GROUP[args.path]];
      if (only && !args.importer.replaceAll('\\', '/').includes(`/node_modules/${only}/`)) return undefined;
      return { path: args.path, namespace: 'lazy-package' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-package' }, (args) => ({ contents: lazyStandIn(args.path, LAZY_PACKAGE_GROUP[args.path]), loader: 'js', resolveDir: process.cwd() }));
  },
};

/**
 * One axios: acme-client require()s its CommonJS build and certwrangler's modules import its ES build, which put
 * two copies (400 KB, both run at start) in the program. Imports take the CommonJS build too; its exports are the
 * same (the default instance, with AxiosError, isAxiosError, … on it).
 */
const oneAxios = {
  name: 'one-axios',
  setup(b) {
    b.onResolve({ filter: /^axios$/ }, (args) => (args.kind === 'require-call' || args.pluginData === 'one-axios' ? undefined : b.resolve('axios', { kind: 'require-call', resolveDir: args.resolveDir, importer: args.importer, pluginData: 'one-axios' })));
  },
};

// `--outdir <dir>`: the bundle elsewhere (test/e2e/bundle.test.ts builds one of its own); dist/ otherwise.
const at = process.argv.indexOf('--outdir');
const OUT = at > 0 ? process.argv[at + 1] : 'dist';
const CHUNKS = `${OUT}/chunks`;
// Hashed names: an earlier build's chunks would otherwise pile up.
rmSync(CHUNKS, { recursive: true, force: true });
rmSync(`${OUT}/bench`, { recursive: true, force: true });

// The lazy groups, one CommonJS file each: { '<package>': its exports, … }.
for (const [group, pkgs] of Object.entries(LAZY_GROUPS)) {
  await build({
    stdin: {
      contents: `module.exports = { ${pkgs.map((p) => `${JSON.stringify(p)}: require(${JSON.stringify(p)})`).join(', ')} };`,
      resolveDir: LAZY_FOR[group] ? dirname(requireHere.resolve(`${LAZY_FOR[group]}/package.json`)) : process.cwd(),
      loader: 'js',
    },
    outfile: `${CHUNKS}/lazy-${group}.cjs`,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    plugins: [lazyRequires],
    logLevel: 'warning',
  });
}

/**
 * The ES-module bundles (the CLI's, and the steady bench's below): one set of options, with `chunks` the way from a
 * file of that bundle's root to dist/chunks/, where the lazy groups are.
 */
const esm = (chunks) => ({
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
  // __certwranglerChunks: dist/chunks/, where the lazy groups are, from whichever file this code landed in.
  banner: {
    js: `import { createRequire as __certwranglerRequire } from 'node:module'; const require = __certwranglerRequire(import.meta.url); const __certwranglerChunks = new URL(/\\/chunks\\/[^/]*$/.test(import.meta.url) ? '${chunks.fromChunk}' : '${chunks.fromRoot}', import.meta.url);`,
  },
  plugins: [lazyRequires, lazyPackages, oneAxios],
  logLevel: 'warning',
});

await build({
  entryPoints: { cli: 'src/launch.ts', certwrangler: 'src/cli.ts', healthcheck: 'src/healthcheck.ts' },
  outdir: OUT,
  ...esm({ fromChunk: './', fromRoot: './chunks/' }),
});
/**
 * The steady-state bench's manager (bench/steady-pass.mjs) from the same bundle, so that its RSS and CPU are those
 * of the program the image runs, not of tsc's one file per module (which loads every adapter: about 37 MB more at
 * start). What it calls is exported from one entry; its own split chunks go to dist/bench/chunks/ (the image copies
 * dist/chunks/ only), and the lazy groups are read from dist/chunks/ as the CLI reads them.
 */
const BENCH_ENTRY = [
  "export { loadConfig } from './src/config.ts';",
  "export { createLogger } from './src/log.ts';",
  "export { assemble, openStore } from './src/assemble.ts';",
  "export { runPass } from './src/reconciler.ts';",
  "export { countAcmeRequests } from './src/acme/transport.ts';",
  "export { tuneHeap } from './src/heap.ts';",
].join('\n');
await build({
  stdin: { contents: BENCH_ENTRY, resolveDir: process.cwd(), loader: 'ts', sourcefile: 'bench-pass.ts' },
  outdir: `${OUT}/bench`,
  entryNames: 'pass',
  ...esm({ fromChunk: '../../chunks/', fromRoot: '../chunks/' }),
});
const missed = Object.keys(LAZY_EDITS).filter((k) => !applied.has(k));
if (missed.length > 0) throw new Error(`scripts/bundle.mjs: never loaded, so not edited: ${missed.join(', ')} (did the package move its entry file?)`);
chmodSync(`${OUT}/cli.js`, 0o755);
