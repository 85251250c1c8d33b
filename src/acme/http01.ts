/**
 * The HTTP-01 solver: the key authorization goes into WEBROOT_DIR/.well-known/acme-challenge/<token>,
 * which the webroot (or stock nginx) serves, and is removed afterwards. Files we wrote are tracked so a
 * shutdown can remove what an abandoned order left.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../certs/atomic.js';
import type { ChallengeSolver } from './challenge.js';

export const CHALLENGE_PATH = '.well-known/acme-challenge';
/** RFC 8555 §8.3: a token is base64url; we also bound its length. */
export const TOKEN_PATTERN = '[A-Za-z0-9_-]{1,255}';
export const TOKEN_RE = new RegExp(`^${TOKEN_PATTERN}$`);

export class WebrootSolver implements ChallengeSolver {
  readonly type = 'http-01';
  private readonly written = new Set<string>();

  constructor(private readonly webrootDir: string) {}

  get challengeDir(): string {
    return join(this.webrootDir, CHALLENGE_PATH);
  }

  private fileFor(token: string): string {
    // The token comes from the CA: never let it name a path outside the challenge folder.
    if (!TOKEN_RE.test(token)) throw new Error(`http-01: the CA sent a token with unexpected characters`);
    return join(this.challengeDir, token);
  }

  async present(_identifier: string, token: string, keyAuthorization: string): Promise<void> {
    const file = this.fileFor(token);
    // World-readable on purpose: the webroot may run as another user and only needs to read.
    await fs.mkdir(this.challengeDir, { recursive: true, mode: 0o755 });
    await writeFileAtomic(file, keyAuthorization, 0o644);
    this.written.add(file);
  }

  async cleanup(_identifier: string, token: string): Promise<void> {
    const file = this.fileFor(token);
    await fs.rm(file, { force: true });
    this.written.delete(file);
  }

  /** Removes every challenge file this process wrote and has not removed yet. */
  async cleanupAll(): Promise<void> {
    await Promise.all([...this.written].map((f) => fs.rm(f, { force: true })));
    this.written.clear();
  }
}
