/**
 * Before and after in one run, on the same fixtures and under the same load (the machine is shared):
 *   node --import tsx bench/steady-compare.ts <other build's bench/steady-pass.mjs> [sizes…] [--passes=4] [--rounds=2]
 * The other build is a checkout with its own dist/ (e.g. `git archive <commit> | tar -x -C /tmp/before`, then
 * tsc there, and this tree's bench/steady-pass.mjs copied into it). Each round runs this tree's manager and the
 * other one, one after the other; the figures are medians over the rounds.
 */
import { tmpdir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { median, removeTree } from './lib.js';
import { runChild, steadySetup, type ChildResult } from './steady.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const other = resolve(args[0]!);
const sizes = args.slice(1).map(Number);
const opt = (name: string, d: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? d);
const passes = opt('passes', 4);
const rounds = opt('rounds', 2);

for (const n of sizes) {
  const dir = join(tmpdir(), `certwrangler-compare-${process.pid}`);
  const { sim, env, setupMs } = await steadySetup(n, dir);
  console.log(`${n} certificates: fixtures in ${Math.round(setupMs)} ms`);
  try {
    const runs: Record<'before' | 'after', (ChildResult & { load: number; requests: number })[]> = { before: [], after: [] };
    await runChild({ ...env, BENCH_PASSES: '1' });
    for (let i = 0; i < rounds; i++) {
      for (const [which, script] of [['before', other], ['after', resolve('bench/steady-pass.mjs')]] as const) {
        sim.clearLog();
        const load = loadavg()[0]!;
        const r = await runChild({ ...env, BENCH_PASSES: String(passes), BENCH_PASS_SCRIPT: script });
        if (!r.ok || r.reasons.UpToDate !== n) throw new Error(`${which}: not all up to date: ${JSON.stringify(r.reasons)}`);
        runs[which].push({ ...r, load, requests: sim.log.length / passes });
        console.log(`  ${which}: passes ${r.wallMs.map((x) => Math.round(x)).join(', ')} ms (CPU ${r.cpuMs.map((x) => Math.round(x)).join(', ')} ms); start RSS ${Math.round(r.startRssMb)} MB, max RSS ${Math.round(r.maxRssKb / 1024)} MB; ${sim.log.length / passes} Rancher requests a pass; load ${load.toFixed(1)}`);
      }
    }
    for (const which of ['before', 'after'] as const) {
      const rs = runs[which];
      console.log(
        `  ${which}: first pass ${Math.round(median(rs.map((r) => r.wallMs[0]!)))} ms (CPU ${Math.round(median(rs.map((r) => r.cpuMs[0]!)))}), warm ${Math.round(median(rs.flatMap((r) => r.wallMs.slice(1))))} ms (CPU ${Math.round(median(rs.flatMap((r) => r.cpuMs.slice(1))))}), ` +
          `start RSS ${Math.round(median(rs.map((r) => r.startRssMb)))} MB, max RSS ${Math.round(median(rs.map((r) => r.maxRssKb / 1024)))} MB, ${median(rs.map((r) => r.requests))} Rancher requests a pass, load ${rs.map((r) => r.load.toFixed(1)).join('/')}`,
      );
    }
  } finally {
    await sim.close();
    removeTree(dir);
  }
}
