/**
 * Failover time over STORE=redis (issue 20 item 7): two `certwrangler manager` daemons on one redis-server and
 * Pebble behind the test CA front, LEASE_TTL at its default (15 s). The leader is SIGKILLed just after it sends a
 * new-order; the figure is the time from the kill until the CA issues the next certificate (the standby took the
 * lease, started its pass and finished an order). It is at most LEASE_TTL plus one order, and at least the time
 * the lease had left.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startAcmeFront } from '../test/support/acme-front.js';
import { acmeLab, startCli, type CliRun } from '../test/support/harness.js';
import { freePort } from '../test/support/ports.js';
import { startRedis } from '../test/support/redis-server.js';
import { parseLease } from '../src/stores/redis/lease.js';

export interface RedisFailoverResult {
  leaseTtlMs: number;
  /** Kill → the next certificate issued by the CA, per run. */
  failoverMs: number[];
}

const DEFAULT_LEASE_TTL_MS = 15_000;

async function until(what: string, check: () => boolean, ms = 180_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`redis failover bench: gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function benchRedisFailover(opts: { runs: number; base: string }): Promise<RedisFailoverResult> {
  const dir = join(opts.base, 'redis-failover');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const lab = acmeLab(dir);
  const [server, pebble] = await Promise.all([startRedis(join(dir, 'redis')), lab.pebble('pebble')]);
  const front = await startAcmeFront(pebble);
  const runs: CliRun[] = [];
  const failoverMs: number[] = [];
  try {
    for (let run = 0; run < opts.runs; run++) {
      server.cli('FLUSHDB');
      const names = Array.from({ length: 10 }, (_, i) => `f${i}.run${run}.failover.example.com`);
      const managers: CliRun[] = [];
      for (let m = 0; m < 2; m++) {
        const env = {
          STORE: 'redis',
          REDIS_URL: server.url,
          DATA_DIR: join(dir, `r${run}m${m}`, 'data'),
          CERTS_DIR: join(dir, `r${run}m${m}`, 'live'),
          WEBROOT_DIR: lab.webroot,
          STATUS_ADDR: `127.0.0.1:${await freePort()}`,
          LOG_LEVEL: 'warn',
          DOMAINS: names.join(';'),
          ACME_DIRECTORY_URL: front.directoryUrl,
          ACME_CA_BUNDLE: pebble.caBundlePath,
          STAGING: 'false',
          ACME_CONCURRENCY: '1',
        };
        managers.push(startCli(['manager'], env));
      }
      runs.push(...managers);
      const ordersBefore = front.orders.length;
      await until('the leader ordering', () => front.orders.length >= ordersBefore + 3);
      const pid = parseLease(server.cli('GET', 'certwrangler:lease').trim())?.pid;
      const leader = managers.find((m) => m.proc.pid === pid);
      if (!leader) throw new Error('redis failover bench: no manager holds the lease');
      const issuedAtKill = front.issued.size;
      const t = performance.now();
      leader.proc.kill('SIGKILL');
      await until('the next certificate issued', () => front.issued.size > issuedAtKill);
      failoverMs.push(performance.now() - t);
      for (const m of managers) m.proc.kill('SIGKILL');
      await Promise.all(managers.map((m) => m.done));
    }
  } finally {
    for (const m of runs) m.proc.kill('SIGKILL');
    await front.close();
    await lab.stop();
    await server.stop();
  }
  return { leaseTtlMs: DEFAULT_LEASE_TTL_MS, failoverMs };
}
