/**
 * STORE=redis (issue 20): the manager's files as Redis hashes under REDIS_PREFIX, written by Lua scripts that
 * check the lease's fencing token first (scripts.ts), with private keys sealed by STORE_ENCRYPTION_KEY
 * (encryption.ts) and one active manager at a time (lease.ts).
 */
import { createHash } from 'node:crypto';
import { ReplyError, type Redis } from 'ioredis';
import type { HeldLock, LockOptions } from '../../lock.js';
import type { Logger } from '../../log.js';
import { checkStorePath, StoreUnavailableError, type ChangeStamp, type Store, type StoredFile, type WriteOptions } from '../store.js';
import { createRedis, type RedisConnectionOptions } from './connection.js';
import { open, seal, type EncryptionKey } from './encryption.js';
import { describeHolder, LeaseLostError, RedisLease } from './lease.js';
import { MOVE, REMOVE, STAMP, WRITE } from './scripts.js';

export interface RedisStoreOptions {
  connection: RedisConnectionOptions;
  /** STORE_ENCRYPTION_KEY: seals writes marked secret; undefined keeps them in the clear. */
  encryptionKey?: EncryptionKey;
  /** LEASE_TTL. */
  leaseTtlMs: number;
}

export { LeaseLostError };

/** Folder generations asked for in one MGET: a command of a few tens of kilobytes. */
const STAMP_CHUNK = 1000;

/** A folder path for list(): '' is the top of the store. */
function checkDir(dir: string): string {
  return dir === '' ? '' : checkStorePath(dir);
}

export class RedisStore implements Store {
  readonly kind = 'redis';
  /** Every script that writes, removes or moves a file sets the generation of its folders (scripts.ts). */
  readonly folderStamps = true;
  readonly where: string;
  readonly redis: Redis;
  private readonly prefix: string;
  private readonly lease: RedisLease;
  private readonly shas = new Map<string, string>();

  constructor(
    private readonly o: RedisStoreOptions,
    private readonly log?: Logger,
  ) {
    this.where = `Redis ${o.connection.shown}`;
    this.prefix = o.connection.prefix;
    // Reads a pass makes together (one per certificate) go out in one round trip, not one each.
    // A command waits out a Redis restart or failover (reconnecting with backoff) for up to REDIS_TIMEOUT, instead
    // of failing at the first reconnection attempt; past that it fails as StoreUnavailableError.
    this.redis = createRedis(o.connection, { enableAutoPipelining: true, maxRetriesPerRequest: null });
    // ioredis reports a lost connection as an 'error' event; without a listener Node would end the process.
    this.redis.on('error', () => undefined);
    this.lease = new RedisLease(this.redis, { key: `${this.prefix}lease`, ttlMs: o.leaseTtlMs, where: this.where });
  }

  private fileKey(path: string): string {
    return `${this.prefix}store:file:${path}`;
  }

  async init(): Promise<void> {
    if (this.redis.status === 'wait') {
      try {
        await this.redis.connect();
      } catch (e) {
        throw new Error(`store: ${this.where} cannot be reached (${(e as Error).message}): check REDIS_URL (or REDIS_SENTINELS) and that Redis is up`);
      }
    }
    // Refuse to start against secrets sealed with a key we do not have, rather than fail at the first renewal.
    const kids = Object.entries(await this.redis.hgetall(`${this.prefix}store:kids`)).filter(([, n]) => Number(n) > 0);
    const key = this.o.encryptionKey;
    const foreign = kids.filter(([id]) => id !== key?.id);
    if (foreign.length > 0) {
      const which = foreign.map(([id, n]) => `${n} with the key whose id is ${id}`).join(', ');
      throw new Error(
        key
          ? `store: ${this.where} holds private keys encrypted ${which}, but STORE_ENCRYPTION_KEY is another key (id ${key.id}): set it to the key the store was written with`
          : `store: ${this.where} holds private keys encrypted ${which}, and STORE_ENCRYPTION_KEY is not set: certwrangler refuses to start against an encrypted store without its key; set STORE_ENCRYPTION_KEY`,
      );
    }
    if (!key) this.log?.info(`store: ${this.where}: private keys are kept unencrypted; set STORE_ENCRYPTION_KEY to encrypt them at rest`);
  }

  /** EVALSHA, falling back to EVAL once when Redis has not seen the script (first use, or after a restart). */
  private async run(lua: string, what: string, args: (string | number)[]): Promise<unknown> {
    const token = this.lease.token();
    if (token === undefined) throw new LeaseLostError(`store: refused to write ${what} in ${this.where}: this manager holds no lease (writes need the lease of the active manager)`);
    const argv = [this.prefix, token, ...args];
    try {
      try {
        return await this.redis.evalsha(this.sha(lua), 0, ...argv);
      } catch (e) {
        if (!String((e as Error).message).startsWith('NOSCRIPT')) throw e;
        return await this.redis.eval(lua, 0, ...argv);
      }
    } catch (e) {
      const m = /^(CWFENCE|CWCONFLICT|CWABSENT) ?(.*)$/s.exec(String((e as Error).message));
      if (m?.[1] === 'CWFENCE') throw new LeaseLostError(`store: refused to write ${what} in ${this.where}: the lease was lost to ${describeHolder(m[2])}; this manager is no longer the active one`);
      if (m?.[1] === 'CWCONFLICT') throw new Error(`store: cannot write ${what} in ${this.where}: ${m[2]}`);
      if (m?.[1] === 'CWABSENT') throw Object.assign(new Error(`store: ${m[2]} is not in ${this.where}: nothing to move`), { code: 'ENOENT' });
      if (!(e instanceof ReplyError)) throw new StoreUnavailableError(`store: ${this.where} cannot be reached to write ${what} (${(e as Error).message}): it may or may not have been written; the next pass reads the store again`);
      throw new Error(`store: ${what} in ${this.where}: ${(e as Error).message}`);
    }
  }

  /** A read-only script (no fence: it writes nothing), by EVALSHA with EVAL once when Redis has not seen it. */
  private readScript(lua: string, what: string, args: string[]): Promise<unknown> {
    return this.reach(what, async () => {
      const argv = [this.prefix, ...args];
      try {
        return await this.redis.evalsha(this.sha(lua), 0, ...argv);
      } catch (e) {
        if (!String((e as Error).message).startsWith('NOSCRIPT')) throw e;
        return await this.redis.eval(lua, 0, ...argv);
      }
    });
  }

  private sha(lua: string): string {
    let sha = this.shas.get(lua);
    if (!sha) this.shas.set(lua, (sha = createHash('sha1').update(lua).digest('hex')));
    return sha;
  }

  private sealed(data: string, secret: boolean | undefined): [string, string] {
    const key = this.o.encryptionKey;
    return secret && key ? [seal(key, data), key.id] : [data, ''];
  }

  /**
   * A command that failed for want of Redis (connection lost, timed out) rather than by Redis's answer: said as
   * StoreUnavailableError, so that no reader takes it for a missing or broken copy.
   */
  private async reach<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof ReplyError || e instanceof StoreUnavailableError) throw e;
      throw new StoreUnavailableError(`store: ${this.where} cannot be reached for ${what} (${(e as Error).message}): the pass stops here, and the next one tries again`);
    }
  }

  async read(path: string): Promise<string | undefined> {
    const h = await this.reach(path, () => this.redis.hgetall(this.fileKey(checkStorePath(path))));
    if (h.data === undefined) return undefined;
    return h.kid ? open(this.o.encryptionKey, h.data, `${path} in ${this.where}`) : h.data;
  }

  async write(path: string, data: string, opts?: WriteOptions): Promise<void> {
    await this.run(WRITE, path, [checkStorePath(path), ...this.sealed(data, opts?.secret)]);
  }

  async writeSet(dir: string, files: StoredFile[]): Promise<void> {
    checkStorePath(dir);
    const args = files.flatMap((f) => {
      if (f.name.includes('/')) throw new Error(`store: "${f.name}" in the set for ${dir} is not a plain name (no '/')`);
      return [checkStorePath(`${dir}/${f.name}`), ...this.sealed(f.data, f.secret)];
    });
    if (args.length > 0) await this.run(WRITE, `the set ${dir} (${files.map((f) => f.name).join(', ')})`, args);
  }

  /** Nothing to finish: a set is one script, whole or not at all. */
  async recover(): Promise<void> {}

  async list(dir: string): Promise<string[]> {
    const key = `${this.prefix}store:dir:${checkDir(dir)}`;
    return (await this.reach(dir || 'the top', () => this.redis.smembers(key))).sort();
  }

  /** A folder's stamp is its generation (scripts.ts); a file's, the gen of its last write. */
  async stamp(path: string): Promise<ChangeStamp | undefined> {
    return ((await this.readScript(STAMP, path, [checkStorePath(path)])) as string | null) ?? undefined;
  }

  /**
   * MGET of the folder generations, STAMP_CHUNK keys a command, sent together (one round trip for a pass's
   * certificates); a path without one (a file, an absent folder, a folder older than generations) is asked again
   * through the STAMP script, one command each.
   */
  async stamps(paths: string[]): Promise<(ChangeStamp | undefined)[]> {
    const keys = paths.map((p) => `${this.prefix}store:dgen:${checkStorePath(p)}`);
    const what = paths.length === 1 ? paths[0]! : `${paths.length} stamps`;
    const chunks: string[][] = [];
    for (let i = 0; i < keys.length; i += STAMP_CHUNK) chunks.push(keys.slice(i, i + STAMP_CHUNK));
    const gens = (await this.reach(what, () => Promise.all(chunks.map((c) => this.redis.mget(c))))).flat();
    return Promise.all(gens.map((g, i) => (g !== null ? g : this.stamp(paths[i]!))));
  }
  async remove(path: string): Promise<void> {
    await this.run(REMOVE, path, [checkStorePath(path)]);
  }

  async move(from: string, to: string): Promise<void> {
    await this.run(MOVE, `${from} (moved to ${to})`, [checkStorePath(from), checkStorePath(to)]);
  }

  /** The lease: `onStandby` makes this manager wait as a standby while another leads. */
  lock(opts: LockOptions): Promise<HeldLock> {
    return this.lease.take(opts);
  }

  /** Who holds the lease now ("<host> (pid …)"), for the status page of a standby. */
  async leader(): Promise<string> {
    return describeHolder(await this.lease.holder());
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
