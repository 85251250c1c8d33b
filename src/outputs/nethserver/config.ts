/**
 * REDIS_EXPORT=nethserver and its variables (issue 20 item 4), read once, here: the Redis connection is the one
 * every Redis user shares (REDIS_URL, REDIS_SENTINELS…, src/stores/redis/connection.ts); the prefix and node are
 * the export's own.
 */
import { hostname } from 'node:os';
import { ConfigError, str, type Env } from '../../env.js';
import { redisFromEnv, type RedisConnectionOptions } from '../../stores/redis/connection.js';

export const REDIS_EXPORTS = ['nethserver'] as const;

export interface NethserverConfig {
  connection: RedisConnectionOptions;
  /** REDIS_EXPORT_PREFIX: the Traefik module's key, e.g. "module/traefik1"; REDIS_PREFIX does not apply. */
  prefix: string;
  /** REDIS_EXPORT_NODE: the event's "node" (NethServer's NODE_ID); this host's name by default. */
  node: string;
  /** CERTS_DIR: the export reads the certificate and key of each version it is told of. */
  certsDir: string;
}

// The seed's consumers read keys such as module/traefik1/certificate/<fqdn>: '/'-separated words, no spaces.
const PREFIX_RE = /^[A-Za-z0-9_.:-]+(\/[A-Za-z0-9_.:-]+)*$/;

export function nethserverFromEnv(env: Env, certsDir: string): NethserverConfig | undefined {
  const kind = str(env, 'REDIS_EXPORT')?.toLowerCase();
  if (kind === undefined) return undefined;
  if (!(REDIS_EXPORTS as readonly string[]).includes(kind)) throw new ConfigError('REDIS_EXPORT', env.REDIS_EXPORT, `one of ${REDIS_EXPORTS.join(', ')} (or unset for no export)`);
  const prefix = str(env, 'REDIS_EXPORT_PREFIX');
  if (prefix === undefined || !PREFIX_RE.test(prefix)) {
    throw new ConfigError('REDIS_EXPORT_PREFIX', prefix, "the NethServer Traefik module's key, e.g. module/traefik1 ('/'-separated words of A-Z a-z 0-9 _ . : -, no leading or trailing '/'; required with REDIS_EXPORT=nethserver)");
  }
  return { connection: redisFromEnv(env), prefix, node: str(env, 'REDIS_EXPORT_NODE') ?? hostname(), certsDir };
}
