/** DATA_DIR/verify.json: whether the balancers serve each certificate that was pushed, by fingerprint. */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../certs/atomic.js';
import { KEY_MODE } from '../certs/store.js';

export interface VerifyRecord {
  fingerprint: string;
  served: boolean;
  checkedAt: string;
  detail?: string;
}

export type VerifyBook = Record<string, VerifyRecord>;

const FILE = 'verify.json';

export async function readVerifyBook(dataDir: string): Promise<VerifyBook> {
  try {
    const data = JSON.parse(await fs.readFile(join(dataDir, FILE), 'utf8')) as { version?: number; certs?: VerifyBook };
    return data.version === 1 && data.certs && typeof data.certs === 'object' ? data.certs : {};
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    // A record of what was served is no reason to stop: the next check writes it again.
    return {};
  }
}

export async function writeVerifyBook(dataDir: string, certs: VerifyBook): Promise<void> {
  await writeFileAtomic(join(dataDir, FILE), `${JSON.stringify({ version: 1, certs }, null, 1)}\n`, KEY_MODE);
}
