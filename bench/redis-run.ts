/**
 * `npm run bench -- redis`: the Redis figures (issue 20 item 7), as rows of bench/run.ts's table and a `redis`
 * section of bench/results.json. Kept out of run.ts but for one line, so the Redis store's bench is one folder's work.
 */
import { join } from 'node:path';
import { benchRedisSteady } from './redis-steady.js';
import { benchRedisFailover } from './redis-failover.js';
import { median, ms, type Row } from './lib.js';

export async function runRedisBench(o: { quick: boolean; runs: number; base: string; rows: Row[]; results: Record<string, unknown>; save: () => void }): Promise<void> {
  const steady = await benchRedisSteady({ sizes: o.quick ? [100, 1000] : [1000, 10_000], runs: o.runs, base: join(o.base, 'redis') });
  const failover = await benchRedisFailover({ runs: o.quick ? 1 : o.runs, base: join(o.base, 'redis') });
  o.results.redis = { steady, failover };
  o.save();
  for (const x of steady) {
    o.rows.push({ benchmark: `steady state over Redis, ${x.certificates} certificates`, subject: 'certwrangler', value: `${ms(x.wallMs)} a pass (cold ${ms(x.coldMs)}), RSS ${Math.round(x.maxRssMb)} MB`, note: `${x.commandsPerPass} Redis commands a pass, ${x.acmeRequests} ACME requests` });
  }
  o.rows.push({ benchmark: `failover over Redis, LEASE_TTL ${failover.leaseTtlMs / 1000} s`, subject: 'certwrangler', value: `${ms(median(failover.failoverMs))} (median of ${failover.failoverMs.length})`, note: 'leader SIGKILLed → next certificate issued' });
}
