/**
 * Steady state at scale: N wanted certificates (from labels on N/10 services) that are all up to date,
 * in the local store and in the Rancher simulator. One pass should cost one certificate list (its pages)
 * plus one service list, and no ACME request at all.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadavg } from 'node:os';
import { RancherApi } from '../src/orchestrators/rancher/api.js';
import { X509Certificate } from 'node:crypto';
import { ownerDescription } from '../src/orchestrators/rancher/rancher.js';
import { fixtureStores, FIXTURE_DIRECTORY, steadyCertificates, type BenchStore } from './steady-fixtures.js';
import { startRancherSim, type RancherSim } from '../test/support/rancher-sim.js';
import { managerEnv, median, removeTree, removeTreeLater } from './lib.js';

export interface SteadyResult {
  certificates: number;
  /** The first pass of a fresh process: every file read and every PEM parsed. */
  coldMs: number;
  /** Later passes of the same process, as a running manager makes them. */
  wallMs: number;
  /** CPU (user + system) of the manager's process in the first pass and (median) in a warm one. */
  coldCpuMs: number;
  cpuMs: number;
  /** Peak RSS of the whole process: the first pass's, as a rule. */
  maxRssMb: number;
  /** RSS after the warm passes (what a running manager holds between passes, garbage not yet returned included). */
  rssAfterWarmMb: number;
  orchestratorRequests: number;
  certificatePages: number;
  acmeRequests: number;
  runs: number;
  /**
   * The simulator alone: every certificate page read by the manager's own client from this process, no pass.
   * The simulator runs in the bench's process, so its serving time is inside the pass time too.
   */
  simListMs: number;
  store: BenchStore;
  /** uptime's 1-minute load average when the measured process started and ended (the machine is shared). */
  load: [number, number];
  /** Writing the fixtures (certificates cached by size), the store and the simulator's certificates. */
  setupMs: number;
  /** The row itself after the setup: the simulator's own listings, then the manager's 1 + `runs` passes. */
  rowMs: number;
  /** Removing the size's store afterwards. */
  cleanupMs: number;
}

/** How long the simulator takes to serve the whole certificate list to the manager's client (RancherApi.pages). */
async function timeSimListing(sim: RancherSim, runs: number): Promise<number> {
  const api = new RancherApi({ url: sim.url, accessKey: sim.accessKey, secretKey: sim.secretKey, timeoutMs: 120_000 });
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    for await (const page of api.pages('certificates?limit=1000&removed_null=1')) void page;
    times.push(performance.now() - t);
  }
  return median(times);
}

const LABEL = 'com.danieldent.rancher-lets-encrypt.hosts';

export interface ChildResult {
  wallMs: number[];
  /** CPU (user + system) of each pass. */
  cpuMs: number[];
  maxRssKb: number;
  /** RSS after the manager's parts are built, before its first pass. */
  startRssMb: number;
  /** Heap in use after the last pass and a full GC (only with --expose-gc). */
  heapAfterMb?: number;
  rssAfterMb: number;
  acmeRequests: number;
  reasons: Record<string, number>;
  ok: boolean;
}

/**
 * The NODE_OPTIONS the image gives node (its Dockerfile's ENV, src/heap.ts), so that the bench's manager has the
 * heap the image's has; undefined when the Dockerfile sets none (a build from before).
 */
export function imageNodeOptions(dockerfile: string): string | undefined {
  const m = /\bNODE_OPTIONS=(\S+)/.exec(readFileSync(dockerfile, 'utf8'));
  return m?.[1];
}

/** One manager process making BENCH_PASSES passes; `nodeArgs` (--cpu-prof, --heap-prof) go to its node. */
export function runChild(env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<ChildResult> {
  return new Promise((res, rej) => {
    // BENCH_PASS_SCRIPT: another build's steady-pass.mjs (its ../dist), to measure before and after in one run.
    // Read from `env` first: steady-compare passes it there, and reading only this process's environment ran
    // this tree's build as "before" too (every before/after pair it printed until issue 22's second round).
    const script = resolve(env.BENCH_PASS_SCRIPT ?? process.env.BENCH_PASS_SCRIPT ?? 'bench/steady-pass.mjs');
    const nodeOptions = imageNodeOptions(join(dirname(script), '../Dockerfile'));
    const p = spawn(process.execPath, [...nodeArgs, script], { env: { ...env, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) } });
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
export async function steadySetup(n: number, dir: string, store: BenchStore = 'files'): Promise<{ sim: RancherSim; env: NodeJS.ProcessEnv; setupMs: number }> {
  const started = performance.now();
  removeTree(dir);
  mkdirSync(dir, { recursive: true });
  const f = await steadyCertificates(n);
  const storeEnv = await fixtureStores[store](join(dir, 'data'), f);
  const sim: RancherSim = await startRancherSim();
  f.certs.forEach((cert, i) => sim.addCertificate({ name: f.names[i]!, cert, key: f.key, description: ownerDescription(fingerprintSha1(cert)) }));
  for (let i = 0; i < n; i += 10) sim.addService({ name: `svc${i / 10}`, labels: { [LABEL]: f.names.slice(i, i + 10).join(';') } });
  return { sim, env: { ...managerEnv(sim, dir, FIXTURE_DIRECTORY, 'warn'), ...storeEnv }, setupMs: performance.now() - started };
}

/** Rancher's certFingerprint of a PEM, without keeping a parse of it (the fixtures are 100,000). */
function fingerprintSha1(pem: string): string {
  return new X509Certificate(pem).fingerprint.toLowerCase();
}

export async function benchSteady(opts: { sizes: number[]; runs: number; base: string; store?: BenchStore }): Promise<SteadyResult[]> {
  const out: SteadyResult[] = [];
  for (const n of opts.sizes) {
    const dir = join(opts.base, `steady-${n}`);
    const { sim, env, setupMs } = await steadySetup(n, dir, opts.store);
    try {
      // The simulator's own first listing (it computes each PEM's fields once, as Cattle does on write) is not
      // the manager's: reading the list once here fills it, and times the simulator apart. Then one process
      // makes 1 cold + `runs` warm passes.
      const started = performance.now();
      await timeSimListing(sim, 1);
      const simListMs = await timeSimListing(sim, opts.runs);
      sim.clearLog();
      const before = loadavg()[0]!;
      const r = await runChild({ ...env, BENCH_PASSES: String(opts.runs + 1) });
      const load: [number, number] = [before, loadavg()[0]!];
      if (!r.ok || r.reasons.UpToDate !== n) throw new Error(`steady pass over ${n} certificates was not all up to date: ${JSON.stringify(r)}`);
      const passes = opts.runs + 1;
      const pages = sim.log.filter((x) => x.method === 'GET' && /\/certificates$/.test(x.path)).length / passes;
      out.push({
        certificates: n,
        coldMs: r.wallMs[0]!,
        coldCpuMs: r.cpuMs[0]!,
        cpuMs: median(r.cpuMs.slice(1)),
        wallMs: median(r.wallMs.slice(1)),
        maxRssMb: r.maxRssKb / 1024,
        orchestratorRequests: sim.log.length / passes,
        certificatePages: pages,
        acmeRequests: r.acmeRequests,
        runs: opts.runs,
        simListMs,
        rssAfterWarmMb: r.rssAfterMb,
        store: opts.store ?? 'files',
        load,
        setupMs,
        rowMs: performance.now() - started,
        cleanupMs: 0,
      });
    } finally {
      await sim.close();
      // As soon as the size is measured: the next size's figures are not taken beside 600,000 files to remove.
      // The last size is removed in the background (nothing is measured after it).
      const t = performance.now();
      if (n === opts.sizes.at(-1)) removeTreeLater(dir);
      else removeTree(dir);
      const done = out.find((x) => x.certificates === n);
      if (done) done.cleanupMs = performance.now() - t;
    }
  }
  return out;
}

