/**
 * A real redis-server (Debian's package) for a test file: a free loopback port, its own folder, append-only file
 * fsynced on every write (so a restart loses nothing, as the README asks of a production Redis). Stop, restart
 * on the same port and folder, and pause/resume with SIGSTOP/SIGCONT for the failure cases.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';

export const REDIS_CLI = 'redis-cli';

export interface RedisServer {
  port: number;
  dir: string;
  /** redis://127.0.0.1:<port>/0 */
  url: string;
  /** redis-cli against this server; returns its stdout (raw output, no type annotations). */
  cli(...args: string[]): string;
  /** SIGTERM and wait for the exit (Redis writes its append-only file first). */
  stop(): Promise<void>;
  /** Start again on the same port and folder, with what the append-only file holds. */
  restart(): Promise<void>;
  /** Start it again after stop(), the same way. */
  start(): Promise<void>;
  pause(): void;
  resume(): void;
}

function exited(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
  });
}

async function ready(port: number, proc: ChildProcess, log: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}: ${readFileSync(log, 'utf8')}`);
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    try {
      await c.connect();
      // A server still loading its append-only file answers LOADING: not ready.
      if ((await c.ping()) === 'PONG') return;
    } catch {
      // not yet listening
    } finally {
      c.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer: ${readFileSync(log, 'utf8')}`);
}

export async function startRedis(dir: string, port?: number): Promise<RedisServer> {
  mkdirSync(dir, { recursive: true });
  const p = port ?? (await freePort());
  const log = join(dir, 'redis.log');
  let proc: ChildProcess;
  const start = async () => {
    const out = openSync(log, 'a');
    proc = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no'], { stdio: ['ignore', out, out] });
    await ready(p, proc, log);
  };
  await start();
  const server: RedisServer = {
    port: p,
    dir,
    url: `redis://127.0.0.1:${p}/0`,
    cli: (...args) => {
      const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(p), '--raw', ...args], { encoding: 'utf8', timeout: 10_000 });
      if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    },
    stop: async () => {
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      await exited(proc);
    },
    restart: async () => {
      await server.stop();
      await start();
    },
    start,
    pause: () => void proc.kill('SIGSTOP'),
    resume: () => void proc.kill('SIGCONT'),
  };
  return server;
}
