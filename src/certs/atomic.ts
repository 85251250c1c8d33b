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

export async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, constants.O_RDONLY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

export async function writeSynced(path: string, data: string, mode: number): Promise<void> {
  const h = await fs.open(path, 'wx', mode);
  try {
    await h.chmod(mode); // the umask must not widen or narrow what we asked for
    await h.writeFile(data);
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Creates `dir` and any missing parents with `mode`. Only the folders created here get `mode` (set past the
 * umask): an existing folder keeps the mode its owner chose, e.g. an operator's CERTS_DIR shared with a
 * reader's group at 0750.
 */
export async function ensureDir(dir: string, mode: number): Promise<void> {
  const first = await fs.mkdir(dir, { recursive: true, mode });
  if (first === undefined) return;
  const created = [dir];
  for (let d = dir; d !== first; ) {
    d = dirname(d);
    // A guard: the walk up from dir meets `first` (the first folder mkdir made on its way to dir) before the root.
    if (d === dirname(d)) break;
    created.unshift(d);
  }
  for (const d of created) await fs.chmod(d, mode);
}

/** Fails naming the first file of the set that is not on disk, so a commit never names a missing file. */
export async function assertFilesExist(dir: string, names: string[]): Promise<void> {
  for (const name of names) {
    try {
      await fs.stat(join(dir, name));
    } catch (e) {
      throw new Error(`${join(dir, name)} is missing after it was written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): the set is not committed`);
    }
  }
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
    // Another process's recovery may have removed them (DATA_DIR shared without the lock): never commit a set
    // whose files are not all there, or roll-forward would pair a new key with an old certificate.
    await assertFilesExist(dir, files.map((f) => `${f.name}.new`));
    // The new files' names must be on disk before the marker that names them: otherwise a power loss could
    // keep the marker and lose a file, and recovery would pair a new key with an old certificate.
    await fsyncDir(dir);
    await writeFileAtomic(join(dir, COMMIT), JSON.stringify(files.map((f) => f.name)), 0o600);
  } catch (e) {
    // Not committed: the old set is untouched; remove what we started.
    for (const f of files) await fs.rm(join(dir, `${f.name}.new`), { force: true });
    throw e;
  }
  await rollForward(dir, files.map((f) => f.name));
}

/**
 * The names a commit marker lists, or undefined when its text is not a list of names: a marker that was never
 * completed, whose set is discarded. A marker that cannot be read (EIO, EACCES) is an error, not an incomplete one.
 */
async function committedNames(dir: string): Promise<string[] | undefined> {
  // Stryker disable next-line StringLiteral: JSON.parse reads a Buffer as its text too
  const text = await fs.readFile(join(dir, COMMIT), 'utf8');
  let names: unknown;
  try {
    names = JSON.parse(text);
  } catch {
    // torn: never completed
  }
  return Array.isArray(names) && names.every((n) => typeof n === 'string') ? names : undefined;
}

async function rollForward(dir: string, names: string[]): Promise<void> {
  for (const name of names) {
    try {
      await fs.rename(join(dir, `${name}.new`), join(dir, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // already moved before a crash
    }
  }
  await fsyncDir(dir);
  // Stryker disable next-line ObjectLiteral,BooleanLiteral: the file was just listed or read; `force` only matters if another process removed it in between
  await fs.rm(join(dir, COMMIT), { force: true });
  await fsyncDir(dir);
}

/** A file an interrupted set write leaves behind to be discarded (not yet moved in): "<name>.new" or a temp file. */
function isLeftover(entry: string): boolean {
  return entry.endsWith('.new') || /^\..+\.tmp-[0-9a-f]{12}$/.test(entry);
}

/**
 * Whether a folder listing shows what an interrupted set write leaves (its commit marker, a leftover): what
 * recoverFileSet acts on. A listing without any of them needs no recovery (issue 22: a cold pass lists each
 * certificate's folder once and recovers only those).
 */
export function needsRecovery(entries: readonly string[]): boolean {
  return entries.some((e) => e === COMMIT || isLeftover(e));
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
    const names = await committedNames(dir);
    // Committed: finished, whatever fails on the way; a failed rename or sync throws, and the next recovery
    // starts again from the marker (discarding here could leave a new key moved in beside the old certificate).
    if (names) return rollForward(dir, names);
    // A marker that was never completed: its set is discarded below.
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: the file was just read; `force` only matters if another process removed it in between
    await fs.rm(join(dir, COMMIT), { force: true });
  }
  for (const e of entries) {
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: the file was just listed or read; `force` only matters if another process removed it in between
    if (isLeftover(e)) await fs.rm(join(dir, e), { force: true });
  }
}
