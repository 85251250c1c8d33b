/**
 * STORE → its registry entry (src/adapters.ts). Each store lives in its own folder and reads its own variables
 * (files: DATA_DIR; redis: REDIS_*, STORE_ENCRYPTION_KEY, LEASE_TTL); adding one is a folder and a line here.
 */
import { createOf, fromEnvOf, namesOf, type OptionsOf } from '../adapters.js';
import type { Env } from '../env.js';
import type { Store, StoreContext } from './store.js';
import { files } from './files/files-store.js';
import { redis } from './redis/entry.js';

export const STORE_REGISTRY = { files, redis };

export type StoreName = keyof typeof STORE_REGISTRY;
export const STORES = namesOf(STORE_REGISTRY);

/** The chosen store's own options, as its entry read them. */
export type StoreOptions = OptionsOf<typeof STORE_REGISTRY, StoreName>;

export function storeFromEnv(name: StoreName, env: Env): StoreOptions {
  return fromEnvOf(STORE_REGISTRY, name, env);
}

/** `options` are what `storeFromEnv(name)` returned: loadConfig keeps the two together. */
export function createStore(name: StoreName, options: StoreOptions, context: StoreContext): Store {
  return createOf(STORE_REGISTRY, name, options, context);
}
