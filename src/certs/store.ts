/**
 * The local store (DESIGN §5): the source of truth for "local copy". Keys never leave it except to be
 * pushed. Layout under DATA_DIR:
 *   certs/<name>/{privkey.pem (0600), cert.pem, chain.pem, fullchain.pem, meta.json}
 *   certs/<name>/status.json     last attempt, last error, next attempt (changes without the certificate)
 *   certs/<name>/ari.json        the CA's renewal window for the certificate in place (RFC 9773) and when to ask again
 *   certs/<name>/issued.json     (0600) a certificate the CA issued, kept the moment it is downloaded and
 *                                before anything reads it; promoted into the set on the next read when the
 *                                pass that ordered it could not store it (issue 17 item 0)
 *   issuers.json                 issuer DN → kind, as seen from each configured directory
 * Directories are 0700. Certificate sets are written with writeFileSet (all or nothing).
 */
import { promises as fs, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDir, fsyncDir, recoverFileSet, writeFileAtomic, writeFileSet } from './atomic.js';
import { parseCert, keyMatchesCert, splitPemChain, type CertInfo } from './parse.js';
import type { Kind, KnownIssuers } from './kind.js';
import type { AriState } from '../acme/ari.js';

export const DIR_MODE = 0o700;
export const KEY_MODE = 0o600;
const PUBLIC_MODE = 0o644;
const ISSUED_FILE = 'issued.json';
const ARI_FILE = 'ari.json';

/** A complete certificate: what is stored locally and what is pushed. */
export interface CertBundle {
  name: string;
  names: string[];
  key: string;
  /** The leaf alone. */
  cert: string;
  /** Intermediates only, never the leaf. */
  chain: string;
  kind: Kind;
  /** The ACME directory that issued it; "" for a self-signed placeholder. */
  directoryUrl: string;
  /** The ACME profile it was ordered with, when one was asked for. */
  profile?: string;
}

export interface CertMeta {
  name: string;
  names: string[];
  kind: Kind;
  directoryUrl: string;
  issuedAt: string;
  orderUrl?: string;
  /** The ACME profile it was ordered with (draft-ietf-acme-profiles); renewals order the same one. */
  profile?: string;
}

/** What the CA issued, exactly as downloaded, with the key it was ordered for (issue 17 item 0). */
export interface IssuedRecord {
  name: string;
  names: string[];
  kind: Kind;
  profile?: string;
  directoryUrl: string;
  orderUrl: string;
  /** The key, PEM; the file is 0600 like privkey.pem. */
  key: string;
  /** The whole download: the leaf, then the chain. */
  pem: string;
  issuedAt: string;
}

export interface CertStatus {
  lastAttempt?: string;
  lastError?: string;
  failures: number;
  nextAttempt?: string;
}

export type LocalCopy =
  | { state: 'absent' }
  | { state: 'unreadable'; error: string }
  | { state: 'present'; info: CertInfo; meta: CertMeta; bundle: CertBundle; keyMatches: boolean };

/** The error for a DATA_DIR that cannot be written: the store's and the lock's, in the same words. */
export function dataDirError(dataDir: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  const why = err.code === 'EROFS' ? 'the volume is read-only' : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : err.message;
  return new Error(`DATA_DIR ${dataDir} cannot be prepared (${why}): certwrangler keeps its keys and certificates there and needs it writable by its own user`);
}

/** A certificate name can name a folder: nothing that could leave the store (or CERTS_DIR). */
export function isFolderSafeName(name: string): boolean {
  return /^[a-z0-9_][a-z0-9._-]*$/.test(name) && !name.includes('..');
}

function safeName(name: string): string {
  if (!isFolderSafeName(name)) throw new Error(`store: "${name}" cannot be used as a certificate folder name`);
  return name;
}

export class LocalStore {
  constructor(readonly dataDir: string) {}

  certDir(name: string): string {
    return join(this.dataDir, 'certs', safeName(name));
  }

  async init(): Promise<void> {
    try {
      await ensureDir(this.dataDir, DIR_MODE);
      await ensureDir(join(this.dataDir, 'certs'), DIR_MODE);
    } catch (e) {
      throw dataDirError(this.dataDir, e);
    }
  }

  /**
   * `recover: false` reads without finishing an interrupted write (for `plan`, which changes nothing).
   * Recovering also stores a certificate the CA issued that its pass could not store (see `keepIssued`).
   */
  async read(name: string, opts: { recover: boolean } = { recover: true }): Promise<LocalCopy> {
    const dir = this.certDir(name);
    try {
      if (opts.recover) {
        await recoverFileSet(dir);
        await this.promoteIssued(name);
      }
    } catch (e) {
      return { state: 'unreadable', error: `cannot recover ${dir}: ${(e as Error).message}` };
    }
    let metaText: string;
    try {
      metaText = await fs.readFile(join(dir, 'meta.json'), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        const anyFile = await fs.stat(join(dir, 'cert.pem')).then(() => true, () => false);
        return anyFile ? { state: 'unreadable', error: 'meta.json missing' } : { state: 'absent' };
      }
      return { state: 'unreadable', error: `meta.json: ${(e as Error).message}` };
    }
    try {
      const meta = JSON.parse(metaText) as CertMeta;
      if (!meta || !Array.isArray(meta.names) || typeof meta.kind !== 'string') throw new Error('meta.json is malformed');
      const [cert, chain, key] = await Promise.all(
        ['cert.pem', 'chain.pem', 'privkey.pem'].map((f) => fs.readFile(join(dir, f), 'utf8')),
      );
      const info = parseCert(cert!);
      let keyMatches: boolean;
      try {
        keyMatches = keyMatchesCert(key!, cert!);
      } catch {
        return { state: 'unreadable', error: 'privkey.pem does not parse' };
      }
      const bundle: CertBundle = {
        name,
        names: meta.names,
        key: key!,
        cert: cert!,
        chain: chain!,
        kind: meta.kind,
        directoryUrl: meta.directoryUrl,
        ...(meta.profile ? { profile: meta.profile } : {}),
      };
      return { state: 'present', info, meta, bundle, keyMatches };
    } catch (e) {
      return { state: 'unreadable', error: (e as Error).message.replace(/\s+/g, ' ') };
    }
  }

  /** Replaces the stored certificate only once the new one is complete and its key matches. */
  async write(bundle: CertBundle, extra: { orderUrl?: string; issuedAt?: Date } = {}): Promise<void> {
    if (!keyMatchesCert(bundle.key, bundle.cert)) {
      throw new Error(`store: refusing to store ${bundle.name}: the key does not match the certificate`);
    }
    const meta: CertMeta = {
      name: bundle.name,
      names: bundle.names,
      kind: bundle.kind,
      directoryUrl: bundle.directoryUrl,
      issuedAt: (extra.issuedAt ?? new Date()).toISOString(),
      ...(extra.orderUrl ? { orderUrl: extra.orderUrl } : {}),
      ...(bundle.profile ? { profile: bundle.profile } : {}),
    };
    await ensureDir(join(this.dataDir, 'certs'), DIR_MODE);
    await writeFileSet(
      this.certDir(bundle.name),
      [
        { name: 'privkey.pem', data: bundle.key, mode: KEY_MODE },
        { name: 'cert.pem', data: bundle.cert, mode: PUBLIC_MODE },
        { name: 'chain.pem', data: bundle.chain, mode: PUBLIC_MODE },
        { name: 'fullchain.pem', data: bundle.cert + bundle.chain, mode: PUBLIC_MODE },
        { name: 'meta.json', data: `${JSON.stringify(meta, null, 2)}\n`, mode: PUBLIC_MODE },
      ],
      DIR_MODE,
    );
  }

  /**
   * Issue 22: changes whenever certificate `name`'s files may have: its folder (every write here renames into
   * it; a file added or removed) and cert.pem (a copy made over it in place). undefined: no folder. statSync:
   * a warm pass makes one per certificate, and libuv's pool made async stats 5× slower.
   */
  async stamp(name: string): Promise<string | undefined> {
    const dir = this.certDir(name);
    const of = (p: string) => statSync(p, { bigint: true, throwIfNoEntry: false });
    const d = of(dir);
    const c = d && of(join(dir, 'cert.pem'));
    return d && `${d.ino}:${d.mtimeNs}:${d.ctimeNs}/${c ? `${c.ino}:${c.size}:${c.mtimeNs}:${c.ctimeNs}` : '-'}`;
  }

  /** The certificate names the store holds a folder for (a name that could not be a folder is skipped). */
  async names(): Promise<string[]> {
    try {
      return (await fs.readdir(join(this.dataDir, 'certs'))).filter(isFolderSafeName);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  /**
   * Takes a decommissioned certificate out of the store, whole (key included: never lost), into
   * DATA_DIR/archive/<name>-<time>/. Returns where it went.
   */
  async archive(name: string, at: Date): Promise<string> {
    const archive = join(this.dataDir, 'archive');
    await ensureDir(archive, DIR_MODE);
    const to = join(archive, `${safeName(name)}-${at.toISOString().replace(/[:.]/g, '-')}`);
    await fs.rename(this.certDir(name), to);
    await fsyncDir(archive);
    await fsyncDir(join(this.dataDir, 'certs'));
    return to;
  }

  /**
   * Keeps what the CA issued, as downloaded, before anything parses or checks it: a certificate the CA issued
   * counts against its limits whether or not this pass manages to store it, so no later step (a parser that
   * throws on a certificate without a CN, a full disk, a crash) may lose it (issue 17 item 0).
   */
  async keepIssued(rec: IssuedRecord): Promise<void> {
    const dir = this.certDir(rec.name);
    await ensureDir(dir, DIR_MODE);
    await writeFileAtomic(join(dir, ISSUED_FILE), `${JSON.stringify(rec)}\n`, KEY_MODE);
  }

  /** The kept download is in the set now (or was judged unusable): forget it. */
  async dropIssued(name: string): Promise<void> {
    await fs.rm(join(this.certDir(name), ISSUED_FILE), { force: true });
  }

  /**
   * A kept download its pass did not store: stored now when it is complete (leaf parses, key matches, names
   * covered) and newer than the set in place. One that is not is renamed aside, never deleted: it is what the
   * CA issued, and the operator may want it.
   */
  private async promoteIssued(name: string): Promise<void> {
    const path = join(this.certDir(name), ISSUED_FILE);
    let rec: IssuedRecord;
    try {
      rec = JSON.parse(await fs.readFile(path, 'utf8')) as IssuedRecord;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`${ISSUED_FILE}: ${(e as Error).message}`);
    }
    const [cert, ...rest] = splitPemChain(rec.pem ?? '');
    let usable = false;
    let newer = false;
    try {
      const info = parseCert(cert ?? '');
      usable = keyMatchesCert(rec.key, cert!) && rec.names.every((n) => info.names.includes(n));
      const current = await fs.readFile(join(this.certDir(name), 'cert.pem'), 'utf8').then(parseCert, () => undefined);
      newer = !current || current.notAfter < info.notAfter || current.selfSigned;
    } catch {
      usable = false;
    }
    if (usable && newer) {
      const bundle: CertBundle = { name, names: rec.names, key: rec.key, cert: cert!, chain: rest.join(''), kind: rec.kind, directoryUrl: rec.directoryUrl, ...(rec.profile ? { profile: rec.profile } : {}) };
      await this.write(bundle, { orderUrl: rec.orderUrl, issuedAt: new Date(rec.issuedAt) });
      await this.dropIssued(name);
    } else if (!usable) {
      await fs.rename(path, join(this.certDir(name), `issued-unusable-${Date.now()}.json`));
    } else await this.dropIssued(name);
  }

  /** The ACME Renewal Information kept for the certificate in place (src/acme/ari.ts); undefined when none. */
  async readAri(name: string): Promise<AriState | undefined> {
    try {
      const s = JSON.parse(await fs.readFile(join(this.certDir(name), ARI_FILE), 'utf8')) as AriState;
      return typeof s?.certId === 'string' && typeof s.nextFetch === 'string' ? s : undefined;
    } catch {
      return undefined;
    }
  }

  async writeAri(name: string, state: AriState): Promise<void> {
    const dir = this.certDir(name);
    await ensureDir(dir, DIR_MODE);
    await writeFileAtomic(join(dir, ARI_FILE), `${JSON.stringify(state, null, 2)}\n`, 0o600);
  }

  async readStatus(name: string): Promise<CertStatus> {
    try {
      return JSON.parse(await fs.readFile(join(this.certDir(name), 'status.json'), 'utf8')) as CertStatus;
    } catch {
      return { failures: 0 };
    }
  }

  async writeStatus(name: string, status: CertStatus): Promise<void> {
    const dir = this.certDir(name);
    await ensureDir(dir, DIR_MODE);
    await writeFileAtomic(join(dir, 'status.json'), `${JSON.stringify(status, null, 2)}\n`, 0o600);
  }

  async knownIssuers(): Promise<KnownIssuers> {
    try {
      return JSON.parse(await fs.readFile(join(this.dataDir, 'issuers.json'), 'utf8')) as KnownIssuers;
    } catch {
      return {};
    }
  }

  private issuerWrites: Promise<void> = Promise.resolve();

  /** Serialised: parallel orders finishing together must not lose each other's entries. */
  rememberIssuer(issuer: string, kind: Kind): Promise<void> {
    const next = this.issuerWrites.then(async () => {
      const known = await this.knownIssuers();
      if (known[issuer] === kind) return;
      known[issuer] = kind;
      await writeFileAtomic(join(this.dataDir, 'issuers.json'), `${JSON.stringify(known, null, 2)}\n`, 0o600);
    });
    this.issuerWrites = next.catch(() => undefined);
    return next;
  }
}
