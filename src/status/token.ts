/**
 * The status API's token when STATUS_TOKEN is not set: generated once into DATA_DIR/status-token (0600,
 * written atomically) and kept across restarts, so that `certwrangler request` and `certwrangler reconcile`
 * on the same host (or in the same container) can read it, and a web page that reaches the port cannot.
 * Never logged.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../certs/atomic.js';

export const STATUS_TOKEN_FILE = 'status-token';
const TOKEN_MODE = 0o600;
/** 256 bits, base64url: far past guessing, and safe in a header and a shell variable. */
const TOKEN_BYTES = 32;
const TOKEN_RE = /^[A-Za-z0-9_-]{16,}$/;

export const statusTokenPath = (dataDir: string): string => join(dataDir, STATUS_TOKEN_FILE);

/** The token in DATA_DIR/status-token; a new one when the file is missing or does not hold one. */
export async function loadOrCreateStatusToken(dataDir: string): Promise<{ token: string; path: string; created: boolean }> {
  const path = statusTokenPath(dataDir);
  try {
    const token = (await fs.readFile(path, 'utf8')).trim();
    if (TOKEN_RE.test(token)) {
      // An older copy restored from a backup may have lost its mode: the token is a credential.
      if (((await fs.stat(path)).mode & 0o777) !== TOKEN_MODE) await fs.chmod(path, TOKEN_MODE);
      return { token, path, created: false };
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`status API token ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): fix its permissions, or set STATUS_TOKEN`);
  }
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, `${token}\n`, TOKEN_MODE);
  return { token, path, created: true };
}

/** For the CLI: STATUS_TOKEN, else the manager's generated file. Undefined when neither exists. */
export function readStatusToken(dataDir: string, envToken: string | undefined): { token: string; from: string } | undefined {
  if (envToken !== undefined) return { token: envToken, from: 'STATUS_TOKEN' };
  const path = statusTokenPath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`status API token ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): run as the manager's user, or set STATUS_TOKEN`);
  }
  return TOKEN_RE.test(text) ? { token: text, from: path } : undefined;
}
