/** Shared pieces of the benchmarks: timing child processes (wall and CPU), medians, the results table. */
import { spawn, spawnSync } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { RancherSim } from '../test/support/rancher-sim.js';

export interface Timing {
  wallMs: number;
  /** user + system CPU of the process and all its children. */
  cpuMs: number;
  code: number | null;
  output: string;
}

/**
 * Runs a shell command under bash's `time`, which counts the CPU of every child process too (Node's own
 * counters see only the current process).
 */
export function timed(command: string, env: NodeJS.ProcessEnv = process.env): Promise<Timing> {
  return new Promise((resolve) => {
    const p = spawn('bash', ['-c', `TIMEFORMAT='__TIME__ %R %U %S'; time ( ${command} ) 2>&1`], { env });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b));
    p.stderr.on('data', (b: Buffer) => (out += b));
    p.on('close', (code) => {
      const m = /__TIME__ ([\d.]+) ([\d.]+) ([\d.]+)/.exec(out);
      resolve({
        wallMs: m ? Number(m[1]) * 1000 : NaN,
        cpuMs: m ? (Number(m[2]) + Number(m[3])) * 1000 : NaN,
        code,
        output: out.replace(/__TIME__.*\n?/, ''),
      });
    });
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Row {
  benchmark: string;
  subject: string;
  value: string;
  note?: string;
}

export function printTable(rows: Row[]): void {
  const cols: (keyof Row)[] = ['benchmark', 'subject', 'value', 'note'];
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: Record<string, string>) => `| ${cols.map((c, i) => (r[c] ?? '').padEnd(w[i]!)).join(' | ')} |`;
  console.log(line({ benchmark: 'benchmark', subject: 'subject', value: 'value', note: 'note' }));
  console.log(`|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r as unknown as Record<string, string>));
}

export function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}`;
}

export const ms = (x: number) => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`);

/** The environment of a manager that pushes into `sim`, keeps its state under `dir` and orders from `directoryUrl`. */
export function managerEnv(sim: RancherSim, dir: string, directoryUrl: string, logLevel: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...sim.env,
    DATA_DIR: join(dir, 'data'),
    WEBROOT_DIR: join(dir, 'www'),
    STAGING: 'false',
    ACME_DIRECTORY_URL: directoryUrl,
    LOG_LEVEL: logLevel,
  };
}

/**
 * Removes a folder and all it holds with `rm -rf` in a child: node's rmSync walks the tree in JavaScript, and
 * the 100,000-certificate steady fixtures (600,000 files) took it over 40 minutes on a loaded machine.
 */
export function removeTree(dir: string): void {
  const r = spawnSync('rm', ['-rf', '--', dir], { stdio: 'ignore' });
  if (r.error || r.status !== 0) rmSync(dir, { recursive: true, force: true });
}

/**
 * Moves a folder aside at once and removes it in a detached, low-priority `rm -rf` that outlives this process:
 * for the last and largest store (100,000 certificates), whose removal is bound by the disk (about 9 minutes
 * here on a loaded machine) and holds up nothing that is measured.
 */
export function removeTreeLater(dir: string): void {
  const aside = `${dir}.removing-${process.pid}`;
  try {
    renameSync(dir, aside);
  } catch {
    return removeTree(dir);
  }
  spawn('nice', ['-n', '19', 'rm', '-rf', '--', aside], { detached: true, stdio: 'ignore' }).unref();
}
