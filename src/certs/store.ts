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
import { StoreUnavailableError, type Store } from '../stores/store.js';
import { parseCert, keyMatchesCert, splitPemChain, type CertInfo } from './parse.js';
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
    const dir = this.certPath(name);
    try {
      if (opts.recover) {
        await this.backend.recover(dir);
        await this.promoteIssued(name);
      }
    } catch (e) {
      if (e instanceof StoreUnavailableError) throw e; // not a broken copy: the pass stops, the next one reads again
      return { state: 'unreadable', error: `cannot recover ${this.shown(name)}: ${(e as Error).message}` };
    }
    let metaText: string | undefined;
    try {
      metaText = await this.backend.read(`${dir}/meta.json`);
    } catch (e) {
      if (e instanceof StoreUnavailableError) throw e; // not a broken copy: the pass stops, the next one reads again
      return { state: 'unreadable', error: `meta.json: ${(e as Error).message}` };
    }
    if (metaText === undefined) {
      const anyFile = (await this.backend.stamp(`${dir}/cert.pem`).catch(() => undefined)) !== undefined;
      return anyFile ? { state: 'unreadable', error: 'meta.json missing' } : { state: 'absent' };
    }
    try {
      const meta = JSON.parse(metaText) as CertMeta;
      if (!meta || !Array.isArray(meta.names) || typeof meta.kind !== 'string') throw new Error('meta.json is malformed');
      const [cert, chain, key] = await Promise.all(
        ['cert.pem', 'chain.pem', 'privkey.pem'].map(async (f) => {
          const text = await this.backend.read(`${dir}/${f}`);
          if (text === undefined) throw new Error(`ENOENT: no such file or directory, ${this.shown(name, f)}`);
          return text;
        }),
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
      if (e instanceof StoreUnavailableError) throw e; // not a broken copy: the pass stops, the next one reads again
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
    await this.backend.writeSet(this.certPath(bundle.name), [
      { name: 'privkey.pem', data: bundle.key, secret: true },
      { name: 'cert.pem', data: bundle.cert, mode: PUBLIC_MODE },
      { name: 'chain.pem', data: bundle.chain, mode: PUBLIC_MODE },
      { name: 'fullchain.pem', data: bundle.cert + bundle.chain, mode: PUBLIC_MODE },
      { name: 'meta.json', data: `${JSON.stringify(meta, null, 2)}\n`, mode: PUBLIC_MODE },
    ]);
  }

  /**
   * Issue 22: changes whenever certificate `name`'s files may have: its folder (every write here renames into
   * it; a file added or removed) and cert.pem (a copy made over it in place). undefined: no folder. statSync:
   * a warm pass makes one per certificate, and libuv's pool made async stats 5× slower.
   */
  async stamp(name: string): Promise<string | undefined> {
    const dir = this.certPath(name);
    // On files, every write here renames into the folder, so the folder's stamp sees them all, and cert.pem's a
    // copy made over it in place. Elsewhere a folder has no stamp of its own: each file the index reads is asked.
    const paths = this.backend instanceof FilesStore ? [dir, `${dir}/cert.pem`] : INDEXED_FILES.map((f) => `${dir}/${f}`);
    const stamps = await Promise.all(paths.map((p) => this.backend.stamp(p)));
    return stamps.every((x) => x === undefined) ? undefined : stamps.map((x) => x ?? '-').join('/');
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
    const [cert, ...rest] = splitPemChain(rec.pem ?? '');
    let usable = false;
    let newer = false;
    try {
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
      const s = JSON.parse((await this.backend.read(this.certPath(name, ARI_FILE))) ?? 'null') as AriState;
      return typeof s?.certId === 'string' && typeof s.nextFetch === 'string' ? s : undefined;
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
      const s = JSON.parse((await this.backend.read(this.certPath(name, 'status.json'))) ?? 'null') as CertStatus | null;
      return s ?? { failures: 0 };
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
