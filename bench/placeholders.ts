/**
 * Placeholders: from the start of `certwrangler manager --once` to the first and to the 100th
 * self-signed placeholder pushed into the Rancher simulator, for 100 new names, with the CA down (so
 * nothing but placeholders happens). Times come from the manager's own log lines.
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
}

export async function benchPlaceholders(opts: { names: number; runs: number; base: string }): Promise<PlaceholderResult> {
  const firsts: number[] = [];
  const alls: number[] = [];
  for (let run = 0; run < opts.runs; run++) {
    const dir = join(opts.base, `placeholders-${run}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const sim = await startRancherSim();
    const closed = await freePort();
    try {
      const env = {
        ...managerEnv(sim, dir, `https://127.0.0.1:${closed}/directory`, 'info'),
        DOMAINS: Array.from({ length: opts.names }, (_, i) => `ph${i}.bench-example.com`).join(';'),
      };
      const started = Date.now();
      const pushedAt: number[] = [];
      await new Promise<void>((res) => {
        const p = spawn(process.execPath, [resolve('dist/cli.js'), 'manager', '--once'], { env });
        let buf = '';
        p.stdout.on('data', (b: Buffer) => {
          buf += b;
          const lines = buf.split('\n');
          buf = lines.pop()!;
          for (const l of lines) if (l.includes('placeholder pushed')) pushedAt.push(Date.parse(JSON.parse(l).time as string));
        });
        p.on('close', () => res());
      });
      if (pushedAt.length !== opts.names) throw new Error(`expected ${opts.names} placeholders, saw ${pushedAt.length}`);
      firsts.push(Math.min(...pushedAt) - started);
      alls.push(Math.max(...pushedAt) - started);
    } finally {
      await sim.close();
    }
  }
  return { names: opts.names, firstMs: median(firsts), allMs: median(alls), runs: opts.runs };
}
