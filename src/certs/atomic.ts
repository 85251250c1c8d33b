/**
 * Crash-safe writes. A single file: temp file in the same directory, fsync, rename, fsync the directory.
 * A set of files that must change together (key + certificate): every file is written beside its target
 * as "<name>.new" and fsynced, then a ".commit" marker is written atomically; only then are the files
 * renamed into place. On the next start `recoverFileSet` rolls a committed set forward and discards an
 * uncommitted one, so a reader never finds a new key next to an old certificate after a crash.
 */
import { promises as fs, constants } from 'node:fs';
import { join, dirname, basename } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface FileSpec {
  name: string;
  data: string;
  mode: number;
}

const COMMIT = '.commit';

async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, constants.O_RDONLY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

async function writeSynced(path: string, data: string, mode: number): Promise<void> {
  const h = await fs.open(path, 'wx', mode);
  try {
    await h.chmod(mode); // the umask must not widen or narrow what we asked for
    await h.writeFile(data);
    await h.sync();
  } finally {
    await h.close();
  }
}

export async function ensureDir(dir: string, mode: number): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode });
  await fs.chmod(dir, mode);
}

export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    await writeSynced(tmp, data, mode);
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dirname(path));
}

export async function writeFileSet(dir: string, files: FileSpec[], dirMode: number): Promise<void> {
  await ensureDir(dir, dirMode);
  await recoverFileSet(dir);
  try {
    for (const f of files) await writeSynced(join(dir, `${f.name}.new`), f.data, f.mode);
    await writeFileAtomic(join(dir, COMMIT), JSON.stringify(files.map((f) => f.name)), 0o600);
  } catch (e) {
    // Not committed: the old set is untouched; remove what we started.
    for (const f of files) await fs.rm(join(dir, `${f.name}.new`), { force: true });
    throw e;
  }
  await rollForward(dir);
}

async function rollForward(dir: string): Promise<void> {
  const names = JSON.parse(await fs.readFile(join(dir, COMMIT), 'utf8')) as string[];
  for (const name of names) {
    try {
      await fs.rename(join(dir, `${name}.new`), join(dir, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // already moved before a crash
    }
  }
  await fsyncDir(dir);
  await fs.rm(join(dir, COMMIT), { force: true });
  await fsyncDir(dir);
}

/** Finishes or discards a write that a crash interrupted. Touches only files this module names. */
export async function recoverFileSet(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (entries.includes(COMMIT)) {
    try {
      await rollForward(dir);
      return;
    } catch {
      // An unreadable marker means the marker itself was never completed: discard below.
      await fs.rm(join(dir, COMMIT), { force: true });
    }
  }
  for (const e of entries) {
    if (e.endsWith('.new') || /^\..+\.tmp-[0-9a-f]{12}$/.test(e)) await fs.rm(join(dir, e), { force: true });
  }
}
