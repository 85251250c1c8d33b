/**
 * A listing page's body read as it streams in (issue 22): hashed chunk by chunk and copied into one buffer that
 * every page of the manager's listings reuses, instead of axios keeping each page's 64 KB chunks and joining
 * them into a buffer of its own (2.6 MB a page of 1,000 certificates, 39 MB of garbage at 10,000, freed only by
 * a full collection once their holders reached the old generation). A page whose digest is the last listing's is
 * then dropped without being decoded; any other is decoded from the shared buffer.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

/** A body that did not arrive whole: cut short by the server or the network, or not done within the timeout. */
export class BodyError extends Error {
  constructor(
    message: string,
    readonly timedOut = false,
  ) {
    super(message);
    this.name = 'BodyError';
  }
}

/** Pages of 1,000 certificates are about 2.6 MB; a Content-Length beyond this is grown to as the bytes come, not reserved. */
const RESERVE_CAP = 32 * 1024 * 1024;

/** One growing buffer that holds the page being read; what it held before is overwritten by the next page. */
export class PageBuffer {
  private buf = Buffer.alloc(0);
  length = 0;

  /**
   * Starts a page: the last one is forgotten, and room is made for `bytes` (its Content-Length) at once instead of
   * growing to it; NaN (no Content-Length) or a length past the cap is not reserved.
   */
  start(bytes: number): void {
    this.length = 0;
    if (Number.isSafeInteger(bytes) && bytes > this.buf.length && bytes <= RESERVE_CAP) this.grow(bytes);
  }

  append(chunk: Buffer): void {
    const need = this.length + chunk.length;
    // Doubling when the length was not said: a page of 2.6 MB costs a few copies once, then none.
    if (need > this.buf.length) this.grow(Math.max(need, this.buf.length * 2, 64 * 1024));
    chunk.copy(this.buf, this.length);
    this.length = need;
  }

  private grow(size: number): void {
    const bigger = Buffer.allocUnsafeSlow(size);
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }

  /** The body as text, without a UTF-8 byte order mark. */
  text(): string {
    const b = this.buf;
    const bom = this.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;
    return b.toString('utf8', bom ? 3 : 0, this.length);
  }

  /** Forgets the last page (certificates' text, which the manager keeps no copy of between passes). */
  clear(): void {
    this.buf.fill(0, 0, this.length);
    this.length = 0;
  }
}

/**
 * Reads `body` into `into` and resolves with the SHA-256 of its bytes (base64). Rejects with a BodyError when the
 * stream ends in an error or closes before its end (a connection cut mid-body), or when it is not done `timeoutMs`
 * after it began: axios's timeout ends once the headers are in, so the body needs its own.
 */
export function readBody(body: Readable, into: PageBuffer, timeoutMs: number): Promise<string> {
  into.length = 0;
  const hash = createHash('sha256');
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err?: BodyError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        body.destroy();
        reject(err);
      } else resolve(hash.digest('base64'));
    };
    const timer = setTimeout(() => finish(new BodyError(`the answer's body did not arrive whole within ${timeoutMs} ms (RANCHER_TIMEOUT)`, true)), timeoutMs);
    body.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      into.append(chunk);
    });
    body.once('end', () => finish());
    body.once('error', (e: Error) => finish(new BodyError(`the answer's body was cut short after ${into.length} bytes (${e.message})`)));
    body.once('close', () => finish(new BodyError(`the answer's body was cut short after ${into.length} bytes`)));
  });
}
