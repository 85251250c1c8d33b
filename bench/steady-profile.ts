/**
 * Where a steady-state pass spends its time and memory (issue 22 item 1), not part of `npm run bench`:
 *   node --import tsx bench/steady-profile.ts [certificates=10000] [passes=4]
 * Builds the steady fixtures once, then runs the manager's passes (bench/steady-pass.mjs, built code) three
 * times: plain, under `--cpu-prof`, and under `--heap-prof`. Prints the top functions by self time (the
 * warm passes and the first pass are mixed in one profile: the first is named by its share) and the
 * allocation sites still live at exit, and leaves the raw profiles in bench/profiles/ for DevTools.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { runChild, steadySetup } from './steady.js';
import { removeTree } from './lib.js';

const n = Number(process.argv[2] ?? 10_000);
const passes = Number(process.argv[3] ?? 4);
const out = resolve('bench/profiles');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

const where = (f: { functionName: string; url: string; lineNumber: number }) =>
  `${f.functionName || '(anonymous)'} ${f.url.replace(/^file:\/\/.*?\/(dist|node_modules|bench)\//, '$1/').replace(/^node:/, 'node:')}:${f.lineNumber + 1}`;

function topCpu(file: string, count: number): string[] {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: CpuNode[]; startTime: number; endTime: number; samples: number[] };
  const total = prof.samples.length;
  const self = new Map<string, number>();
  for (const node of prof.nodes) self.set(where(node.callFrame), (self.get(where(node.callFrame)) ?? 0) + (node.hitCount ?? 0));
  const ms = (prof.endTime - prof.startTime) / 1000;
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(5)}%  ${((ms * v) / total).toFixed(0).padStart(6)} ms  ${k}`);
}

function topHeap(file: string, count: number): string[] {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };
  const self = new Map<string, number>();
  const walk = (node: HeapNode) => {
    self.set(where(node.callFrame), (self.get(where(node.callFrame)) ?? 0) + node.selfSize);
    node.children.forEach(walk);
  };
  walk(prof.head);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  return [
    `live at exit (sampled): ${(total / 1048576).toFixed(1)} MB`,
    ...[...self]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([k, v]) => `${(v / 1048576).toFixed(1).padStart(6)} MB  ${k}`),
  ];
}

const dir = join(tmpdir(), `certwrangler-profile-${process.pid}`);
const { sim, env } = await steadySetup(n, dir);
try {
  const run = async (label: string, nodeArgs: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    sim.clearLog();
    const load = loadavg()[0]!;
    const r = await runChild({ ...env, ...extraEnv, BENCH_PASSES: String(passes) }, nodeArgs);
    const heap = r.heapAfterMb !== undefined && nodeArgs.includes('--expose-gc') ? `; heap after the last pass and a full GC ${r.heapAfterMb.toFixed(1)} MB` : '';
    console.log(`${label}: passes ${r.wallMs.map((x) => `${Math.round(x)} ms`).join(', ')}; max RSS ${Math.round(r.maxRssKb / 1024)} MB${heap}; ${sim.log.length / passes} Rancher requests a pass; load ${load.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after`);
  };
  await run('warm-up', []);
  await run('plain', []);
  await run('cpu profile', ['--expose-gc'], { BENCH_PROFILE_DIR: out });
  await run('heap-prof', ['--heap-prof', `--heap-prof-dir=${out}`]);
  for (const f of readdirSync(out).sort()) {
    const file = join(out, f);
    if (f === 'cold.cpuprofile') console.log(`\nCPU of the first pass, self time, ${n} certificates:\n${topCpu(file, 20).join('\n')}`);
    if (f === 'warm.cpuprofile') console.log(`\nCPU of the ${passes - 1} warm passes together, self time:\n${topCpu(file, 20).join('\n')}`);
    if (f.endsWith('.heapprofile')) console.log(`\nHeap:\n${topHeap(file, 15).join('\n')}`);
  }
} finally {
  await sim.close();
  removeTree(dir);
}
