/** STORE=redis's registry entry: REDIS_* (connection.ts), STORE_ENCRYPTION_KEY and LEASE_TTL, read here. */
import { parseDuration, type Env } from '../../env.js';
import type { StoreEntry } from '../store.js';
import { REDIS_SECRETS, redisFromEnv } from './connection.js';
import { ENCRYPTION_SECRETS, encryptionKeyFromEnv } from './encryption.js';
import { DEFAULT_LEASE_TTL_MS } from './lease.js';
import { RedisStore, type RedisStoreOptions } from './redis-store.js';

/** A lease shorter than this would be renewed more than three times a second. */
const MIN_LEASE_TTL_MS = 1_000;

function fromEnv(env: Env): RedisStoreOptions {
  const encryptionKey = encryptionKeyFromEnv(env);
  return {
    connection: redisFromEnv(env),
    ...(encryptionKey ? { encryptionKey } : {}),
    leaseTtlMs: parseDuration(env, 'LEASE_TTL', DEFAULT_LEASE_TTL_MS, MIN_LEASE_TTL_MS),
  };
}

export const redis: StoreEntry<RedisStoreOptions> = {
  fromEnv,
  create: (options, { log }) => new RedisStore(options, log),
  secrets: [...REDIS_SECRETS, ...ENCRYPTION_SECRETS],
};
