/**
 * The `files` orchestrator: certificates as files in CERTS_DIR/<name>/, which nginx, HAProxy and
 * Traefik's file provider read. A `.certwrangler` marker records that we wrote the folder, so a folder
 * someone else filled (certbot, acme.sh, an operator) is recognised as foreign: reported, never written,
 * taken over only when ADOPT_EXISTING names it.
 *
 * Layout (certbot's idea: versions, and one name that points at the current one):
 *   CERTS_DIR/<name>                              symlink → .certwrangler-archive/<name>/<n> (relative)
 *   CERTS_DIR/.certwrangler-archive/<name>/<n>/   privkey.pem cert.pem chain.pem fullchain.pem bundle.pem .certwrangler
 * A new set is written whole into a new version folder, then the symlink is replaced with one rename(), so a
 * reader that resolves CERTS_DIR/<name> once sees the old set or the new one, never half of each.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { assertFilesExist, ensureDir, fsyncDir, recoverFileSet, writeSynced } from '../../certs/atomic.js';
import { parseCert, splitPemChain } from '../../certs/parse.js';
import { KEY_MODE, type CertBundle } from '../../certs/store.js';
import type { Orchestrator, PushOptions, PushResult, ReloadRetry, RemoteCopy, RemoveResult } from '../orchestrator.js';
import { createOutputs } from '../../outputs/config.js';
import type { KeptCert, Outputs } from '../../outputs/outputs.js';
import type { Logger } from '../../log.js';
import type { OrchestratorEntry } from '../registry.js';

const MARKER = '.certwrangler';
/**
 * Inside CERTS_DIR, not beside it: a reader's container that mounts only CERTS_DIR (or CERTS_DIR set to an
 * operator's own path, on its own volume) must still resolve the symlink, and the version folders must be on
 * the same filesystem as the link. A dot-folder is never a certificate name.
 */
export const ARCHIVE = '.certwrangler-archive';
/** Under ARCHIVE: the versions of removed certificates (DECOMMISSION=remove), as `<name>-<time>/<n>/`. */
export const REMOVED = '.removed';
/** Versions kept per certificate, the current one included: enough for a slow reader and a manual rollback. */
export const KEEP_VERSIONS = 3;
// Readers (nginx workers, HAProxy) may run as another user: folders and public files are readable,
// the key and the key-bearing bundle are not.
const DIR_MODE = 0o755;
const PUBLIC_MODE = 0o644;
const VERSION = /^[1-9][0-9]*$/;
const TEMP = /^\.tmp-/;

export interface FilesOptions {
  certsDir: string;
  /** Balancer-native files beside CERTS_DIR's, and running balancers told of each change (OUTPUTS). */
  outputs?: Outputs;
}

/** The files a hook may read, named as ON_CHANGE_COMMAND has always seen them. */
export function filePaths(dir: string, withBundle: boolean): Record<string, string> {
  return {
    CERTWRANGLER_DIR: dir,
    CERTWRANGLER_CERT: join(dir, 'cert.pem'),
    CERTWRANGLER_CHAIN: join(dir, 'chain.pem'),
    CERTWRANGLER_FULLCHAIN: join(dir, 'fullchain.pem'),
    CERTWRANGLER_KEY: join(dir, 'privkey.pem'),
    ...(withBundle ? { CERTWRANGLER_BUNDLE: join(dir, 'bundle.pem') } : {}),
  };
}

const code = (e: unknown) => (e as NodeJS.ErrnoException).code;
const exists = (p: string) => fs.stat(p).then(() => true, () => false);

/** What is at CERTS_DIR/<name>, as far as ownership goes. */
type Slot =
  | { kind: 'absent' }
  | { kind: 'link'; owned: boolean }
  /** A real folder: ours from before versions (marker), or foreign. An empty folder counts as absent. */
  | { kind: 'folder'; owned: boolean; empty: boolean }
  | { kind: 'other' };

export class FilesOrchestrator implements Orchestrator {
  readonly name = 'files';

  constructor(private readonly opts: FilesOptions) {}

  dir(name: string): string {
    return join(this.opts.certsDir, name);
  }

  private archive(name: string): string {
    return join(this.opts.certsDir, ARCHIVE, name);
  }

  async list(names: string[]): Promise<Map<string, RemoteCopy>> {
    const out = new Map<string, RemoteCopy>();
    await Promise.all(names.map(async (name) => out.set(name, await this.read(name))));
    return out;
  }

  private async slot(name: string): Promise<Slot> {
    const path = this.dir(name);
    let st;
    try {
      st = await fs.lstat(path);
    } catch (e) {
      if (code(e) === 'ENOENT') return { kind: 'absent' };
      throw e;
    }
    const owned = await exists(join(path, MARKER));
    // A link into our archive is ours even when its version is gone (removed by hand): the next push repairs it.
    if (st.isSymbolicLink()) return { kind: 'link', owned: owned || (await fs.readlink(path)).startsWith(`${join(ARCHIVE, name)}/`) };
    if (st.isDirectory()) return { kind: 'folder', owned, empty: (await fs.readdir(path)).length === 0 };
    return { kind: 'other' };
  }

  private async read(name: string): Promise<RemoteCopy> {
    const dir = this.dir(name);
    let slot: Slot;
    try {
      slot = await this.slot(name);
    } catch (e) {
      return { state: 'unreadable', error: (e as Error).message, owned: false };
    }
    if (slot.kind === 'absent' || (slot.kind === 'folder' && slot.empty)) return { state: 'absent' };
    if (slot.kind === 'other') return { state: 'unreadable', error: `${dir} is not a folder`, owned: false };
    const owned = slot.owned;
    // certbot and acme.sh folders may hold only fullchain.pem: its first certificate is the leaf.
    for (const file of owned ? ['cert.pem'] : ['cert.pem', 'fullchain.pem']) {
      let pem: string;
      try {
        pem = await fs.readFile(join(dir, file), 'utf8');
      } catch (e) {
        if (code(e) === 'ENOENT') continue;
        return { state: 'unreadable', error: `${file}: ${(e as Error).message}`, owned };
      }
      try {
        return { state: 'present', info: parseCert(file === 'cert.pem' ? pem : (splitPemChain(pem)[0] ?? '')), owned };
      } catch (e) {
        return { state: 'unreadable', error: `${file}: ${(e as Error).message}`, owned };
      }
    }
    if (slot.kind === 'link' && !owned && !(await exists(dir))) return { state: 'unreadable', error: `${dir} is a symlink to nothing`, owned };
    return { state: 'unreadable', error: owned ? 'cert.pem missing' : 'neither cert.pem nor fullchain.pem', owned };
  }

  async push(bundle: CertBundle, opts: PushOptions): Promise<PushResult> {
    const path = this.dir(bundle.name);
    const info = parseCert(bundle.cert);
    const fullchain = bundle.cert + bundle.chain;
    await ensureDir(this.opts.certsDir, DIR_MODE);
    let slot = await this.slot(bundle.name);
    if (slot.kind === 'other') throw new Error(`files: ${path} is not a folder: move it away, certwrangler writes ${bundle.name} there`);
    if ((slot.kind === 'folder' && !slot.empty) || slot.kind === 'link') {
      if (!slot.owned && !opts.adopt) {
        throw new Error(`files: ${path} holds files certwrangler did not write (no ${MARKER} marker): left alone; list ${bundle.name} in ADOPT_EXISTING to take it over`);
      }
    }
    if (slot.kind === 'folder' && slot.owned) {
      await this.migrate(bundle.name);
      slot = { kind: 'link', owned: true };
    }
    const version = await this.writeVersion(bundle.name, [
      { name: 'privkey.pem', data: bundle.key, mode: KEY_MODE },
      { name: 'cert.pem', data: bundle.cert, mode: PUBLIC_MODE },
      { name: 'chain.pem', data: bundle.chain, mode: PUBLIC_MODE },
      { name: 'fullchain.pem', data: fullchain, mode: PUBLIC_MODE },
      // HAProxy reads certificate, chain and key from one file.
      { name: 'bundle.pem', data: fullchain + bundle.key, mode: KEY_MODE },
      { name: MARKER, data: `${JSON.stringify({ fingerprint: info.fingerprint, pushedAt: new Date().toISOString() })}\n`, mode: PUBLIC_MODE },
    ]);
    if (slot.kind === 'folder') {
      // Adopting a foreign folder (or an empty one): it cannot be renamed over, so it is kept in the archive,
      // never deleted; the moment between the two renames is the only one a reader finds no folder.
      if (slot.empty) await fs.rmdir(path);
      else await fs.rename(path, join(this.archive(bundle.name), `adopted-${new Date().toISOString().replace(/[:.]/g, '-')}`));
    }
    await this.point(bundle.name, version);
    await this.prune(bundle.name, version);
    const outputs = this.opts.outputs;
    const pendingReloads = outputs && !outputs.empty ? await outputs.afterPush({ name: bundle.name, version: join(ARCHIVE, bundle.name, String(version)) }, fullchain + bundle.key) : [];
    // The path readers and hooks (CERTWRANGLER_TARGET) use, which now names this version.
    return { target: path, ...(pendingReloads.length > 0 ? { pendingReloads } : {}) };
  }

  /** Every certificate certwrangler keeps here: a CERTS_DIR/<name> link into its own archive folder. */
  async kept(): Promise<KeptCert[]> {
    let entries: string[];
    try {
      entries = await fs.readdir(this.opts.certsDir);
    } catch (e) {
      if (code(e) === 'ENOENT') return [];
      throw e;
    }
    const out: KeptCert[] = [];
    for (const name of entries.filter((e) => !e.startsWith('.')).sort()) {
      const target = await fs.readlink(this.dir(name)).catch(() => undefined);
      if (target?.startsWith(`${join(ARCHIVE, name)}/`) && (await exists(join(this.opts.certsDir, target, 'bundle.pem')))) out.push({ name, version: target });
    }
    return out;
  }

  /**
   * Once a pass (never in `plan`): the outputs' files brought in line with CERTS_DIR, and the running
   * balancers that do not serve the current certificates updated (OUTPUTS, HAPROXY_RUNTIME_API).
   */
  async retryReloads(): Promise<ReloadRetry[]> {
    const outputs = this.opts.outputs;
    if (!outputs || outputs.empty) return [];
    return outputs.resync(await this.kept(), (c) => fs.readFile(join(this.opts.certsDir, c.version, 'bundle.pem'), 'utf8'));
  }

  async nextReloadAt(): Promise<Date | undefined> {
    return this.opts.outputs?.nextRetryAt();
  }

  /**
   * DECOMMISSION=remove: CERTS_DIR/<name> goes (one unlink), and its versions move, whole, to
   * ARCHIVE/.removed/<name>-<time>/, so nothing certwrangler wrote is lost. A folder certwrangler did not
   * write (no marker, not a link into its archive) is never touched.
   */
  async remove(name: string): Promise<RemoveResult> {
    const path = this.dir(name);
    const slot = await this.slot(name);
    if (slot.kind === 'absent') return { removed: true, target: `${path}: not there any more` };
    if (slot.kind === 'other' || !slot.owned) return { removed: false, why: `${path} was not written by certwrangler (no ${MARKER} marker): never removed` };
    const pinned = await this.opts.outputs?.pinnedBy(name);
    if (pinned) return { removed: false, why: `${pinned} may still be included by nginx: remove the include from its server block and delete ${pinned}, then it is removed at the next pass` };
    if (slot.kind === 'folder') await this.migrate(name); // ours, from before versions: into the archive first
    const removedDir = join(this.opts.certsDir, ARCHIVE, REMOVED);
    const kept = join(removedDir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    await ensureDir(removedDir, DIR_MODE);
    await fs.unlink(path);
    await fsyncDir(this.opts.certsDir);
    if (await exists(this.archive(name))) {
      await fs.rename(this.archive(name), kept);
      await fsyncDir(join(this.opts.certsDir, ARCHIVE));
      return { removed: true, target: `${path} (its versions kept in ${kept})` };
    }
    return { removed: true, target: path };
  }

  /** Writes a complete version folder: every file fsynced and checked, then renamed to its number. */
  private async writeVersion(name: string, files: { name: string; data: string; mode: number }[]): Promise<number> {
    const archive = this.archive(name);
    await ensureDir(archive, DIR_MODE);
    const entries = await fs.readdir(archive);
    const next = Math.max(0, ...entries.filter((e) => VERSION.test(e)).map(Number)) + 1;
    const tmp = join(archive, `.tmp-${next}-${randomBytes(6).toString('hex')}`);
    await fs.mkdir(tmp, { mode: DIR_MODE });
    try {
      await fs.chmod(tmp, DIR_MODE);
      for (const f of files) await writeSynced(join(tmp, f.name), f.data, f.mode);
      await fsyncDir(tmp);
      await assertFilesExist(tmp, files.map((f) => f.name));
      // Fails with EEXIST/ENOTEMPTY rather than replace a version another writer just made.
      await fs.rename(tmp, join(archive, String(next)));
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true });
      throw e;
    }
    await fsyncDir(archive);
    return next;
  }

  /** Points CERTS_DIR/<name> at a version: a symlink made under a temporary name, renamed over the old one. */
  private async point(name: string, version: number): Promise<void> {
    const tmp = join(this.opts.certsDir, `.${name}.link-${randomBytes(6).toString('hex')}`);
    // Relative, so a container that mounts the volume at another path still resolves it.
    await fs.symlink(join(ARCHIVE, name, String(version)), tmp);
    try {
      await fs.rename(tmp, this.dir(name));
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
    await fsyncDir(this.opts.certsDir);
  }

  /** Keeps the newest KEEP_VERSIONS versions (and whatever is current); removes only numbered versions and our temp folders. */
  private async prune(name: string, current: number): Promise<void> {
    const archive = this.archive(name);
    const entries = await fs.readdir(archive);
    const versions = entries.filter((e) => VERSION.test(e)).map(Number).sort((a, b) => b - a);
    const old = versions.slice(KEEP_VERSIONS).filter((v) => v !== current);
    for (const v of old) await fs.rm(join(archive, String(v)), { recursive: true, force: true });
    for (const e of entries.filter((e) => TEMP.test(e))) await fs.rm(join(archive, e), { recursive: true, force: true });
  }

  /**
   * Moves a folder of the layout before versions (real folder, our marker) into the archive as a version and
   * points CERTS_DIR/<name> at it. Crash-safe: the link is made first (under a temporary name), so a crash leaves
   * the old folder, or the version and the link that `prepare` renames into place on the next start.
   */
  private async migrate(name: string): Promise<number> {
    const path = this.dir(name);
    await recoverFileSet(path); // ours (marker): an interrupted write of the old layout is finished first
    const archive = this.archive(name);
    await ensureDir(archive, DIR_MODE);
    const entries = await fs.readdir(archive);
    const version = Math.max(0, ...entries.filter((e) => VERSION.test(e)).map(Number)) + 1;
    const pending = join(this.opts.certsDir, `.${name}.migrate`);
    await fs.rm(pending, { force: true });
    await fs.symlink(join(ARCHIVE, name, String(version)), pending);
    await fsyncDir(this.opts.certsDir);
    await fs.rename(path, join(archive, String(version)));
    await fsyncDir(archive);
    await fs.rename(pending, path);
    await fsyncDir(this.opts.certsDir);
    return version;
  }

  /**
   * At the manager's start: finishes a migration a crash interrupted and moves every folder of the layout
   * before versions (a real folder with our marker) to the versioned one. Returns the names migrated.
   * Foreign folders are not looked into beyond their marker.
   */
  async prepare(): Promise<string[]> {
    const certsDir = this.opts.certsDir;
    let entries: string[];
    try {
      entries = await fs.readdir(certsDir);
    } catch (e) {
      if (code(e) === 'ENOENT') return [];
      throw e;
    }
    for (const e of entries) {
      const m = /^\.(.+)\.migrate$/.exec(e);
      if (!m) continue;
      const name = m[1]!;
      const slot = await this.slot(name);
      const target = await fs.readlink(join(certsDir, e)).catch(() => '');
      // Crashed between the two renames: the folder is in the archive and the link waits beside it.
      if (slot.kind === 'absent' && target && (await exists(join(certsDir, target)))) await fs.rename(join(certsDir, e), this.dir(name));
      else await fs.rm(join(certsDir, e), { force: true });
    }
    const migrated: string[] = [];
    for (const name of entries) {
      if (name.startsWith('.')) continue;
      const slot = await this.slot(name);
      if (slot.kind === 'folder' && slot.owned) {
        await this.migrate(name);
        migrated.push(name);
      }
    }
    await fsyncDir(certsDir);
    return migrated;
  }

  async discover() {
    return { certs: [], refused: [] };
  }
}

/** At the manager's start: CERTS_DIR to the versioned layout. A folder that cannot be moved now is moved by its next push. */
export async function moveToVersions(certsDir: string, log: Logger): Promise<void> {
  try {
    for (const name of await new FilesOrchestrator({ certsDir }).prepare()) log.info({ cert: name }, `${name}: moved to the versioned layout in ${certsDir}`);
  } catch (e) {
    log.error(`CERTS_DIR ${certsDir}: cannot move to the versioned layout (${(e as Error).message}); each certificate moves at its next push`);
  }
}

/** `files` has no variables of its own: CERTS_DIR is core (hooks and `moveToVersions` read it too). */
export const files: OrchestratorEntry<Record<string, never>> = {
  fromEnv: () => ({}),
  create: (_options, { config, log, now }) => new FilesOrchestrator({ certsDir: config.certsDir, outputs: createOutputs(config.outputs, log, now) }),
  secrets: [],
};
