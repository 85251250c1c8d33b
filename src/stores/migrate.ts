/**
 * `certwrangler store migrate --from files --to redis` (and back), issue 20 item 1: every path of one store copied
 * into the other through the Store interface alone, each folder's files as one set (a certificate's key never
 * lands beside another certificate, even if the copy is cut short), then read back and compared.
 *
 * The target must hold nothing of certwrangler's unless `force`: copying over a store in use would mix two
 * managers' states. With `force` the source's paths overwrite the target's; paths only in the target are left
 * alone (never delete what this run did not create) and counted in the report.
 */
import { LOCK_NAME } from '../lock.js';
import type { Store, StoredFile } from './store.js';

export interface MigrateReport {
  files: number;
  folders: number;
  /** Files holding a private key: written as secrets (0600 on files, sealed on Redis with STORE_ENCRYPTION_KEY). */
  secrets: number;
  bytes: number;
  /** Paths the target held that the source does not: left alone (with `force`). */
  leftInTarget: string[];
}

/** A PEM private key, of any kind: what makes a file a secret. */
const PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
/** The files the certificate store writes 0644 for their readers (src/certs/store.ts PUBLIC_MODE); others 0600. */
const PUBLIC_NAMES = new Set(['cert.pem', 'chain.pem', 'fullchain.pem', 'meta.json']);
const PUBLIC_MODE = 0o644;

/**
 * What is the store's machinery, not its contents: DATA_DIR's lock folder, and the temporary files and commit
 * markers of atomic.ts (dot names), which recover() has finished or discarded before the walk.
 */
function skipped(name: string): boolean {
  return name === LOCK_NAME || name === `${LOCK_NAME}.takeover` || name.startsWith('.');
}

const join = (dir: string, name: string) => (dir === '' ? name : `${dir}/${name}`);

interface Folder {
  dir: string;
  files: { name: string; data: string }[];
}

/** Every folder of `store` with the files directly in it, '' (the top) first. */
async function walk(store: Store, exclude: readonly string[] = []): Promise<Folder[]> {
  const out: Folder[] = [];
  const todo = [''];
  while (todo.length > 0) {
    const dir = todo.shift()!;
    if (dir !== '') await store.recover(dir);
    const folder: Folder = { dir, files: [] };
    for (const name of (await store.list(dir)).filter((n) => !skipped(n)).sort()) {
      const path = join(dir, name);
      if (exclude.includes(path)) continue;
      if ((await store.list(path)).length > 0) {
        todo.push(path);
        continue;
      }
      let data: string | undefined;
      try {
        data = await store.read(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EISDIR') continue; // an empty folder: nothing to copy
        throw e;
      }
      if (data !== undefined) folder.files.push({ name, data });
    }
    out.push(folder);
  }
  return out;
}

/** Every path in `store` (files only). */
async function paths(store: Store, exclude: readonly string[] = []): Promise<string[]> {
  return (await walk(store, exclude)).flatMap((f) => f.files.map((x) => join(f.dir, x.name)));
}

function asStored(f: { name: string; data: string }): StoredFile {
  if (PRIVATE_KEY.test(f.data)) return { ...f, secret: true };
  return PUBLIC_NAMES.has(f.name) ? { ...f, mode: PUBLIC_MODE } : f;
}

export class MigrateError extends Error {}

/**
 * `exclude`: top paths that live beside the store in DATA_DIR but are not its contents (CERTS_DIR when it is
 * inside DATA_DIR, whose links would be copied as folders; the status API's token, which stays on its host).
 */
export async function migrateStore(from: Store, to: Store, opts: { force: boolean; exclude?: readonly string[] }): Promise<MigrateReport> {
  const exclude = opts.exclude ?? [];
  // Files, not folders: an initialised store may hold empty folders (DATA_DIR/certs) and nothing else.
  const already = await paths(to, exclude);
  if (already.length > 0 && !opts.force) {
    throw new MigrateError(`store migrate: ${to.where} already holds ${already.length} files (${already.slice(0, 5).join(', ')}${already.length > 5 ? ', …' : ''}): refusing to copy over it. Point it at an empty store, or add --force to overwrite what both hold (what only the target holds is left alone)`);
  }
  const folders = await walk(from, exclude);
  const report: MigrateReport = { files: 0, folders: 0, secrets: 0, bytes: 0, leftInTarget: [] };
  for (const { dir, files } of folders) {
    if (files.length === 0) continue;
    const stored = files.map(asStored);
    if (dir === '') for (const f of stored) await to.write(f.name, f.data, { ...(f.secret ? { secret: true } : {}), ...(f.mode ? { mode: f.mode } : {}) });
    else await to.writeSet(dir, stored);
    report.folders += dir === '' ? 0 : 1;
    report.files += files.length;
    report.secrets += stored.filter((f) => f.secret).length;
    report.bytes += files.reduce((n, f) => n + Buffer.byteLength(f.data), 0);
  }
  // Verify: every file reads back as it was, and every folder (each set) holds all of the source's names.
  const problems: string[] = [];
  for (const { dir, files } of folders) {
    const there = new Set(await to.list(dir));
    for (const f of files) {
      const path = join(dir, f.name);
      if (!there.has(f.name)) problems.push(`${path} is missing from ${dir === '' ? 'the top' : dir}`);
      else if ((await to.read(path)) !== f.data) problems.push(`${path} reads back different`);
    }
  }
  if (problems.length > 0) throw new MigrateError(`store migrate: the copy in ${to.where} does not match ${from.where}: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? ` (and ${problems.length - 10} more)` : ''}. Nothing was removed from ${from.where}; run it again`);
  const copied = new Set(folders.flatMap((f) => f.files.map((x) => join(f.dir, x.name))));
  report.leftInTarget = (await paths(to, exclude)).filter((p) => !copied.has(p));
  return report;
}

export function describeMigration(from: Store, to: Store, r: MigrateReport): string[] {
  return [
    `copied ${r.files} files (${r.folders} folders, ${r.secrets} private keys, ${r.bytes} bytes) from ${from.where} to ${to.where}, and read every one back equal`,
    ...(r.leftInTarget.length > 0 ? [`left alone in ${to.where}: ${r.leftInTarget.length} paths the source does not have (${r.leftInTarget.slice(0, 5).join(', ')}${r.leftInTarget.length > 5 ? ', …' : ''})`] : []),
    `${from.where} is unchanged: point the managers at ${to.where} (STORE=${to.kind}), and keep ${from.where} until they run well`,
  ];
}
