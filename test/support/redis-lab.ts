/**
 * A real redis-server (Debian's) on a free loopback port, in its own folder, without persistence; stopped and
 * started again on the same port, as a Redis outage looks to its clients. Minimal on purpose: the store tests'
 * starter (test/support/redis-server.ts) is meant to replace it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { freePort } from './ports.js';

export interface RedisLab {
  port: number;
  url: string;
  /** redis-cli against this server; its stdout. */
  cli(...args: string[]): string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

function exited(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

export async function startRedisLab(dir: string): Promise<RedisLab> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const cli = (...args: string[]): string => {
    const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr || r.error?.message}`);
    return r.stdout;
  };
  const start = async () => {
    const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    let output = '';
    p.stdout!.on('data', (b: Buffer) => (output += b));
    p.stderr!.on('data', (b: Buffer) => (output += b));
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'PING'], { encoding: 'utf8', timeout: 2000 });
      if (r.stdout.trim() === 'PONG') return;
      if (p.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start on ${port}: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    cli,
    stop: async () => {
      if (proc) await exited(proc);
    },
    start,
  };
}
