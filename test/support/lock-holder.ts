/**
 * Child process for the lock test: loads everything, says "ready", and on a line on stdin takes the DATA_DIR
 * lock, holds it for a moment while it checks that no other holder is inside, and releases it. Prints
 * "inside-alone" or "overlap", and "took-over" when it was the one that removed a stale lock.
 * argv: <DATA_DIR> <shared marker file>
 */
import { promises as fs } from 'node:fs';
import { lockDataDir } from '../../src/lock.js';

const [dataDir, marker] = process.argv.slice(2);
process.stdout.write('ready\n');
await new Promise((r) => process.stdin.once('data', r));
let tookOver = false;
const lock = await lockDataDir(dataDir!, { waitMs: 120_000, onTakeover: () => (tookOver = true) });
let alone = true;
try {
  await (await fs.open(marker!, 'wx')).close();
} catch {
  alone = false;
}
await new Promise((r) => setTimeout(r, 100));
if (alone) await fs.rm(marker!);
await lock.release();
process.stdout.write(`${alone ? 'inside-alone' : 'overlap'}${tookOver ? ' took-over' : ''}\n`);
process.stdin.destroy();
