/**
 * The Redis connection every Redis user shares (the store, the lease, the webroot's token source, the
 * NethServer export): its variables, read once, and an ioredis client built from them. ioredis is the
 * maintained client that follows a Sentinel-managed primary and reconnects on its own.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError, parseDuration, str, splitHostPort, type Env } from '../../env.js';

export interface RedisConnectionOptions {
  /** redis:// or rediss:// URL, credentials included; never logged (see `shown`). */
  url: string;
  /** host:port of each Sentinel, when the primary is found through Sentinel. */
  sentinels: { host: string; port: number }[];
  /** The Sentinel master group name (REDIS_SENTINEL_NAME). */
  sentinelName?: string;
  /** Every key this certwrangler writes starts with it (REDIS_PREFIX, default "certwrangler:"). */
  prefix: string;
  /** Connect and command timeout (REDIS_TIMEOUT). */
  timeoutMs: number;
  /** The URL without its password, for logs. */
  shown: string;
}

export const REDIS_SECRETS = ['REDIS_URL'];
const DEFAULT_PREFIX = 'certwrangler:';
const DEFAULT_TIMEOUT_MS = 5_000;

export function redisFromEnv(env: Env): RedisConnectionOptions {
  const url = str(env, 'REDIS_URL');
  let parsed: URL | undefined;
  try {
    parsed = url ? new URL(url) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!parsed || !['redis:', 'rediss:'].includes(parsed.protocol)) {
    throw new ConfigError('REDIS_URL', url, 'a redis:// or rediss:// URL, e.g. redis://:password@redis:6379/0 (required with STORE=redis)', true);
  }
  const sentinels = (str(env, 'REDIS_SENTINELS') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const hp = splitHostPort(s);
      if (!hp || hp.port === undefined) throw new ConfigError('REDIS_SENTINELS', env.REDIS_SENTINELS, 'a comma-separated list of host:port, e.g. sentinel-1:26379,sentinel-2:26379');
      return { host: hp.host, port: hp.port };
    });
  const sentinelName = str(env, 'REDIS_SENTINEL_NAME');
  if (sentinels.length > 0 && !sentinelName) throw new ConfigError('REDIS_SENTINEL_NAME', undefined, 'the Sentinel master group name (e.g. mymaster), required with REDIS_SENTINELS');
  const prefix = str(env, 'REDIS_PREFIX') ?? DEFAULT_PREFIX;
  const shownUrl = new URL(parsed.href);
  if (shownUrl.password) shownUrl.password = '***';
  return {
    url: parsed.href,
    sentinels,
    ...(sentinelName ? { sentinelName } : {}),
    prefix,
    timeoutMs: parseDuration(env, 'REDIS_TIMEOUT', DEFAULT_TIMEOUT_MS, 100),
    shown: shownUrl.href,
  };
}

/** A client for `o`; `lazyConnect` so that building one never blocks, and every command has a timeout. */
export function createRedis(o: RedisConnectionOptions, extra: Partial<RedisOptions> = {}): Redis {
  const u = new URL(o.url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  const common: RedisOptions = {
    lazyConnect: true,
    connectTimeout: o.timeoutMs,
    commandTimeout: o.timeoutMs,
    maxRetriesPerRequest: 1,
    // Back off on reconnect, capped, so a Redis restart is survived without a storm of attempts.
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5_000),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(Number.isInteger(db) ? { db } : {}),
    ...(u.protocol === 'rediss:' ? { tls: { servername: u.hostname } } : {}),
    ...extra,
  };
  if (o.sentinels.length > 0) return new Redis({ ...common, sentinels: o.sentinels, name: o.sentinelName! });
  return new Redis({ ...common, host: u.hostname, port: u.port ? Number(u.port) : 6379 });
}

/**
 * The lease's fencing token as the store's write scripts check it (issue 20 item 2): a write runs only while
 * GET(key) equals the token this manager was given when it took the lease. Undefined token: no lease held yet,
 * so the store refuses to write.
 */
export interface Fence {
  /** Full Redis key of the lease (prefix included). */
  readonly key: string;
  token(): string | undefined;
}
