/**
 * A JSON book in the store (issue 20): the one way every small state file (reload books, claims, unwanted,
 * imported, preflight, verify, CA health, DNS upkeep, requests, the ledger) is loaded, checked, changed and
 * written, so that each book only says what it holds and what an operator should do when it is bad.
 *
 * - absent → the book's empty value; unreadable or malformed → an Error naming the store path and what to do
 *   (or, for a `lenient` book whose content is no reason to stop, the empty value);
 * - changes run one at a time on a promise chain, so concurrent callers cannot lose each other's entries;
 * - writes replace the whole text through the Store (atomic on every store), and are skipped when the text
 *   would not change.
 */
import { createHash } from 'node:crypto';
import { StoreUnavailableError } from './store.js';
import type { ChangeStamp, Store } from './store.js';
import { FilesStore } from './files/files-store.js';

/**
 * How a store path is named in logs and errors: the file itself on the files store (where an operator moves
 * it aside, and what the messages always said), else the path and the store it is in.
 */
export function shownPath(store: Store, path: string): string {
  return store instanceof FilesStore ? store.pathOf(path) : `${path} in ${store.where}`;
}

export interface JsonBookSpec<T> {
  /** The store path, e.g. "rancher-reloads.json". */
  path: string;
  /** The value of an absent book (a fresh one each call: callers may change it). */
  empty: () => T;
  /** Checks what was parsed and returns it typed; throws an Error saying what is wrong. */
  validate: (parsed: unknown) => T;
  /** JSON.stringify's indentation; undefined writes one line (each book keeps the layout it always had). */
  indent?: number;
  /** The message for a book that cannot be read (`why` is the store's error). */
  unreadable?: (shown: string, why: string) => string;
  /** The message for a book that does not parse or validate. */
  invalid?: (shown: string, why: string) => string;
  /** Bad or unreadable content counts as the empty book: what it records is no reason to stop. */
  lenient?: boolean;
  /**
   * `load` hands out the same value while the book's stamp has not moved, instead of reading and parsing it again
   * (issue 22: label-claims.json holds a claim per certificate, and every pass reads it). Its callers must not
   * change what `load` gives them; `change` always gets a fresh copy.
   */
  shared?: boolean;
}

export class JsonBook<T> {
  /** The path as logs and errors name it (shownPath). */
  readonly shown: string;
  private chain: Promise<unknown> = Promise.resolve();
  /**
   * The digest of the text this book last read or wrote: a save of the same text is skipped. A digest, not the
   * text: label-claims.json is about 200 bytes a certificate, 20 MB held for nothing at 100,000 (issue 22).
   */
  private lastDigest: string | undefined;
  /** A `shared` book's last value, and the stamp taken before it was read. */
  private held: { stamp: ChangeStamp; value: T } | undefined;

  constructor(
    readonly store: Store,
    private readonly spec: JsonBookSpec<T>,
  ) {
    this.shown = shownPath(store, spec.path);
  }

  get path(): string {
    return this.spec.path;
  }

  /** The book as stored now (a `shared` book: the value it gave last, when its stamp has not moved since). */
  async load(): Promise<T> {
    if (!this.spec.shared) return this.read();
    // Taken before the read: a write during it leaves another stamp, and the next load reads again.
    const stamp = await this.store.stamp(this.spec.path).catch(() => undefined);
    if (stamp !== undefined && this.held?.stamp === stamp) return this.held.value;
    this.held = undefined;
    const value = await this.read();
    if (stamp !== undefined && this.lastDigest !== undefined) this.held = { stamp, value };
    return value;
  }

  private async read(): Promise<T> {
    let text: string | undefined;
    try {
      text = await this.store.read(this.spec.path);
    } catch (e) {
      this.lastDigest = undefined;
      // Lenient books read a bad book as empty, never an unreachable store: the next change would write over it.
      if (this.spec.lenient && !(e instanceof StoreUnavailableError)) return this.spec.empty();
      const why = (e as Error).message;
      throw new Error(this.spec.unreadable ? this.spec.unreadable(this.shown, why) : `${this.shown} is unreadable (${why})`);
    }
    this.lastDigest = undefined;
    if (text === undefined) return this.spec.empty();
    try {
      const value = this.spec.validate(JSON.parse(text));
      this.lastDigest = digestOf(text);
      return value;
    } catch (e) {
      if (this.spec.lenient) return this.spec.empty();
      const why = (e as Error).message;
      throw new Error(this.spec.invalid ? this.spec.invalid(this.shown, why) : `${this.shown} is not valid (${why}); fix it or move it aside`);
    }
  }

  /** Writes `value` whole, after any change in flight; nothing is written when the text is what the store holds. */
  save(value: T): Promise<void> {
    return this.serial(async () => {
      await this.write(value);
    });
  }

  /**
   * Loads, applies `fn` and writes the result, one change at a time. `fn` returns the new value (it may change
   * and return the one it was given), or undefined to leave the book as it is. Resolves to the book after it.
   */
  change(fn: (current: T) => T | undefined | Promise<T | undefined>): Promise<T> {
    return this.serial(async () => {
      const current = await this.read();
      const next = await fn(current);
      if (next === undefined) return current;
      await this.write(next);
      return next;
    });
  }

  private async write(value: T): Promise<void> {
    const text = `${JSON.stringify(value, null, this.spec.indent)}\n`;
    const digest = digestOf(text);
    if (digest === this.lastDigest) return;
    this.held = undefined;
    await this.store.write(this.spec.path, text);
    this.lastDigest = digest;
  }

  private serial<R>(run: () => Promise<R>): Promise<R> {
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }
}

function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('base64');
}
