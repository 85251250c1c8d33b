/**
 * Steady state over STORE=redis (issue 20 item 7): N up-to-date certificates in a real redis-server (Debian's,
 * append-only, fsync every write, as the README asks of a production Redis) and in the Rancher simulator, as
 * bench/steady.ts sets them up for the files store. Per pass: wall time, the Redis commands it sent (INFO
 * commandstats before and after, so the figure is Redis's own count), and the manager's peak RSS. No ACME
 * request may happen (the directory refuses connections).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pLimit from 'p-limit';
import { createSelfSigned } from '../src/certs/placeholder.js';
import { LocalStore } from '../src/certs/store.js';
import { createLogger } from '../src/log.js';
import { ownerDescription } from '../src/orchestrators/rancher/rancher.js';
import { parseCert } from '../src/certs/parse.js';
import { redis as redisEntry } from '../src/stores/redis/entry.js';
import { startRancherSim } from '../test/support/rancher-sim.js';
import { startRedis } from '../test/support/redis-server.js';
import { managerEnv, median } from './lib.js';

export interface RedisSteadyResult {
  certificates: number;
  coldMs: number;
  wallMs: number;
  /** Redis commands a warm pass sends (median), and by command for the last pass. */
  commandsPerPass: number;
  commandsByName: Record<string, number>;
  maxRssMb: number;
  acmeRequests: number;
  runs: number;
}

const DIRECTORY = 'https://127.0.0.1:9/directory';
const LABEL = 'com.danieldent.rancher-lets-encrypt.hosts';

/** N self-signed certificates written into Redis through the store, under a lease as a manager writes. */
async function fixtures(n: number, url: string): Promise<Map<string, { cert: string; key: string }>> {
  const names = Array.from({ length: n }, (_, i) => `s${i}.steady-example.com`);
  const pem = new Map<string, { cert: string; key: string }>();
  const backend = redisEntry.create(redisEntry.fromEnv({ STORE: 'redis', REDIS_URL: url }), { log: createLogger('silent') });
  await backend.init();
  const lock = await backend.lock({ waitMs: 0 });
  const store = new LocalStore(backend);
  await store.init();
  const limit = pLimit(64);
  try {
    // One key for all (createSelfSigned's shared key): fixtures for 10,000 certificates in seconds.
    await Promise.all(
      names.map((name) =>
        limit(async () => {
          const c = await createSelfSigned([name], { sharedKey: true, days: 365 });
          pem.set(name, c);
          await store.write({ name, names: [name], key: c.key, cert: c.cert, chain: '', kind: 'production', directoryUrl: DIRECTORY });
        }),
      ),
    );
  } finally {
    await lock.release();
    await backend.close();
  }
  return pem;
}

interface PassOut {
  wallMs: number[];
  commands: Record<string, number>[];
  maxRssKb: number;
  acmeRequests: number;
  reasons: Record<string, number>;
  ok: boolean;
}

function runChild(env: NodeJS.ProcessEnv): Promise<PassOut> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [resolve('bench/redis-pass.mjs')], { env });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b));
    p.stderr.on('data', (b: Buffer) => (out += b));
    p.on('close', () => {
      try {
        res(JSON.parse(out.trim().split('\n').at(-1) ?? '') as PassOut);
      } catch {
        rej(new Error(`redis steady pass failed:\n${out.slice(-2000)}`));
      }
    });
  });
}

const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

export async function benchRedisSteady(opts: { sizes: number[]; runs: number; base: string }): Promise<RedisSteadyResult[]> {
  const out: RedisSteadyResult[] = [];
  for (const n of opts.sizes) {
    const dir = join(opts.base, `redis-steady-${n}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const server = await startRedis(join(dir, 'redis'));
    const sim = await startRancherSim();
    try {
      const pem = await fixtures(n, server.url);
      for (const [name, c] of pem) sim.addCertificate({ name, cert: c.cert, key: c.key, description: ownerDescription(parseCert(c.cert).fingerprintSha1) });
      const names = [...pem.keys()];
      for (let i = 0; i < names.length; i += 10) sim.addService({ name: `svc${i / 10}`, labels: { [LABEL]: names.slice(i, i + 10).join(';') } });
      const env = { ...managerEnv(sim, dir, DIRECTORY, 'warn'), STORE: 'redis', REDIS_URL: server.url };
      await runChild({ ...env, BENCH_PASSES: '1' });
      const r = await runChild({ ...env, BENCH_PASSES: String(opts.runs + 1) });
      if (!r.ok || r.reasons.UpToDate !== n) throw new Error(`redis steady pass over ${n} certificates was not all up to date: ${JSON.stringify({ ...r, commands: undefined })}`);
      out.push({
        certificates: n,
        coldMs: r.wallMs[0]!,
        wallMs: median(r.wallMs.slice(1)),
        commandsPerPass: median(r.commands.slice(1).map(total)),
        commandsByName: r.commands.at(-1)!,
        maxRssMb: r.maxRssKb / 1024,
        acmeRequests: r.acmeRequests,
        runs: opts.runs,
      });
    } finally {
      await sim.close();
      await server.stop();
    }
  }
  return out;
}
