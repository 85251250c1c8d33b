/**
 * Steady state at scale: N wanted certificates (from labels on N/10 services) that are all up to date,
 * in the local store and in the Rancher simulator. One pass should cost one certificate list (its pages)
 * plus one service list, and no ACME request at all.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pLimit from 'p-limit';
import { createSelfSigned } from '../src/certs/placeholder.js';
import { LocalStore } from '../src/certs/store.js';
import { ownerDescription } from '../src/orchestrators/rancher/rancher.js';
import { parseCert } from '../src/certs/parse.js';
import { startRancherSim, type RancherSim } from '../test/support/rancher-sim.js';
import { managerEnv, median } from './lib.js';

export interface SteadyResult {
  certificates: number;
  /** The first pass of a fresh process: every file read and every PEM parsed. */
  coldMs: number;
  /** Later passes of the same process, as a running manager makes them. */
  wallMs: number;
  maxRssMb: number;
  orchestratorRequests: number;
  certificatePages: number;
  acmeRequests: number;
  runs: number;
}

// Nothing may be ordered: a directory URL that refuses connections makes any ACME request fail loudly.
const DIRECTORY = 'https://127.0.0.1:9/directory';
const LABEL = 'com.danieldent.rancher-lets-encrypt.hosts';

async function fixtures(n: number, dir: string): Promise<Map<string, { cert: string; key: string }>> {
  const names = Array.from({ length: n }, (_, i) => `s${i}.steady-example.com`);
  const pem = new Map<string, { cert: string; key: string }>();
  const store = new LocalStore(join(dir, 'data'));
  await store.init();
  const limit = pLimit(16);
  // One key for all (createSelfSigned's shared key): fixtures for 10,000 certificates in seconds, not hours.
  await Promise.all(
    names.map((name) =>
      limit(async () => {
        const c = await createSelfSigned([name], { sharedKey: true, days: 365 });
        pem.set(name, c);
        await store.write({ name, names: [name], key: c.key, cert: c.cert, chain: '', kind: 'production', directoryUrl: DIRECTORY });
      }),
    ),
  );
  return pem;
}

export interface ChildResult {
  wallMs: number[];
  maxRssKb: number;
  /** Heap in use after the last pass and a full GC (only with --expose-gc). */
  heapAfterMb?: number;
  acmeRequests: number;
  reasons: Record<string, number>;
  ok: boolean;
}

/** One manager process making BENCH_PASSES passes; `nodeArgs` (--cpu-prof, --heap-prof) go to its node. */
export function runChild(env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<ChildResult> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [...nodeArgs, resolve('bench/steady-pass.mjs')], { env });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b));
    p.stderr.on('data', (b: Buffer) => (out += b));
    p.on('close', () => {
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        res(JSON.parse(line));
      } catch {
        rej(new Error(`steady pass failed:\n${out.slice(-2000)}`));
      }
    });
  });
}

/** N certificates in a fresh store under `dir` and in a started simulator, with N/10 services asking for them. */
export async function steadySetup(n: number, dir: string): Promise<{ sim: RancherSim; env: NodeJS.ProcessEnv }> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const pem = await fixtures(n, dir);
  const sim: RancherSim = await startRancherSim();
  for (const [name, c] of pem) sim.addCertificate({ name, cert: c.cert, key: c.key, description: ownerDescription(parseCert(c.cert).fingerprintSha1) });
  const names = [...pem.keys()];
  for (let i = 0; i < names.length; i += 10) sim.addService({ name: `svc${i / 10}`, labels: { [LABEL]: names.slice(i, i + 10).join(';') } });
  return { sim, env: managerEnv(sim, dir, DIRECTORY, 'warn') };
}

export async function benchSteady(opts: { sizes: number[]; runs: number; base: string }): Promise<SteadyResult[]> {
  const out: SteadyResult[] = [];
  for (const n of opts.sizes) {
    const { sim, env } = await steadySetup(n, join(opts.base, `steady-${n}`));
    try {
      // One warm-up process fills the simulator's caches; then one process making 1 cold + `runs` warm passes.
      await runChild({ ...env, BENCH_PASSES: '1' });
      sim.clearLog();
      const r = await runChild({ ...env, BENCH_PASSES: String(opts.runs + 1) });
      if (!r.ok || r.reasons.UpToDate !== n) throw new Error(`steady pass over ${n} certificates was not all up to date: ${JSON.stringify(r)}`);
      const passes = opts.runs + 1;
      const pages = sim.log.filter((x) => x.method === 'GET' && /\/certificates$/.test(x.path)).length / passes;
      out.push({
        certificates: n,
        coldMs: r.wallMs[0]!,
        wallMs: median(r.wallMs.slice(1)),
        maxRssMb: r.maxRssKb / 1024,
        orchestratorRequests: sim.log.length / passes,
        certificatePages: pages,
        acmeRequests: r.acmeRequests,
        runs: opts.runs,
      });
    } finally {
      await sim.close();
    }
  }
  return out;
}

