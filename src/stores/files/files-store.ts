/**
 * STORE=files (the default): DATA_DIR on a local or shared volume, exactly the layout certwrangler always kept.
 * Single files are written temp-fsync-rename; sets through atomic.ts's commit marker; the lock is DATA_DIR's.
 */
import { promises as fs, readdirSync, readFileSync, statSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { dirname, join, resolve } from 'node:path';
import { ensureDir, fsyncDir, needsRecovery, recoverFileSet, writeFileAtomic, writeFileSet } from '../../certs/atomic.js';
import { lockDataDir, type HeldLock, type LockOptions } from '../../lock.js';
import { checkStorePath, type ChangeStamp, type FolderRead, type Store, type StoreEntry, type StoredFile, type WriteOptions } from '../store.js';
import { str, type Env } from '../../env.js';
import { refuseEncryptionKeyWithFiles } from '../redis/encryption.js';

export const DIR_MODE = 0o700;
const SECRET_MODE = 0o600;

/** The error for a DATA_DIR that cannot be written: the store's and the lock's, in the same words. */
export function dataDirError(dataDir: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  const why = err.code === 'EROFS' ? 'the volume is read-only' : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : err.message;
  return new Error(`DATA_DIR ${dataDir} cannot be prepared (${why}): certwrangler keeps its keys and certificates there and needs it writable by its own user`);
}

// Stats made before the event loop is let go (the status page answers between them): about 10 ms of them.
const STATS_PER_TURN = 2000;

/**
 * inode, size, mtime and ctime in microseconds: any write, rename or chmod moves one of them. Numbers, not bigint:
 * a bigint stat allocates an object per field, and a warm pass makes 20,000 of them at 10,000 certificates.
 */
function statStamp(file: string): ChangeStamp | undefined {
  const s = statSync(file, { throwIfNoEntry: false });
  return s && `${s.ino}:${s.size}:${Math.round(s.mtimeMs * 1000)}:${Math.round(s.ctimeMs * 1000)}`;
}

function modeOf(opts: WriteOptions | StoredFile | undefined): number {
  return opts?.secret ? SECRET_MODE : (opts?.mode ?? SECRET_MODE);
}

export class FilesStore implements Store {
  readonly kind = 'files';
  /** Every write renames into its folder, which moves the folder's mtime (a file overwritten in place does not). */
  readonly folderStamps = true;
  readonly where: string;

  private readonly base: string;

  constructor(readonly dataDir: string) {
    this.where = `DATA_DIR ${dataDir}`;
    const dir = join(dataDir, '.');
    this.base = dir.endsWith('/') ? dir : `${dir}/`;
  }

  /** The file or folder `path` names on disk (hooks and operators read the files store directly). */
  pathOf(path: string): string {
    // join(dataDir, path) for a checked path (no '.', '..' or empty part), without normalising it again each time.
    return this.base + checkStorePath(path);
  }

  async init(): Promise<void> {
    try {
      await ensureDir(this.dataDir, DIR_MODE);
      // certs/ from the start, as DATA_DIR always had it: an operator looking for the certificates finds the folder.
      await ensureDir(join(this.dataDir, 'certs'), DIR_MODE);
    } catch (e) {
      throw dataDirError(this.dataDir, e);
    }
  }

  async read(path: string): Promise<string | undefined> {
    try {
      return await fs.readFile(this.pathOf(path), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * One listing of the folder, then a read of each file asked for that it holds. Synchronous on purpose: these
   * are small files in the page cache, and each async read was four trips through libuv's pool (open, fstat,
   * read, close) plus a thrown ENOENT for every file a folder does not hold (issue 22: most of a cold pass).
   * A folder that cannot be listed (not ENOENT) is read file by file, so each file reports its own error.
   */
  async readFolder(dir: string, names: readonly string[]): Promise<FolderRead> {
    const folder = this.pathOf(dir);
    let entries: string[] | undefined;
    try {
      entries = readdirSync(folder);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { files: new Map(names.map((n) => [n, undefined])), settled: true };
    }
    const files = new Map<string, string | undefined | Error>();
    for (const name of names) {
      if (entries && !entries.includes(name)) {
        files.set(name, undefined);
        continue;
      }
      try {
        files.set(name, readFileSync(this.pathOf(`${dir}/${name}`), 'utf8'));
      } catch (e) {
        files.set(name, (e as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : (e as Error));
      }
    }
    return { files, settled: entries !== undefined && !needsRecovery(entries) };
  }

  async write(path: string, data: string, opts?: WriteOptions): Promise<void> {
    const file = this.pathOf(path);
    await ensureDir(dirname(file), DIR_MODE);
    await writeFileAtomic(file, data, modeOf(opts));
  }

  async writeSet(dir: string, files: StoredFile[]): Promise<void> {
    await writeFileSet(this.pathOf(dir), files.map((f) => ({ name: f.name, data: f.data, mode: modeOf(f) })), DIR_MODE);
  }

  async recover(dir: string): Promise<void> {
    await recoverFileSet(this.pathOf(dir));
  }

  async list(dir: string): Promise<string[]> {
    try {
      return await fs.readdir(dir === '' ? this.dataDir : this.pathOf(dir));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw e;
    }
  }

  async stamp(path: string): Promise<ChangeStamp | undefined> {
    return statStamp(this.pathOf(path));
  }

  /**
   * statSync, one path after another, letting the event loop go every STATS_PER_TURN: a stat costs a few
   * microseconds, while an async one costs a promise and a trip through libuv's pool (issue 22: 20,000 of them
   * were a quarter of a warm pass at 10,000 certificates, most of it waiting).
   */
  async stamps(paths: string[]): Promise<(ChangeStamp | undefined)[]> {
    const out: (ChangeStamp | undefined)[] = [];
    for (let i = 0; i < paths.length; i++) {
      if (i > 0 && i % STATS_PER_TURN === 0) await yieldToLoop();
      out.push(statStamp(this.pathOf(paths[i]!)));
    }
    return out;
  }

  async remove(path: string): Promise<void> {
    await fs.rm(this.pathOf(path), { recursive: true, force: true });
  }

  async move(from: string, to: string): Promise<void> {
    const dest = this.pathOf(to);
    await ensureDir(dirname(dest), DIR_MODE);
    await fs.rename(this.pathOf(from), dest);
    await fsyncDir(dirname(dest));
    await fsyncDir(dirname(this.pathOf(from)));
  }

  lock(opts: LockOptions): Promise<HeldLock> {
    return lockDataDir(this.dataDir, opts);
  }

  async close(): Promise<void> {}
}

/** DATA_DIR, absolute: the files store's folder, and the default home of CERTS_DIR and the status token. */
export function dataDirFromEnv(env: Env, cwd = process.cwd()): string {
  return resolve(cwd, str(env, 'DATA_DIR') ?? './data');
}

export interface FilesStoreOptions {
  dataDir: string;
}

/** STORE=files: reads DATA_DIR. */
export const files: StoreEntry<FilesStoreOptions> = {
  fromEnv: (env) => {
    refuseEncryptionKeyWithFiles(env);
    return { dataDir: dataDirFromEnv(env) };
  },
  create: (options) => new FilesStore(options.dataDir),
  secrets: [],
};
