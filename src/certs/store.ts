/**
 * The local store (DESIGN §5): the source of truth for "local copy". Keys never leave it except to be
 * pushed. Every read and write goes through the STORE (src/stores/store.ts): files (DATA_DIR) or Redis. Layout
 * (store paths; on the files store, exactly the files under DATA_DIR):
 *   certs/<name>/{privkey.pem (0600), cert.pem, chain.pem, fullchain.pem, meta.json}
 *   certs/<name>/status.json     last attempt, last error, next attempt (changes without the certificate)
 *   certs/<name>/ari.json        the CA's renewal window for the certificate in place (RFC 9773) and when to ask again
 *   certs/<name>/issued.json     (0600) a certificate the CA issued, kept the moment it is downloaded and
 *                                before anything reads it; promoted into the set on the next read when the
 *                                pass that ordered it could not store it (issue 17 item 0)
 *   issuers.json                 issuer DN → kind, as seen from each configured directory
 * Certificate sets are written with the store's writeSet (all or nothing); keys and issued.json are secret
 * (0600 on files, encrypted at rest on Redis with STORE_ENCRYPTION_KEY), the public files 0644 on files.
 */
import { FilesStore } from '../stores/files/files-store.js';
import { JsonBook, shownPath } from '../stores/json-book.js';
import { readFolder, stampsOf, StoreUnavailableError, type FolderRead, type Store } from '../stores/store.js';
import { parseCert, parseCertWithDer, keyMatchesCert, keyMatchesCertDer, splitPemChain, type CertInfo } from './parse.js';
import type { Kind, KnownIssuers } from './kind.js';
import type { AriState } from '../acme/ari.js';

/** A private key's mode where a key is written as a file outside the store (CERTS_DIR's privkey.pem). */
export const KEY_MODE = 0o600;
/** The files store's mode for certificates: their readers (a balancer under another user) read them. */
const PUBLIC_MODE = 0o644;
const ISSUED_FILE = 'issued.json';
const ORDER_FILE = 'order.json';
/** What the store index (certs/index.ts) reads of a certificate: a change to any of them moves its stamp. */
const INDEXED_FILES = ['cert.pem', 'privkey.pem', 'chain.pem', 'meta.json', 'status.json', 'revoked.json', 'ari.json', 'issued.json'];
const ARI_FILE = 'ari.json';
/** What `read` reads of a certificate's folder: its set, and a kept download to promote. */
const COPY_FILES = ['meta.json', 'cert.pem', 'chain.pem', 'privkey.pem', ISSUED_FILE];

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

/** An order the CA created and no certificate has been kept for yet (see `keepOrder`). */
export interface PendingOrder {
  name: string;
  names: string[];
  directoryUrl: string;
  orderUrl: string;
  /** The key for the order's CSR, PEM; written as a secret like privkey.pem. */
  key: string;
  /** The order's own expiry, as the CA gave it (RFC 8555 §7.1.3); past it, the order is not resumed. */
  expires?: string;
  createdAt: string;
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

// The files store's, where every user of it now finds it (kept importable from here for the tests and callers of old).
export { dataDirError } from '../stores/files/files-store.js';

/** A certificate name can name a folder: nothing that could leave the store (or CERTS_DIR). */
export function isFolderSafeName(name: string): boolean {
  return /^[a-z0-9_][a-z0-9._-]*$/.test(name) && !name.includes('..');
}

function safeName(name: string): string {
  if (!isFolderSafeName(name)) throw new Error(`store: "${name}" cannot be used as a certificate folder name`);
  return name;
}

export class LocalStore {
  private readonly issuers: JsonBook<KnownIssuers>;

  constructor(readonly backend: Store) {
    // A torn or unreadable issuers.json is no reason to stop: the kinds are learnt again.
    this.issuers = new JsonBook<KnownIssuers>(backend, { path: 'issuers.json', empty: () => ({}), validate: (p) => p as KnownIssuers, indent: 2, lenient: true });
  }

  /** The store path of a certificate's folder, or of a file in it: "certs/<name>[/<file>]". */
  certPath(name: string, file?: string): string {
    return `certs/${safeName(name)}${file !== undefined ? `/${file}` : ''}`;
  }

  /**
   * The certificate's folder on disk: the files store only (hooks and operators read it there). Any other store
   * keeps no local copy, so this throws; `localDir` is the question that may be answered "none".
   */
  certDir(name: string): string {
    const dir = this.localDir(name);
    if (dir === undefined) throw new Error(`store: ${this.backend.where} keeps no certificate folders on this host (only STORE=files does)`);
    return dir;
  }

  /** The certificate's folder on disk on the files store; undefined on any other. */
  localDir(name: string): string | undefined {
    const path = this.certPath(name);
    return this.backend instanceof FilesStore ? this.backend.pathOf(path) : undefined;
  }

  /** How a certificate's folder (or a file in it) is named in messages: the folder itself on files. */
  shown(name: string, file?: string): string {
    return shownPath(this.backend, this.certPath(name, file));
  }

  async init(): Promise<void> {
    await this.backend.init();
  }

  /**
   * `recover: false` reads without finishing an interrupted write (for `plan`, which changes nothing).
   * Recovering also stores a certificate the CA issued that its pass could not store (see `keepIssued`).
   */
  async read(name: string, opts: { recover: boolean } = { recover: true }): Promise<LocalCopy> {
    // Stryker disable next-line ArrayDeclaration: an extra name asked for is read as absent and never looked at
    return (await this.readWith(name, opts, [])).local;
  }

  /**
   * The local copy and, from the same read of its folder, the texts of `extra` files beside it (the index's
   * status.json, revoked.json, ari.json: issue 22, one listing and a read of what is there per certificate).
   * `der`: the leaf's DER when the copy is present, for the ARI CertID without decoding the PEM again.
   */
  async readWith(name: string, opts: { recover: boolean }, extra: readonly string[]): Promise<{ local: LocalCopy; texts: FolderRead['files']; der?: Buffer }> {
    const dir = this.certPath(name);
    const files = [...COPY_FILES, ...extra];
    // A store that reads a folder at once says whether it holds an interrupted write or a kept download; any
    // other is recovered first, as always, then read.
    let folder = this.backend.readFolder ? await this.backend.readFolder(dir, files) : undefined;
    let recovered: string | undefined;
    if (opts.recover && (!folder || !folder.settled || folder.files.get(ISSUED_FILE) !== undefined)) {
      try {
        await this.backend.recover(dir);
        await this.promoteIssued(name);
      } catch (e) {
        if (e instanceof StoreUnavailableError) throw e; // not a broken copy: the pass stops, the next one reads again
        recovered = `cannot recover ${this.shown(name)}: ${(e as Error).message}`;
      }
      folder = undefined;
    }
    folder ??= await readFolder(this.backend, dir, files);
    if (recovered !== undefined) return { local: { state: 'unreadable', error: recovered }, texts: folder.files };
    return { ...this.copyOf(name, folder.files), texts: folder.files };
  }

  /** The local copy from its folder's files (`readWith`). */
  private copyOf(name: string, files: FolderRead['files']): { local: LocalCopy; der?: Buffer } {
    const metaText = files.get('meta.json');
    if (metaText instanceof Error) return { local: { state: 'unreadable', error: `meta.json: ${metaText.message}` } };
    if (metaText === undefined) return { local: files.get('cert.pem') !== undefined ? { state: 'unreadable', error: 'meta.json missing' } : { state: 'absent' } };
    try {
      const meta = JSON.parse(metaText) as CertMeta;
      if (!meta || !Array.isArray(meta.names) || typeof meta.kind !== 'string') throw new Error('meta.json is malformed');
      const [cert, chain, key] = ['cert.pem', 'chain.pem', 'privkey.pem'].map((f) => {
        const text = files.get(f);
        if (text instanceof Error) throw text;
        if (text === undefined) throw new Error(`ENOENT: no such file or directory, ${this.shown(name, f)}`);
        return text;
      });
      const { info, der } = parseCertWithDer(cert!);
      let keyMatches: boolean;
      try {
        keyMatches = keyMatchesCertDer(key!, der);
      } catch {
        return { local: { state: 'unreadable', error: 'privkey.pem does not parse' } };
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
      return { local: { state: 'present', info, meta, bundle, keyMatches }, der };
    } catch (e) {
      return { local: { state: 'unreadable', error: (e as Error).message.replace(/\s+/g, ' ') } };
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
    await this.backend.writeSet(this.certPath(bundle.name), [
      { name: 'privkey.pem', data: bundle.key, secret: true },
      { name: 'cert.pem', data: bundle.cert, mode: PUBLIC_MODE },
      { name: 'chain.pem', data: bundle.chain, mode: PUBLIC_MODE },
      { name: 'fullchain.pem', data: bundle.cert + bundle.chain, mode: PUBLIC_MODE },
      { name: 'meta.json', data: `${JSON.stringify(meta, null, 2)}\n`, mode: PUBLIC_MODE },
    ]);
  }

  /**
   * Issue 22: changes whenever certificate `name`'s files may have. undefined: no folder. See `stamps`.
   */
  async stamp(name: string): Promise<string | undefined> {
    return (await this.stamps([name]))[0];
  }

  /**
   * The stamps of many certificates with one call to the store (a warm pass stamps every certificate):
   * - files: the folder (every write here renames into it; a file added or removed) and cert.pem (a copy made over
   *   it in place by hand), two statSyncs;
   * - a store whose folders have stamps (Redis: the folder's generation, moved by every write script): the folder's;
   * - any other store: each file the index reads.
   */
  async stamps(names: string[]): Promise<(string | undefined)[]> {
    const files = this.backend instanceof FilesStore ? ['', '/cert.pem'] : this.backend.folderStamps ? [''] : INDEXED_FILES.map((f) => `/${f}`);
    const dirs = names.map((name) => this.certPath(name));
    const stamps = await stampsOf(this.backend, dirs.flatMap((dir) => files.map((f) => dir + f)));
    const n = files.length;
    // The files store's pair without an array per certificate (a warm pass stamps every one, issue 22).
    if (n === 2) {
      return dirs.map((_, i) => {
        const folder = stamps[2 * i];
        const cert = stamps[2 * i + 1];
        return folder === undefined && cert === undefined ? undefined : `${folder ?? '-'}/${cert ?? '-'}`;
      });
    }
    return dirs.map((_, i) => {
      const mine = stamps.slice(i * n, (i + 1) * n);
      return mine.every((x) => x === undefined) ? undefined : mine.map((x) => x ?? '-').join('/');
    });
  }

  /** The certificate names the store holds a folder for (a name that could not be a folder is skipped). */
  async names(): Promise<string[]> {
    return (await this.backend.list('certs')).filter(isFolderSafeName);
  }

  /**
   * Takes a decommissioned certificate out of the store, whole (key included: never lost), into
   * archive/<name>-<time>/ (DATA_DIR/archive on files). Returns where it went, as messages name it.
   */
  async archive(name: string, at: Date): Promise<string> {
    const to = `archive/${safeName(name)}-${at.toISOString().replace(/[:.]/g, '-')}`;
    await this.backend.move(this.certPath(name), to);
    return shownPath(this.backend, to);
  }

  /**
   * Keeps what the CA issued, as downloaded, before anything parses or checks it: a certificate the CA issued
   * counts against its limits whether or not this pass manages to store it, so no later step (a parser that
   * throws on a certificate without a CN, a full disk, a crash) may lose it (issue 17 item 0).
   */
  async keepIssued(rec: IssuedRecord): Promise<void> {
    await this.backend.write(this.certPath(rec.name, ISSUED_FILE), `${JSON.stringify(rec)}\n`, { secret: true });
  }

  /** The kept download is in the set now (or was judged unusable): forget it. */
  async dropIssued(name: string): Promise<void> {
    await this.backend.remove(this.certPath(name, ISSUED_FILE));
  }

  /**
   * An order in flight, with the key its CSR will carry (issue 20 item 2): kept from the moment the CA creates it
   * until its certificate is kept, so a manager that takes over from one killed mid-order finishes that order
   * rather than making a second one.
   */
  async keepOrder(rec: PendingOrder): Promise<void> {
    await this.backend.write(this.certPath(rec.name, ORDER_FILE), `${JSON.stringify(rec)}\n`, { secret: true });
  }

  /** The order kept for `name`, or undefined (none, or a record that does not parse: a fresh order is made). */
  async readOrder(name: string): Promise<PendingOrder | undefined> {
    const text = await this.backend.read(this.certPath(name, ORDER_FILE));
    if (text === undefined) return undefined;
    try {
      const rec = JSON.parse(text) as PendingOrder;
      // Stryker disable next-line OptionalChaining: a record of `null` throws inside the try, and the catch gives undefined too
      const ok = typeof rec?.orderUrl === 'string' && typeof rec.key === 'string' && typeof rec.directoryUrl === 'string' && Array.isArray(rec.names);
      return ok ? rec : undefined;
    } catch {
      return undefined;
    }
  }

  async dropOrder(name: string): Promise<void> {
    await this.backend.remove(this.certPath(name, ORDER_FILE));
  }

  /**
   * A kept download its pass did not store: stored now when it is complete (leaf parses, key matches, names
   * covered) and newer than the set in place. One that is not is renamed aside, never deleted: it is what the
   * CA issued, and the operator may want it.
   */
  private async promoteIssued(name: string): Promise<void> {
    const path = this.certPath(name, ISSUED_FILE);
    let rec: IssuedRecord;
    try {
      const text = await this.backend.read(path);
      if (text === undefined) return;
      rec = JSON.parse(text) as IssuedRecord;
    } catch (e) {
      if (e instanceof StoreUnavailableError) throw e;
      throw new Error(`${ISSUED_FILE}: ${(e as Error).message}`);
    }
    // Stryker disable next-line StringLiteral: a download without a PEM is unusable whatever stands for it
    const [cert, ...rest] = splitPemChain(rec.pem ?? '');
    // Stryker disable next-line BooleanLiteral: set before it is read, or set false by the catch
    let usable = false;
    // Stryker disable next-line BooleanLiteral: set before it is read whenever `usable` is true
    let newer = false;
    try {
      // Stryker disable next-line StringLiteral: no certificate is unusable whatever stands for it
      const info = parseCert(cert ?? '');
      usable = keyMatchesCert(rec.key, cert!) && rec.names.every((n) => info.names.includes(n));
      // A cert.pem that cannot be read or parsed is no certificate in place: the download replaces it (before, its
      // parse error made the download count as unusable, and the set stayed broken).
      const current = await this.backend.read(this.certPath(name, 'cert.pem')).then((t) => (t === undefined ? undefined : parseCert(t))).catch(() => undefined);
      newer = !current || current.notAfter < info.notAfter || current.selfSigned;
    } catch {
      usable = false;
    }
    if (usable && newer) {
      const bundle: CertBundle = { name, names: rec.names, key: rec.key, cert: cert!, chain: rest.join(''), kind: rec.kind, directoryUrl: rec.directoryUrl, ...(rec.profile ? { profile: rec.profile } : {}) };
      await this.write(bundle, { orderUrl: rec.orderUrl, issuedAt: new Date(rec.issuedAt) });
      await this.dropIssued(name);
    } else if (!usable) {
      await this.backend.move(path, this.certPath(name, `issued-unusable-${Date.now()}.json`));
    } else await this.dropIssued(name);
  }

  /** The ACME Renewal Information kept for the certificate in place (src/acme/ari.ts); undefined when none. */
  async readAri(name: string): Promise<AriState | undefined> {
    try {
      return ariFrom(await this.backend.read(this.certPath(name, ARI_FILE)));
    } catch (e) {
      if (e instanceof StoreUnavailableError) throw e; // unreachable is not "no record": the index would keep it
      return undefined;
    }
  }

  async writeAri(name: string, state: AriState): Promise<void> {
    await this.backend.write(this.certPath(name, ARI_FILE), `${JSON.stringify(state, null, 2)}\n`);
  }

  async readStatus(name: string): Promise<CertStatus> {
    try {
      return statusFrom(await this.backend.read(this.certPath(name, 'status.json')));
    } catch (e) {
      if (e instanceof StoreUnavailableError) throw e; // unreachable is not "no record": the index would keep it
      return { failures: 0 };
    }
  }

  async writeStatus(name: string, status: CertStatus): Promise<void> {
    await this.backend.write(this.certPath(name, 'status.json'), `${JSON.stringify(status, null, 2)}\n`);
  }

  knownIssuers(): Promise<KnownIssuers> {
    return this.issuers.load();
  }

  /** Serialised: parallel orders finishing together must not lose each other's entries. */
  async rememberIssuer(issuer: string, kind: Kind): Promise<void> {
    await this.issuers.change((known) => (known[issuer] === kind ? undefined : { ...known, [issuer]: kind }));
  }
}

/** ari.json's text (or its read's Error) as kept: undefined when absent, unreadable or not a record. */
export function ariFrom(text: string | undefined | Error): AriState | undefined {
  // Stryker disable next-line LogicalOperator: JSON.parse of nothing or of an Error's text throws, and the catch gives undefined too
  if (text === undefined || text instanceof Error) return undefined;
  try {
    const s = JSON.parse(text) as AriState | null;
    // Stryker disable next-line OptionalChaining: a record of `null` throws inside the try, and the catch gives undefined too
    return typeof s?.certId === 'string' && typeof s.nextFetch === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
}

/** status.json's text (or its read's Error): no failures when absent, unreadable or torn. */
export function statusFrom(text: string | undefined | Error): CertStatus {
  // Stryker disable next-line LogicalOperator: JSON.parse of nothing or of an Error's text throws, and the catch gives no failures too
  if (text === undefined || text instanceof Error) return { failures: 0 };
  try {
    return (JSON.parse(text) as CertStatus | null) ?? { failures: 0 };
  } catch {
    return { failures: 0 };
  }
}
