/**
 * Where the webroot finds a token's key authorization when tokens go through Redis (issue 20 item 3): the manager
 * publishes each one under `<REDIS_PREFIX>token:<token>` with a TTL, so every webroot on every host answers every
 * token, and the shared folder (WEBROOT_DIR) is the fallback while Redis cannot be reached.
 *
 * The chain, for a token that passed the URL's pattern check:
 *   Redis has it                        → 200 (a hit is kept in memory for at most HIT_CACHE_MS)
 *   Redis answers "no such key"         → the folder decides (200 or 404), as a webroot without Redis does
 *   Redis unreachable, folder has it    → 200 from the folder
 *   Redis unreachable, folder has not   → 503: the token may be in Redis, so "not found" would be a guess
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { CHALLENGE_PATH, TOKEN_RE } from '../acme/http01.js';
import { createRedis, redisFromEnv, type RedisConnectionOptions } from '../stores/redis/connection.js';
import { str, type Env } from '../env.js';
import type { Logger } from '../log.js';

/**
 * How long a published key authorization lives in Redis when the manager does not remove it (killed mid-order):
 * an hour is far beyond an order's validation (the CA fetches within seconds of the manager's answer, and the
 * manager stops polling an authorization after 2 minutes, src/acme/poll.ts DEFAULT_POLL.deadlineMs), and short
 * enough that a crashed manager's tokens do not pile up. The values are public (RFC 8555 §8.3), so keeping one too long harms nothing.
 */
export const TOKEN_TTL_MS = 3_600_000;

/**
 * A hit is answered from memory for at most this long (issue 20: "caching in memory for at most one second"): a
 * CA validates from several vantage points within a second or two, and this spares Redis a GET for each. A
 * withdrawn token is then served at most this much longer, which harms nothing: it is a public value. Misses are
 * never cached, so a token published just after a probe is served at once.
 */
export const HIT_CACHE_MS = 1000;
/** Bounds the memory a flood of distinct published tokens could take; the cache is cleared when it is reached. */
const HIT_CACHE_LIMIT = 10_000;

/** The Redis key of a token's key authorization: the manager writes it, every webroot reads it. */
export function tokenKey(prefix: string, token: string): string {
  if (!TOKEN_RE.test(token)) throw new Error(`http-01: ${JSON.stringify(token.slice(0, 40))} is not a token (1 to 255 characters of A-Z a-z 0-9 _ -)`);
  return `${prefix}token:${token}`;
}

/** The Redis the webroot reads tokens from, and whether the manager publishes them there. */
export interface TokenRedisConfig {
  connection: RedisConnectionOptions;
  /** The manager publishes (STORE=redis); a webroot given REDIS_URL reads whether or not this manager publishes. */
  publish: boolean;
}

/**
 * STORE=redis: the manager publishes every key authorization, and the webroot reads them. A webroot with REDIS_URL
 * (and no STORE) reads too, so the webroot service needs only the managers' Redis variables. Without either,
 * tokens go through WEBROOT_DIR alone, as before.
 */
export function tokenRedisFromEnv(env: Env): TokenRedisConfig | undefined {
  const publish = (str(env, 'STORE') ?? '').toLowerCase() === 'redis';
  if (!publish && str(env, 'REDIS_URL') === undefined) return undefined;
  return { connection: redisFromEnv(env), publish };
}

/** What the manager's HTTP-01 solver calls besides writing the file (src/acme/http01.ts). */
export interface TokenPublisher {
  publish(token: string, keyAuthorization: string): Promise<void>;
  withdraw(token: string): Promise<void>;
  close(): Promise<void>;
}

/** Publishes key authorizations to Redis, each with TOKEN_TTL_MS as a backstop for a manager killed before cleanup. */
export class RedisTokenPublisher implements TokenPublisher {
  private redis: Redis | undefined;

  constructor(private readonly connection: RedisConnectionOptions) {}

  private client(): Redis {
    // Connected at the first token: a manager that never orders over HTTP-01 opens no connection for it.
    if (!this.redis) {
      this.redis = createRedis(this.connection);
      // A lost connection is reported by the command that needs it (publish throws, naming Redis); ioredis would
      // otherwise print every reconnect failure as an unhandled error.
      this.redis.on('error', () => undefined);
    }
    return this.redis;
  }

  async publish(token: string, keyAuthorization: string): Promise<void> {
    const key = tokenKey(this.connection.prefix, token);
    try {
      await this.client().set(key, keyAuthorization, 'PX', TOKEN_TTL_MS);
    } catch (e) {
      throw new Error(`http-01: cannot publish the token to Redis ${this.connection.shown} (${(e as Error).message}): webroots answer tokens from Redis, so the CA would not find it; the order is retried at the next pass`);
    }
  }

  async withdraw(token: string): Promise<void> {
    // Only the key this manager wrote; should Redis be down, the TTL removes it.
    await this.client().del(tokenKey(this.connection.prefix, token));
  }

  async close(): Promise<void> {
    const r = this.redis;
    this.redis = undefined;
    if (r?.status === 'ready') await r.quit().catch(() => r.disconnect());
    else r?.disconnect();
  }
}

/** Redis could not be asked: the token may be there, so the caller must not answer "not found". */
export class TokenSourceUnavailable extends Error {}

/** The webroot's reader: GET with a one-second memory of hits, failing at once (no queue) while Redis is down. */
export class RedisTokenSource {
  private readonly redis: Redis;
  private readonly hits = new Map<string, { body: Buffer; at: number }>();
  private lastError = 'not connected yet';
  private up = false;
  private warned = false;
  private readonly startedAt: Date;
  private lostAt: Date | undefined;

  constructor(
    readonly connection: RedisConnectionOptions,
    private readonly log?: Logger,
    private readonly now: () => number = Date.now,
  ) {
    // No offline queue: while Redis is away a request is answered at once from the folder or with 503, instead of
    // waiting REDIS_TIMEOUT for a command that cannot run. ioredis keeps reconnecting with its backoff.
    this.startedAt = new Date(now());
    this.redis = createRedis(connection, { enableOfflineQueue: false });
    this.redis.on('ready', () => {
      if (!this.up) this.log?.info({ redis: connection.shown }, `webroot: answering tokens from Redis ${connection.shown}`);
      this.up = true;
      this.warned = false;
      this.lostAt = undefined;
    });
    this.redis.on('error', (e: Error) => {
      this.lastError = e.message || String(e);
      // Once per outage (ioredis reports every reconnect attempt), also when Redis was never reached.
      if (!this.up && !this.warned) this.warnDown();
    });
    this.redis.on('close', () => {
      if (this.up) {
        this.lostAt = new Date(this.now());
        this.lastError = 'the connection was closed';
      }
      this.up = false;
      if (!this.warned) this.warnDown();
    });
  }

  private warnDown(): void {
    this.warned = true;
    this.log?.warn({ redis: this.connection.shown, error: this.lastError }, `webroot: Redis ${this.connection.shown} unreachable (${this.lastError}): answering tokens from the shared folder only (503 for the others) until it is back`);
  }

  /** Starts connecting; never throws (a webroot starts while Redis is still down, and answers from the folder). */
  start(): void {
    this.redis.connect().catch((e: Error) => {
      this.lastError = e.message || String(e);
    });
  }

  /** Why Redis cannot be asked now, or undefined when it can. */
  unavailable(): string | undefined {
    return this.redis.status === 'ready' ? undefined : `${this.redis.status}: ${this.lastError}`;
  }

  /** Since when Redis has been unreachable (since start when it never was reachable); undefined while it is. */
  downSince(): Date | undefined {
    if (this.redis.status === 'ready') return undefined;
    return this.lostAt ?? this.startedAt;
  }

  /** The key authorization, or undefined when Redis has none; TokenSourceUnavailable when Redis cannot say. */
  async get(token: string): Promise<Buffer | undefined> {
    const t = this.now();
    const hit = this.hits.get(token);
    if (hit && t - hit.at <= HIT_CACHE_MS) return hit.body;
    const down = this.unavailable();
    if (down) throw new TokenSourceUnavailable(down);
    let body: Buffer | null;
    try {
      body = await this.redis.getBuffer(tokenKey(this.connection.prefix, token));
    } catch (e) {
      throw new TokenSourceUnavailable((e as Error).message);
    }
    if (body === null) {
      this.hits.delete(token);
      return undefined;
    }
    if (!this.hits.has(token) && this.hits.size >= HIT_CACHE_LIMIT) this.hits.clear();
    this.hits.set(token, { body, at: t });
    return body;
  }

  async close(): Promise<void> {
    this.redis.removeAllListeners('close');
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }
}

/** The shared folder the manager also writes (WEBROOT_DIR), when one is there. */
export class FolderTokenSource {
  readonly challengeDir: string;

  constructor(readonly webrootDir: string) {
    this.challengeDir = join(webrootDir, CHALLENGE_PATH);
  }

  /** Whether a folder is mounted: the challenge folder exists. */
  async present(): Promise<boolean> {
    return fs.lstat(this.challengeDir).then(
      (st) => st.isDirectory(),
      () => false,
    );
  }

  /** Whether the folder holds this token as a regular file (what the folder's own server would serve). */
  async has(token: string): Promise<boolean> {
    if (!TOKEN_RE.test(token)) return false;
    return fs.lstat(join(this.challengeDir, token)).then(
      (st) => st.isFile(),
      () => false,
    );
  }
}

/** What the chain says about one token. */
export type TokenAnswer =
  | { kind: 'body'; body: Buffer }
  /** Let the folder's own server answer: it serves the file, or 404. */
  | { kind: 'folder' }
  | { kind: 'unavailable'; why: string };

export class TokenChain {
  constructor(
    readonly redis: RedisTokenSource,
    readonly folder: FolderTokenSource,
  ) {}

  async answer(token: string): Promise<TokenAnswer> {
    try {
      const body = await this.redis.get(token);
      return body ? { kind: 'body', body } : { kind: 'folder' };
    } catch (e) {
      if (!(e instanceof TokenSourceUnavailable)) throw e;
      if (await this.folder.has(token)) return { kind: 'folder' };
      return { kind: 'unavailable', why: e.message };
    }
  }

  /**
   * /healthz: 200 while every token can be answered, or Redis is down but a folder is there; 503 when neither.
   * The port is public, so it says what is wrong, not where Redis is: the log has the address and the error.
   */
  async health(): Promise<{ status: number; text: string }> {
    const down = this.redis.unavailable();
    if (!down) return { status: 200, text: 'ok\n' };
    const since = this.redis.downSince();
    const where = `Redis is unreachable${since ? ` since ${since.toISOString()}` : ''}`;
    if (await this.folder.present()) return { status: 200, text: `degraded: ${where}; tokens are answered from the shared folder only\n` };
    return { status: 503, text: `unavailable: ${where} and no shared folder is mounted (WEBROOT_DIR): every token is answered 503 until Redis is back\n` };
  }
}
