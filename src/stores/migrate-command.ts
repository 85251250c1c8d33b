/**
 * `certwrangler store migrate --from <store> --to <store> [--force]`: opens both stores from the environment
 * (files: DATA_DIR; redis: REDIS_*, STORE_ENCRYPTION_KEY), holds both locks as `--once` does (no manager may
 * write to either meanwhile), copies and verifies (migrate.ts), and prints what it did.
 */
import { isAbsolute, relative, sep } from 'node:path';
import { STATUS_TOKEN_FILE } from '../status/token.js';
import type { Config } from '../config.js';
import type { Env } from '../env.js';
import type { HeldLock } from '../lock.js';
import type { Logger } from '../log.js';
import { FilesStore } from './files/files-store.js';
import { describeMigration, migrateStore, MigrateError } from './migrate.js';
import { redis } from './redis/entry.js';
import type { Store } from './store.js';

export const MIGRATE_STORES = ['files', 'redis'] as const;
export type StoreName = (typeof MIGRATE_STORES)[number];

// The STORE registry (src/stores/registry.ts) builds the same two; this command names them explicitly because
// it needs both at once, whatever STORE says.
function openStore(name: StoreName, config: Config, env: Env, log: Logger): Store {
  return name === 'files' ? new FilesStore(config.dataDir) : redis.create(redis.fromEnv(env), { log });
}

/** Exit code: 0 copied and verified; 1 refused (target not empty) or the copy does not match. */
export async function migrateCommand(config: Config, log: Logger, args: { from: StoreName; to: StoreName; force: boolean }, env: Env = process.env): Promise<number> {
  const from = openStore(args.from, config, env, log);
  const to = openStore(args.to, config, env, log);
  const locks: HeldLock[] = [];
  try {
    for (const s of [from, to]) {
      await s.init();
      locks.push(
        await s.lock({
          waitMs: config.lockWaitMs,
          onWait: (holder) => log.info(`${s.where} is in use by a manager (${holder}): waiting up to ${config.lockWaitMs / 1000} s (LOCK_WAIT); stop the managers before migrating`),
        }),
      );
    }
    const certsInData = relative(config.dataDir, config.certsDir);
    const exclude = [STATUS_TOKEN_FILE, ...(certsInData && !certsInData.startsWith('..') && !isAbsolute(certsInData) ? [certsInData.split(sep).join('/')] : [])];
    const report = await migrateStore(from, to, { force: args.force, exclude });
    for (const line of describeMigration(from, to, report)) console.log(line);
    return 0;
  } catch (e) {
    if (!(e instanceof MigrateError)) throw e;
    process.stderr.write(`certwrangler: ${e.message}\n`);
    return 1;
  } finally {
    for (const l of locks.reverse()) await l.release();
    await Promise.all([from.close(), to.close()]);
  }
}
