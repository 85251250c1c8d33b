/**
 * One active manager over Redis (issue 20 item 2): a lease, `SET <P>lease <value> NX PX <ttl>`, renewed at a third
 * of its TTL by compare-and-extend, released by compare-and-delete. Its value is the fencing token: a number from
 * INCR (it only grows, so a later holder always has a larger one) and the holder (host, pid, since) for "standby,
 * leader is <host>". Every store write checks, in its own script, that the lease still holds this token (Fence),
 * so a manager that was paused or cut off past its lease cannot write after another took over.
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { HeldLock, LockOptions, LockOwner } from '../../lock.js';
import { LockBusyError } from '../../lock.js';
import type { Fence } from './connection.js';

/** LEASE_TTL's default (issue 20): a dead leader is replaced within about this long. */
export const DEFAULT_LEASE_TTL_MS = 15_000;
/** Renewed at a third of the TTL (issue 20), so two renewals can be missed before the lease lapses. */
export const RENEW_FRACTION = 3;
/** A standby looks no more often than this, however soon the lease lapses, so it never spins. */
const MIN_POLL_MS = 50;

/** Takes the lease when free: INCR for the token, SET NX PX; returns the value set, or the holder's value. */
const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if cur then return { 0, cur } end
local n = redis.call('INCR', KEYS[2])
local v = n .. ' ' .. ARGV[2]
redis.call('SET', KEYS[1], v, 'PX', ARGV[1])
return { 1, v }
`;
/**
 * Extends the lease while it is ours. Lapsed (Redis was out of reach longer than the TTL) and taken by no one
 * since, as the fencing counter shows: ours again, with the same token, since no one else wrote meanwhile.
 * Otherwise returns the holder's value ('' when another held it and let it go: lost all the same, since what
 * it wrote may not be what this manager remembers).
 */
const RENEW = `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] or (not cur and redis.call('GET', KEYS[2]) == ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return { 1, ARGV[1] }
end
return { 0, cur or '' }
`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export interface LeaseHolder {
  /** The fencing number. */
  token: number;
  host: string;
  pid: number;
  since: string;
}

/** Reads a lease value ("<n> <holder JSON>"), whatever wrote it. */
export function parseLease(v: string | null | undefined): LeaseHolder | undefined {
  if (!v) return undefined;
  const i = v.indexOf(' ');
  try {
    const h = JSON.parse(v.slice(i + 1)) as Omit<LeaseHolder, 'token'>;
    return { token: Number(v.slice(0, i)), host: String(h.host), pid: Number(h.pid), since: String(h.since) };
  } catch {
    return undefined;
  }
}

export function describeHolder(v: string | null | undefined): string {
  const h = parseLease(v);
  if (h) return `${h.host} (pid ${h.pid}, fencing token ${h.token}, since ${h.since})`;
  return v ? 'an unknown holder' : 'no one (it lapsed, and another manager may have held it since)';
}

export interface LeaseOptions {
  /** The lease key (prefix included). */
  key: string;
  ttlMs: number;
  /** For errors: "Redis redis://cache:6379/0". */
  where: string;
}

export class LeaseLostError extends Error {}

/** The lease of one manager: take() it once; its Fence is what the store's write scripts check. */
export class RedisLease implements Fence {
  readonly key: string;
  private value: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly o: LeaseOptions,
  ) {
    this.key = o.key;
  }

  token(): string | undefined {
    return this.value;
  }

  private async script(lua: string, keys: string[], args: (string | number)[]): Promise<[number, string]> {
    return (await this.redis.eval(lua, keys.length, ...keys, ...args)) as [number, string];
  }

  /** The current holder's value, or undefined when no one holds the lease. */
  async holder(): Promise<string | undefined> {
    return (await this.redis.get(this.key)) ?? undefined;
  }

  /**
   * Takes the lease. Held by another: refuses at once with waitMs 0, or waits up to waitMs (polling at most every
   * TTL/3, and just after the lease would lapse); with `onStandby`, waits for as long as it takes (a standby
   * manager), telling each new leader.
   */
  async take(opts: LockOptions): Promise<HeldLock> {
    const since = new Date().toISOString();
    const me = JSON.stringify({ host: hostname(), pid: process.pid, since });
    const deadline = Date.now() + opts.waitMs;
    let told: string | undefined;
    let outage: string | undefined;
    for (;;) {
      let attempt: [number, string];
      try {
        attempt = await this.script(ACQUIRE, [this.key, `${this.key}:fence`], [this.o.ttlMs, me]);
      } catch (e) {
        // A standby outlives a Redis outage: exiting would gain nothing (the leader, if any, cannot write either),
        // and it is the standby that must be there when Redis and the leader's lease come back. `--once` and
        // a manager that may not stand by fail as before.
        if (!opts.onStandby) throw e;
        const why = (e as Error).message;
        const retryMs = this.o.ttlMs / RENEW_FRACTION;
        if (outage === undefined) opts.onUnreachable?.(why, retryMs);
        outage = why;
        await new Promise((r) => setTimeout(r, retryMs));
        continue;
      }
      outage = undefined;
      const [ok, v] = attempt;
      if (ok === 1) return this.hold(v, opts);
      const leader = describeHolder(v);
      if (opts.onStandby) {
        if (told !== v) opts.onStandby(leader);
      } else if (Date.now() >= deadline) {
        const waited = opts.waitMs > 0 ? `; waited ${Math.round(opts.waitMs / 1000)} s (LOCK_WAIT)` : '';
        throw new LockBusyError(`${this.o.where} is in use by another certwrangler manager, which holds the lease: ${leader}${waited}. One manager is active per store; the others stand by (\`manager\` without --once)`);
      } else if (told === undefined) opts.onWait?.(leader, false);
      told = v;
      // Unreachable since the lease was read: the next attempt above waits it out (a standby) or fails.
      const pttl = await this.redis.pttl(this.key).catch(() => this.o.ttlMs);
      const wait = Math.min(this.o.ttlMs / RENEW_FRACTION, Math.max(MIN_POLL_MS, pttl + 5));
      await new Promise((r) => setTimeout(r, opts.onStandby ? wait : Math.min(wait, Math.max(0, deadline - Date.now()) + 1)));
    }
  }

  private hold(value: string, opts: LockOptions): HeldLock {
    this.value = value;
    const h = parseLease(value)!;
    const owner: LockOwner = { pid: h.pid, host: h.host, since: h.since, token: String(h.token) };
    let lost = false;
    const renew = async () => {
      try {
        const [ok, cur] = await this.script(RENEW, [this.key, `${this.key}:fence`], [value, this.o.ttlMs, h.token]);
        if (ok !== 1 && !lost) {
          lost = true;
          clearInterval(this.timer);
          opts.onLost?.(`the lease in ${this.o.where} is now held by ${describeHolder(cur)}`);
        }
      } catch {
        // Redis unreachable: the next beat tries again. Writes cannot happen meanwhile, and once the lease lapses
        // and another takes it, the fence refuses them.
      }
    };
    this.timer = setInterval(() => void renew(), this.o.ttlMs / RENEW_FRACTION);
    this.timer.unref();
    return {
      owner,
      release: async () => {
        clearInterval(this.timer);
        if (lost) return;
        lost = true;
        await this.redis.eval(RELEASE, 1, this.key, value).catch(() => undefined);
      },
    };
  }
}
