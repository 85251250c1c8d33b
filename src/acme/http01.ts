/**
 * The HTTP-01 solver: the key authorization goes into WEBROOT_DIR/.well-known/acme-challenge/<token>,
 * which the webroot (or stock nginx) serves, and is removed afterwards. Files we wrote are tracked so a
 * shutdown can remove what an abandoned order left. With STORE=redis it is also published to Redis
 * (src/webroot/token-source.ts), from which every webroot on every host answers.
 */
import { promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { ChallengeSolver } from './challenge.js';
import type { TokenPublisher } from '../webroot/token-source.js';

export const CHALLENGE_PATH = '.well-known/acme-challenge';
/** RFC 8555 §8.3: a token is base64url; we also bound its length. */
export const TOKEN_PATTERN = '[A-Za-z0-9_-]{1,255}';
export const TOKEN_RE = new RegExp(`^${TOKEN_PATTERN}$`);
// World-readable on purpose, whatever the umask: the webroot (or nginx) may run as another user and only
// reads, and what it serves is public by design (RFC 8555 §8.3).
const DIR_MODE = 0o755;
const FILE_MODE = 0o644;

/**
 * A challenge file, never seen half-written: a temp file beside it, renamed into place (rename is atomic, so a
 * reader finds the old file, no file, or all of the new one). Not fsynced, unlike a key or a certificate
 * (src/certs/atomic.ts): a token needs no durability, since a crash that loses it only fails one validation, and
 * the order is answered again; ten fsyncs of the file and its folder were on the way of every first answer.
 */
export async function writeToken(path: string, data: string, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    const h = await fs.open(tmp, 'wx', mode);
    try {
      await h.chmod(mode); // the umask must not narrow it: the webroot may run as another user
      await h.writeFile(data);
    } finally {
      await h.close();
    }
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

export class WebrootSolver implements ChallengeSolver {
  readonly type = 'http-01';
  private readonly written = new Set<string>();
  private readonly published = new Set<string>();
  /** The folders being prepared: the ten presents of one order, made at once, share one preparation. */
  private preparing: Promise<void> | undefined;

  constructor(
    private readonly webrootDir: string,
    private readonly publisher?: TokenPublisher,
  ) {}

  get challengeDir(): string {
    return join(this.webrootDir, CHALLENGE_PATH);
  }

  private fileFor(token: string): string {
    // The token comes from the CA: never let it name a path outside the challenge folder.
    if (!TOKEN_RE.test(token)) {
      const shown = token.length > 40 ? `${JSON.stringify(token.slice(0, 40))}…` : JSON.stringify(token);
      throw new Error(`http-01: the CA sent the token ${shown}, which is not 1 to 255 characters of A-Z a-z 0-9 _ - (RFC 8555 §8.3); nothing was written`);
    }
    return join(this.challengeDir, token);
  }

  async present(_identifier: string, token: string, keyAuthorization: string): Promise<void> {
    const file = this.fileFor(token);
    await this.sharedPrepare();
    await writeToken(file, keyAuthorization, FILE_MODE);
    this.written.add(file);
    if (this.publisher) {
      await this.publisher.publish(token, keyAuthorization);
      this.published.add(token);
    }
  }

  /** prepareDirs, once for the presents that ask while it runs; a present after it has settled prepares again. */
  private sharedPrepare(): Promise<void> {
    if (!this.preparing) {
      this.preparing = this.prepareDirs().finally(() => (this.preparing = undefined));
    }
    return this.preparing;
  }

  /**
   * .well-known and acme-challenge (and the folders up to the webroot, when we create them) readable by all:
   * mkdir's mode is cut by the umask, and under umask 077 a webroot running as another user reads nothing.
   */
  private async prepareDirs(): Promise<void> {
    const first = await fs.mkdir(this.challengeDir, { recursive: true, mode: DIR_MODE });
    const ours = [join(this.webrootDir, '.well-known'), this.challengeDir];
    if (first !== undefined && !ours.includes(first)) {
      // Created just now, from `first` down to the webroot.
      for (let d = this.webrootDir; d.length >= first.length; d = dirname(d)) {
        ours.unshift(d);
        if (d === dirname(d)) break;
      }
    }
    for (const dir of ours) {
      const mode = (await fs.stat(dir)).mode & 0o777;
      if ((mode & DIR_MODE) === DIR_MODE) continue; // never narrowed, only opened up to read and enter
      try {
        await fs.chmod(dir, mode | DIR_MODE);
      } catch (e) {
        // A shared volume's folder owned by the webroot's user: its owner set its mode; validation will tell.
        if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
      }
    }
  }

  async cleanup(_identifier: string, token: string): Promise<void> {
    const file = this.fileFor(token);
    await fs.rm(file, { force: true });
    this.written.delete(file);
    if (this.publisher && this.published.delete(token)) await this.publisher.withdraw(token);
  }

  /** Removes every challenge file (and Redis token) this process wrote and has not removed yet. */
  async cleanupAll(): Promise<void> {
    const tokens = [...this.published];
    this.published.clear();
    await Promise.all([
      ...[...this.written].map((f) => fs.rm(f, { force: true })),
      // Redis unreachable at shutdown: the TTL (TOKEN_TTL_MS) removes them.
      ...tokens.map((t) => this.publisher!.withdraw(t).catch(() => undefined)),
    ]);
    this.written.clear();
  }

  /** Closes the Redis connection, if tokens are published (after cleanupAll). */
  async close(): Promise<void> {
    await this.publisher?.close();
  }
}
