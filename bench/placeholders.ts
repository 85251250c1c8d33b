/**
 * Placeholders: from the start of `certwrangler manager --once` to the first and to the 100th
 * self-signed placeholder pushed into the Rancher simulator, for 100 new names, with the CA down (so
 * nothing but placeholders happens). Times come from the manager's own log lines (its clock and the
 * simulator's are the same machine's), and each placeholder's stages from those and the simulator's log.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from '../test/support/ports.js';
import { startRancherSim } from '../test/support/rancher-sim.js';
import { managerEnv, median } from './lib.js';

export interface PlaceholderResult {
  names: number;
  firstMs: number;
  allMs: number;
  runs: number;
  /** Medians over every placeholder of every run: what one push waited on, stage by stage (ms). */
  stages: PlaceholderStages;
}

/**
 * One placeholder's way, from the manager's log (debug) and the simulator's request log: made and stored
 * (decision → "stored"), waiting for a write (→ its POST reaches Rancher), waiting for Rancher to settle
 * (POST → the first settle check, which the spec puts 150 ms after the write), and the rest (the check's
 * answer, the log line).
 */
export interface PlaceholderStages {
  /** From process start to the first decision: start-up, configuration, the orchestrator's list. */
  startMs: number;
  /** Decision to stored: waiting for one of the 16 placeholder writes, making it, storing it. */
  makeAndStoreMs: number;
  queuedForWriteMs: number;
  settleMs: number;
  afterSettleMs: number;
}

export async function benchPlaceholders(opts: { names: number; runs: number; base: string }): Promise<PlaceholderResult> {
  const firsts: number[] = [];
  const alls: number[] = [];
  const stages: Record<keyof PlaceholderStages, number[]> = { startMs: [], makeAndStoreMs: [], queuedForWriteMs: [], settleMs: [], afterSettleMs: [] };
  for (let run = 0; run < opts.runs; run++) {
    const dir = join(opts.base, `placeholders-${run}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const sim = await startRancherSim();
    const closed = await freePort();
    try {
      const env = {
        // debug: the "placeholder stored" lines time the store stage.
        ...managerEnv(sim, dir, `https://127.0.0.1:${closed}/directory`, 'debug'),
        DOMAINS: Array.from({ length: opts.names }, (_, i) => `ph${i}.bench-example.com`).join(';'),
      };
      const started = Date.now();
      const pushedAt: number[] = [];
      // cert name → time of each stage's log line
      const decided = new Map<string, number>();
      const stored = new Map<string, number>();
      const pushed = new Map<string, number>();
      await new Promise<void>((res) => {
        const p = spawn(process.execPath, [resolve('dist/cli.js'), 'manager', '--once'], { env });
        let buf = '';
        p.stdout.on('data', (b: Buffer) => {
          buf += b;
          const lines = buf.split('\n');
          buf = lines.pop()!;
          for (const l of lines) {
            const j = JSON.parse(l) as { time: string; msg: string; cert?: string; action?: string };
            const at = Date.parse(j.time);
            if (j.msg.includes('placeholder pushed')) pushedAt.push(at);
            if (!j.cert) continue;
            if (j.msg.startsWith(`${j.cert}: placeholder — `)) decided.set(j.cert, at);
            else if (j.msg.includes('placeholder stored')) stored.set(j.cert, at);
            else if (j.msg.includes('placeholder pushed')) pushed.set(j.cert, at);
          }
        });
        p.on('close', () => res());
      });
      if (pushedAt.length !== opts.names) throw new Error(`expected ${opts.names} placeholders, saw ${pushedAt.length}`);
      firsts.push(Math.min(...pushedAt) - started);
      alls.push(Math.max(...pushedAt) - started);
      stages.startMs.push(Math.min(...decided.values()) - started);
      const posted = new Map<string, number>();
      const firstCheck = new Map<string, number>();
      for (const r of sim.log) {
        if (r.method === 'POST' && r.path.endsWith('/certificates')) posted.set((r.body as { name: string }).name, r.at);
      }
      for (const c of sim.certificates.values()) {
        const check = sim.log.find((r) => r.method === 'GET' && r.path.endsWith(`/certificates/${c.id}`));
        if (check) firstCheck.set(c.name, check.at);
      }
      for (const [name, at] of pushed) {
        const [d, s, p, g] = [decided.get(name), stored.get(name), posted.get(name), firstCheck.get(name)];
        if (d === undefined || s === undefined || p === undefined || g === undefined) continue;
        stages.makeAndStoreMs.push(s - d);
        stages.queuedForWriteMs.push(p - s);
        stages.settleMs.push(g - p);
        stages.afterSettleMs.push(at - g);
      }
    } finally {
      await sim.close();
    }
  }
  const med = (k: keyof PlaceholderStages) => median(stages[k]);
  return {
    names: opts.names,
    firstMs: median(firsts),
    allMs: median(alls),
    runs: opts.runs,
    stages: { startMs: med('startMs'), makeAndStoreMs: med('makeAndStoreMs'), queuedForWriteMs: med('queuedForWriteMs'), settleMs: med('settleMs'), afterSettleMs: med('afterSettleMs') },
  };
}
