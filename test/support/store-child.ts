/**
 * Child process for the store tests, on the store STORE names (files: DATA_DIR; redis: REDIS_URL, REDIS_PREFIX,
 * LEASE_TTL, STORE_ENCRYPTION_KEY), so that a test can SIGKILL, SIGSTOP and SIGCONT a real writer.
 *   argv "lease": takes the lock as a standby would; prints "standby <leader>", "unreachable <retry ms> <why>",
 *     "leader <pid>", "lost <why>"; then,
 *     for each stdin line "write <path> <text>", writes and prints "wrote" or "refused <error>".
 *   argv "churn <dir>": takes the lock and replaces the set in <dir> forever, alternating two sets whose three files
 *     all name the same round; prints "ready" after the first.
 */
import { createInterface } from 'node:readline';
import { createLogger } from '../../src/log.js';
import { FilesStore } from '../../src/stores/files/files-store.js';
import { redis } from '../../src/stores/redis/entry.js';
import type { Store } from '../../src/stores/store.js';

const env = process.env;
const store: Store = env.STORE === 'redis' ? redis.create(redis.fromEnv(env), { log: createLogger('silent') }) : new FilesStore(env.DATA_DIR!);
await store.init();
const [role, dir] = process.argv.slice(2);
const say = (line: string) => process.stdout.write(`${line.replace(/\n/g, ' ')}\n`);

if (role === 'lease') {
  await store.lock({ waitMs: 0, onStandby: (leader) => say(`standby ${leader}`), onLost: (why) => say(`lost ${why}`), onUnreachable: (why, retryMs) => say(`unreachable ${retryMs} ${why}`) });
  say(`leader ${process.pid}`);
  for await (const line of createInterface({ input: process.stdin })) {
    const [, path, text] = /^write (\S+) (.*)$/.exec(line) ?? [];
    if (!path) continue;
    try {
      await store.write(path, text ?? '');
      say('wrote');
    } catch (e) {
      say(`refused ${(e as Error).message}`);
    }
  }
} else if (role === 'churn') {
  await store.lock({ waitMs: 30_000 });
  for (let i = 0; ; i++) {
    const round = `round ${i}\n`.repeat(2000); // big enough that a kill lands inside a write
    await store.writeSet(dir!, ['privkey.pem', 'cert.pem', 'chain.pem'].map((name) => ({ name, data: `${name} ${round}`, secret: name === 'privkey.pem' })));
    if (i === 0) say('ready');
  }
}
