/**
 * REDIS_EXPORT=nethserver (issue 20 item 4): each certificate also as NethServer's Traefik module keeps it, one
 * Redis hash per name it covers, `HSET <prefix>/certificate/<name> cert <base64 full chain PEM> key <base64 key
 * PEM>`, and a `certificate-updated` event, `{"domain","node","action"}`, published on
 * `<prefix>/event/certificate-updated`, so the seed's consumers (`redis-exec HGET … key | base64 -d`) work
 * unchanged.
 *
 * The private key is written to Redis here in the clear (base64 is no protection), because that is what these
 * consumers read; it is the one place certwrangler does so (STORE_ENCRYPTION_KEY does not apply to it).
 * A wildcard certificate is written under its literal name, `<prefix>/certificate/*.example.com`, as Traefik
 * names it: the names it would cover cannot be listed. Hashes are never deleted: a consumer may still use one.
 * A self-signed placeholder is not exported.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { parseCert } from '../../certs/parse.js';
import { createRedis } from '../../stores/redis/connection.js';
import type { KeptCert, Output } from '../outputs.js';
import type { NethserverConfig } from './config.js';

export interface CertificateUpdated {
  domain: string;
  node: string;
  /** "created": the hash was not there (or held no certificate); "updated": it held another one. */
  action: 'created' | 'updated';
}

export class NethserverOutput implements Output {
  readonly name = 'nethserver';
  readonly perCertificate = true;
  private redis: Redis | undefined;
  /** Certificate name → the version last written or found in Redis, and its first name: a pass checks those with one EXISTS each. */
  private readonly confirmed = new Map<string, { version: string; first: string }>();

  constructor(private readonly config: NethserverConfig) {}

  hashKey(name: string): string {
    return `${this.config.prefix}/certificate/${name}`;
  }

  get channel(): string {
    return `${this.config.prefix}/event/certificate-updated`;
  }

  private client(): Redis {
    if (!this.redis) {
      this.redis = createRedis(this.config.connection);
      // A lost connection is reported by the write that needs it (the pass logs it and retries at the next);
      // ioredis would otherwise print every reconnect failure as an unhandled error.
      this.redis.on('error', () => undefined);
    }
    return this.redis;
  }

  /** Writes the hashes that differ from CERTS_DIR; returns what it wrote ("redis <key>"), for the log. */
  async write(certs: KeptCert[]): Promise<string[]> {
    const redis = this.client();
    const todo = await this.unconfirmed(redis, certs);
    if (todo.length === 0) return [];
    const wanted: { cert: KeptCert; key: string; domain: string; fields: { cert: string; key: string } }[] = [];
    const firsts = new Map<string, string>();
    for (const c of todo) {
      const dir = join(this.config.certsDir, c.version);
      const [fullchain, privkey] = await Promise.all([fs.readFile(join(dir, 'fullchain.pem'), 'utf8'), fs.readFile(join(dir, 'privkey.pem'), 'utf8')]);
      const fields = { cert: Buffer.from(fullchain).toString('base64'), key: Buffer.from(privkey).toString('base64') };
      const info = parseCert(fullchain);
      // A self-signed placeholder lets a balancer start; a consumer told of it would load it, only to be told
      // again of the real certificate seconds later. It is exported when the real one replaces it.
      if (info.selfSigned) continue;
      const names = info.names;
      firsts.set(c.name, names[0]!);
      for (const domain of names) wanted.push({ cert: c, key: this.hashKey(domain), domain, fields });
    }
    // One round trip to compare, one MULTI to write: the hashes and their events together.
    const read = await redis.pipeline(wanted.map((w) => ['hmget', w.key, 'cert', 'key'])).exec();
    const multi = redis.multi();
    const written: string[] = [];
    wanted.forEach((w, i) => {
      const [err, had] = read![i]! as [Error | null, (string | null)[]];
      if (err) throw new Error(`nethserver export: cannot read ${w.key} from Redis ${this.config.connection.shown}: ${err.message}`);
      if (had[0] === w.fields.cert && had[1] === w.fields.key) return;
      const event: CertificateUpdated = { domain: w.domain, node: this.config.node, action: had[0] ? 'updated' : 'created' };
      multi.hset(w.key, 'cert', w.fields.cert, 'key', w.fields.key);
      multi.publish(this.channel, JSON.stringify(event));
      written.push(`redis ${w.key}`);
    });
    if (written.length > 0) {
      const results = await multi.exec();
      const failed = results?.find(([e]) => e);
      if (!results || failed) throw new Error(`nethserver export: Redis ${this.config.connection.shown} refused the write: ${failed?.[0]?.message ?? 'transaction aborted'}`);
    } else multi.discard();
    for (const c of todo) {
      const first = firsts.get(c.name);
      if (first) this.confirmed.set(c.name, { version: c.version, first });
    }
    return written;
  }

  /** The certificates whose hashes must be compared: a new version, or a hash gone from Redis (flushed, restored). */
  private async unconfirmed(redis: Redis, certs: KeptCert[]): Promise<KeptCert[]> {
    const known = certs.filter((c) => this.confirmed.get(c.name)?.version === c.version);
    const todo = certs.filter((c) => this.confirmed.get(c.name)?.version !== c.version);
    if (known.length === 0) return todo;
    // A certificate's first name is enough to notice a flush or a restore; another name's hash deleted by hand
    // alone is written again at the next renewal or restart.
    const exists = await redis.pipeline(known.map((c) => ['exists', this.hashKey(this.confirmed.get(c.name)!.first)])).exec();
    known.forEach((c, i) => {
      if (exists?.[i]?.[1] !== 1) todo.push(c);
    });
    return todo;
  }

  async close(): Promise<void> {
    const r = this.redis;
    this.redis = undefined;
    if (r?.status === 'ready') await r.quit().catch(() => r.disconnect());
    else r?.disconnect();
  }
}
