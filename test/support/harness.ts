/** What the end-to-end tests share: one pass with its orders counted on the wire, chain checks, the CLI. */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { assemble, type AssembleOptions } from '../../src/assemble.js';
import { runPass, type PassReport } from '../../src/reconciler.js';
import { countAcmeRequests } from '../../src/acme/transport.js';
import { splitPemChain } from '../../src/certs/parse.js';
import { join } from 'node:path';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { createWebroot, listenWebroot } from '../../src/webroot/server.js';
import { startPebble, type Pebble, type PebbleOptions } from './pebble.js';
import { freePort } from './ports.js';

/**
 * One manager pass; `orders` counts the CA's "201 POST /order-plz" answers, so retries do not count.
 * `requests` holds every answered ACME request as "<status> <METHOD> <path>".
 */
export async function passWithOrders(env: Record<string, string>, opts: AssembleOptions = {}, log = createLogger('silent')): Promise<{ report: PassReport; orders: number; requests: Map<string, number> }> {
  const m = await assemble(loadConfig(env), log, { retryBaseMs: 50, ...opts });
  const counter = countAcmeRequests();
  try {
    const report = await runPass(m);
    await m.events.drain();
    const orders = [...counter.counts].filter(([k]) => k === '201 POST /order-plz').reduce((n, [, v]) => n + v, 0);
    return { report, orders, requests: new Map(counter.counts) };
  } finally {
    counter.stop();
  }
}

/** Every answer carries a fresh nonce; asking newNonce before each signed request would double the load. */
export function assertNoncesReused(requests: Map<string, number>): void {
  const total = (re: RegExp) => [...requests].filter(([k]) => re.test(k)).reduce((n, [, v]) => n + v, 0);
  const signed = total(/^\d+ POST /);
  const nonceAsks = total(/ (HEAD|GET) \/nonce-plz$/);
  assert.ok(nonceAsks < signed / 2, `${nonceAsks} newNonce requests for ${signed} signed ones`);
}

export const pebbleEnv = (p: Pebble, as: 'staging' | 'production'): Record<string, string> => ({
  [as === 'staging' ? 'ACME_STAGING_DIRECTORY_URL' : 'ACME_DIRECTORY_URL']: p.directoryUrl,
  STAGING: as === 'staging' ? 'true' : 'false',
  ACME_CA_BUNDLE: p.caBundlePath,
});

/** Walks leaf → intermediates → Pebble's root, checking every signature. */
export function assertChainVerifies(fullchain: string, rootPem: string): void {
  const chain = splitPemChain(fullchain).map((p) => new X509Certificate(p));
  const root = new X509Certificate(rootPem);
  for (let i = 0; i < chain.length; i++) {
    const issuer = chain[i + 1] ?? root;
    assert.ok(chain[i]!.checkIssued(issuer), `certificate ${i} is issued by the next`);
    assert.ok(chain[i]!.verify(issuer.publicKey), `certificate ${i} signature verifies`);
  }
}

export interface CliRun {
  proc: ChildProcess;
  /** Everything written so far to stdout and stderr. */
  output(): string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Starts `certwrangler <args>` from source as a child process (to be signalled or killed by the test). */
export function startCli(args: string[], env: Record<string, string>, opts: { wrap?: string[] } = {}): CliRun {
  const argv = [process.execPath, '--import', 'tsx', 'src/cli.ts', ...args];
  const [cmd, ...rest] = [...(opts.wrap ?? []), ...argv];
  const proc = spawn(cmd!, rest, { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (b: Buffer) => (stdout += b));
  proc.stderr!.on('data', (b: Buffer) => (stderr += b));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { proc, output: () => stdout + stderr, done };
}

/** Runs `certwrangler <args>` from source as a child process and collects its output. */
export async function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await startCli(args, env).done;
  return { code, stdout, stderr };
}

/** Pebbles that validate against our webroot, each with its own webroot listener, all stopped together. */
export interface AcmeLab {
  webroot: string;
  pebble(name: string, opts?: Omit<PebbleOptions, 'dir' | 'httpPort'>): Promise<Pebble>;
  stop(): Promise<void>;
}

export function acmeLab(base: string): AcmeLab {
  const webroot = join(base, 'www');
  const servers: Server[] = [];
  const pebbles: Pebble[] = [];
  return {
    webroot,
    async pebble(name, opts = {}) {
      const httpPort = await freePort();
      servers.push(await listenWebroot(createWebroot(webroot), httpPort, '127.0.0.1'));
      const p = await startPebble({ nonceReject: 0, ...opts, dir: join(base, name), httpPort });
      pebbles.push(p);
      return p;
    },
    async stop() {
      await Promise.all(pebbles.map((p) => p.stop()));
      for (const s of servers) s.close();
    },
  };
}

/** Every entry under `dir`, recursively, as absolute paths (folders included); [] when `dir` does not exist. */
export function pathsUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).map((p) => join(dir, p));
}

/** Every regular file under `dir`, recursively, as absolute paths. */
export function filesUnder(dir: string): string[] {
  return pathsUnder(dir).filter((p) => lstatSync(p).isFile());
}

/** A pass's errors in one line, for an assertion's message. */
export const errors = (report: PassReport): string => JSON.stringify(report.results.filter((r) => r.error).map((r) => `${r.name}: ${r.error}`).concat(report.errors));
