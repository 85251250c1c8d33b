/**
 * The installed program is the esbuild bundle (scripts/bundle.mjs), not the sources the other tests run. Some of
 * its packages are built apart (dist/chunks/lazy-*.cjs) and loaded on first use: a start that does not need them
 * must not load them, and each path that does must still work from the bundle alone. The bundle is built into a
 * temp folder with no node_modules beside it, and run as `node dist/cli.js`; a preload reports which lazy files
 * the process loaded.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { acmeLab, pebbleEnv, type AcmeLab } from '../support/harness.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { splitPemChain } from '../../src/certs/parse.js';

const base = mkdtempSync(join(tmpdir(), 'cw-bundle-'));
const cli = join(base, 'dist', 'cli.js');
const seen = join(base, 'seen.cjs');
let lab: AcmeLab;
let redis: RedisServer | undefined;

before(() => {
  execFileSync(process.execPath, ['scripts/bundle.mjs', '--outdir', join(base, 'dist')], { stdio: 'inherit' });
  copyFileSync('package.json', join(base, 'package.json')); // --version reads it beside dist/
  writeFileSync(seen, "process.on('exit', () => process.stderr.write(`\\nLAZY ${JSON.stringify(Object.keys(require.cache).map((k) => /lazy-(\\w+)\\.cjs$/.exec(k)?.[1]).filter(Boolean).sort())}\\n`));\n");
  lab = acmeLab(join(base, 'lab'));
});

after(async () => {
  await lab.stop();
  await redis?.stop();
  rmSync(base, { recursive: true, force: true });
});

async function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; lazy: string[] }> {
  const proc = spawn(process.execPath, ['--require', seen, cli, ...args], { env: { PATH: process.env.PATH ?? '', ORCHESTRATOR: 'files', LOG_LEVEL: 'warn', ...env } });
  let out = '';
  proc.stdout.on('data', (b: Buffer) => (out += b));
  proc.stderr.on('data', (b: Buffer) => (out += b));
  const code = await new Promise<number | null>((resolve) => proc.on('close', resolve));
  const m = /LAZY (\[.*\])/.exec(out);
  assert.ok(m, `the preload reported: ${out.slice(-2000)}`);
  return { code, out, lazy: JSON.parse(m[1]!) as string[] };
}

const dirs = (name: string) => ({ DATA_DIR: join(base, name, 'data'), CERTS_DIR: join(base, name, 'live'), WEBROOT_DIR: lab.webroot });

test('bundle: a start with nothing to do loads none of the lazy packages', async () => {
  const r = await run(['manager', '--once'], { ...dirs('idle'), DOMAINS: '' });
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.lazy, []);
  assert.match((await run(['--version'], {})).out, /^\d+\.\d+\.\d+/);
});

test('bundle: SCHEDULE is checked with cron-parser from its lazy file', async () => {
  const bad = await run(['manager', '--once'], { ...dirs('cron'), DOMAINS: '', SCHEDULE: 'every full moon' });
  assert.equal(bad.code, 2, bad.out);
  assert.match(bad.out, /SCHEDULE="every full moon" is not valid/);
  assert.deepEqual(bad.lazy, ['cron']);
  const good = await run(['manager', '--once'], { ...dirs('cron'), DOMAINS: '', SCHEDULE: '17 3,15 * * *' });
  assert.equal(good.code, 0, good.out);
});

test('bundle: an RSA order with a placeholder and PREFERRED_CHAIN issues, loading node-forge and @peculiar/x509 only', async () => {
  const ca = await lab.pebble('chains', { alternateRoots: 2 });
  const wanted = /CN=([^\n,]+)/.exec(new X509Certificate(await ca.rootOf(2)).subject)![1]!;
  const env = { ...dirs('order'), ...pebbleEnv(ca, 'production'), KEY_TYPE: 'rsa-2048', DOMAINS: 'a.bundle.example.com,b.bundle.example.com', PREFERRED_CHAIN: wanted };
  const r = await run(['manager', '--once'], env);
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.lazy, ['forge', 'x509']);
  const fullchain = readFileSync(join(env.CERTS_DIR, 'a.bundle.example.com', 'fullchain.pem'), 'utf8');
  const [leaf, ...rest] = splitPemChain(fullchain).map((p) => new X509Certificate(p));
  assert.equal(leaf!.subjectAltName, 'DNS:a.bundle.example.com, DNS:b.bundle.example.com');
  assert.match(rest.at(-1)!.issuer, new RegExp(`CN=${wanted}`));
});

test('bundle: STORE=redis runs on ioredis from its lazy file', async () => {
  redis = await startRedis(join(base, 'redis'));
  const r = await run(['manager', '--once'], { ...dirs('redis'), DOMAINS: '', STORE: 'redis', REDIS_URL: redis.url, STORE_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64') });
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.lazy, ['ioredis']);
});
