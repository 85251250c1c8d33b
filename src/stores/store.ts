/**
 * Where the manager keeps what it must not forget (issue 20): accounts, certificates and keys, their meta and
 * status, the rate-limit ledger, run-time requests, label claims, pending reloads and the other books.
 *
 * The interface is deliberately small: path-named texts. Every book and the certificate store read and write
 * through it, so the same code runs over files (STORE=files, DATA_DIR, the default) and Redis (STORE=redis).
 * Paths are relative and '/'-separated ("certs/example.com/privkey.pem", "rancher-reloads.json"); on the files
 * store they are exactly the files DATA_DIR always held, so STORE=files keeps its layout byte for byte.
 */
import type { HeldLock, LockOptions } from '../lock.js';

export interface StoredFile {
  /** A plain name inside the set's folder: no '/'. */
  name: string;
  data: string;
  /** Key material: mode 0600 on files, encrypted at rest on Redis when STORE_ENCRYPTION_KEY is set. */
  secret?: boolean;
  /** Files store only: the mode when not secret (default 0600; certificates are 0644 for their readers). */
  mode?: number;
}

export interface WriteOptions {
  secret?: boolean;
  mode?: number;
}

/** A stamp that changes whenever the path's content may have changed (files: inode, size, mtime, ctime). */
export type ChangeStamp = string;

export interface Store {
  /** The STORE name. */
  readonly kind: string;
  /** For logs and errors, never a credential: "DATA_DIR /data", "Redis redis://cache:6379/0". */
  readonly where: string;
  /** Prepares the store (folders, connection); a store that cannot be used is an Error saying why and what to do. */
  init(): Promise<void>;
  /** The text at `path`, or undefined when there is none. */
  read(path: string): Promise<string | undefined>;
  /** Replaces `path` whole: a reader sees the old text or the new one, never a part. */
  write(path: string, data: string, opts?: WriteOptions): Promise<void>;
  /**
   * Replaces the files of the set in `dir` together: after a crash at any point a reader finds the old set or the
   * new one (a key never beside a certificate it does not match). Other files in `dir` are left alone.
   */
  writeSet(dir: string, files: StoredFile[]): Promise<void>;
  /** Finishes or discards a set write a crash interrupted (files: the .commit marker); a no-op where writes are atomic. */
  recover(dir: string): Promise<void>;
  /** The names directly under `dir` (files and folders; '' is the top), [] when there is none. */
  list(dir: string): Promise<string[]>;
  /**
   * Several files of one folder at once (optional; `readFolder` below reads them one by one without it): the
   * files store lists the folder once and reads only what is there, so a cold pass over 10,000 certificates
   * neither opens nor fails on the files most folders do not hold (issue 22).
   */
  readFolder?(dir: string, names: readonly string[]): Promise<FolderRead>;
  /** The change stamp of `path`, undefined when absent: lets an index skip a read when nothing changed. */
  stamp(path: string): Promise<ChangeStamp | undefined>;
  /**
   * The stamps of many paths at once, in their order (issue 22: a warm pass stamps every certificate). Optional:
   * `stampsOf` falls back to one `stamp` each. Files: no promise per path; Redis: a few round trips in all.
   */
  stamps?(paths: string[]): Promise<(ChangeStamp | undefined)[]>;
  /**
   * A folder's stamp moves whenever a file directly in it is written, removed or moved by the store (files: every
   * write renames into its folder; Redis: the folder's generation, moved by the same script). Absent or false:
   * only a file's own stamp says it changed.
   */
  readonly folderStamps?: boolean;
  /** Removes `path` (a file, or a folder with all it holds); absent is not an error. */
  remove(path: string): Promise<void>;
  /** Moves a file or folder, whole (archive, setting aside an unusable download). */
  move(from: string, to: string): Promise<void>;
  /**
   * The one-manager lock: files take DATA_DIR's lock (src/lock.ts); Redis takes a lease with a fencing token, and
   * every write after it checks the token, so a manager that lost the lease cannot write.
   */
  lock(opts: LockOptions): Promise<HeldLock>;
  /** Releases connections and timers (not the lock: HeldLock.release does). */
  close(): Promise<void>;
}

/** What `readFolder` found of each name asked for. */
export interface FolderRead {
  /** Each name's text; undefined when absent; the Error its read gave when it is there and cannot be read. */
  files: Map<string, string | undefined | Error>;
  /**
   * true when the folder is known to hold nothing an interrupted write left (`recover` would do nothing);
   * false when it does, or when the store cannot tell (then `recover` is asked first, as always).
   */
  settled: boolean;
}

/**
 * The files of `names` in `dir`: the store's own readFolder, else one read each (all at once). An unreachable
 * store throws (StoreUnavailableError); any other failed read is that file's Error.
 */
export async function readFolder(store: Store, dir: string, names: readonly string[]): Promise<FolderRead> {
  if (store.readFolder) return store.readFolder(dir, names);
  const texts = await Promise.all(
    names.map((n) =>
      store.read(`${dir}/${n}`).catch((e: unknown) => {
        if (e instanceof StoreUnavailableError || !(e instanceof Error)) throw e;
        return e;
      }),
    ),
  );
  return { files: new Map(names.map((n, i) => [n, texts[i]])), settled: false };
}

/**
 * The store cannot be reached just now (Redis restarting, a network cut), as opposed to a path whose content is
 * broken. A reader must not take it for a missing or broken copy (that would order a certificate the store holds):
 * the pass stops, and the next one reads again.
 */
export class StoreUnavailableError extends Error {}

/** The stamps of `paths`, in one call where the store has `stamps`, else one `stamp` each. */
export function stampsOf(store: Store, paths: string[]): Promise<(ChangeStamp | undefined)[]> {
  return typeof store.stamps === 'function' ? store.stamps(paths) : Promise.all(paths.map((p) => store.stamp(p)));
}

const BAD_PATH = /(?:^|\/)\.{0,2}(?:\/|$)|\0/;

/** A path inside a store: relative, '/'-separated, no '.' or '..' parts, nothing empty. */
export function checkStorePath(path: string): string {
  // A part that is empty, '.' or '..' (or a NUL anywhere); a regular expression, not a split: every stamp checks one.
  if (path === '' || BAD_PATH.test(path)) {
    throw new Error(`store: "${path}" is not a store path (relative, '/'-separated, without '.', '..' or empty parts)`);
  }
  return path;
}

/** What a store is built with besides its own options. */
export interface StoreContext {
  log: import('../log.js').Logger;
}

/** A STORE registry entry (src/adapters.ts): its folder reads its own variables and builds the store. */
export type StoreEntry<Options> = import('../adapters.js').AdapterEntry<Options, Store, StoreContext>;
