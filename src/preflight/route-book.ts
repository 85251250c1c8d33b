/**
 * DATA_DIR/preflight.json: the certificates whose route failed its probe, with the backoff before the next
 * probe. Kept across restarts so that a crash loop does not probe (and log) every few seconds.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../certs/atomic.js';
import { KEY_MODE } from '../certs/store.js';

export interface RouteFailure {
  failures: number;
  lastError: string;
  nextAttempt: string;
}

export type RouteBook = Record<string, RouteFailure>;

const FILE = 'preflight.json';

export async function readRouteBook(dataDir: string): Promise<RouteBook> {
  let text: string;
  try {
    text = await fs.readFile(join(dataDir, FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  const data = JSON.parse(text) as { version?: number; certs?: RouteBook };
  if (data.version !== 1 || typeof data.certs !== 'object' || data.certs === null) throw new Error(`${join(dataDir, FILE)} is not a version 1 preflight book; move it aside`);
  return data.certs;
}

export async function writeRouteBook(dataDir: string, certs: RouteBook): Promise<void> {
  await writeFileAtomic(join(dataDir, FILE), `${JSON.stringify({ version: 1, certs }, null, 1)}\n`, KEY_MODE);
}
