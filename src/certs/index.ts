/**
 * The in-memory index of the local store (issue 22 item 2): what a pass decides from, held between passes so
 * that a warm pass costs one change stamp per certificate instead of reading and parsing its files.
 *
 * Kept per certificate: names, dates, fingerprints, issuer, kind and meta (CertInfo and CertMeta, plain data),
 * whether the key matched, status.json, revoked.json, ari.json and the ARI CertID. Never a PEM, a parsed X509
 * object or key material: a push or an order reads the full set again (`LocalStore.read`).
 *
 * What invalidates an entry: its change stamp (`LocalStore.stamps`) differs from the one taken before the entry
 * was read. On files the stamp is the folder's (every write of the store renames into it) and cert.pem's (a copy
 * made by hand over it in place), two statSyncs; on Redis it is the folder's generation (store:dgen:<folder>, set by
 * every write, removal or move script in the same script), one MGET entry; on a store without folder stamps, each
 * file the index reads. Every write the manager makes moves the stamp, so the next pass reads that certificate
 * again; the ARI answer observe keeps is put into the entry as it is written (`noteAri`), so a fleet's ARI polls
 * do not turn into a cold pass. A certificate whose folder is gone is absent. Not seen: on files, a file other
 * than cert.pem overwritten in place alone (privkey.pem, meta.json, status.json), until the certificate is written
 * again or the manager restarts (a hand copy of a certificate replaces cert.pem too); on Redis, a change made
 * around the store's scripts (redis-cli HSET), which does not move the folder's generation.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { ariCertId, type AriState } from '../acme/ari.js';
import { REVOKED_FILE, revocationFrom, type RevocationRecord } from '../revoke.js';
import { intern } from './intern.js';
import type { CertInfo } from './parse.js';
import { ariFrom, statusFrom, type CertMeta, type CertStatus, type LocalCopy, type LocalStore } from './store.js';

/** The local copy without its PEMs and key: `state: 'indexed'` stands for 'present' (read it to get the bundle). */
export type IndexedCopy =
  | { state: 'absent' }
  | { state: 'unreadable'; error: string }
  | { state: 'indexed'; info: CertInfo; meta: IndexedMeta; keyMatches: boolean };

/**
 * What a decision reads of meta.json (the kind, the CA and the profile of the certificate in place). The order's URL
 * and the time of issue, one unique string each per certificate, are read with the full copy by the steps that need
 * them (resuming an order, act.ts), never from the index.
 */
export type IndexedMeta = Pick<CertMeta, 'name' | 'names' | 'kind' | 'directoryUrl' | 'profile'>;

export interface IndexEntry {
  name: string;
  /** The stamp taken before the files were read; undefined: no folder. */
  stamp: string | undefined;
  /** Read with recovery (an interrupted write finished): `plan`'s reads do not count for a pass that recovers. */
  recovered: boolean;
  local: IndexedCopy;
  status: CertStatus;
  revocation?: RevocationRecord;
  /** ari.json as kept. */
  ari?: AriState;
  /** The ARI CertID of the certificate in place (RFC 9773 §4.1), for one a CA issued. */
  certId?: string;
}

export interface IndexStats {
  /** Entries read from the files in the last `entries` call (cold, or their stamp moved). */
  read: number;
  /** Entries served from memory after one stamp. */
  kept: number;
}

// Stamps taken before the event loop is let go: a statSync costs a few microseconds, and 100,000 in one go
// would hold the status page for a second.
const STAMPS_PER_TURN = 250;
// Certificates read at once when their stamp moved: each read opens several files, and 10,000 at once exceed
// the open-file limit (the bound observe always had).
const READ_CONCURRENCY = 64;
// Reads made before the event loop is let go: the files store reads a folder synchronously (tens of µs), and
// the awaits between reads are microtasks, so 10,000 reads would otherwise hold the status page and the webroot
// for the whole cold pass.
const READS_PER_TURN = 100;
let readsThisTurn = 0;
const STATUS_FILE = 'status.json';
const ARI_FILE = 'ari.json';
/** Read with the certificate's own files, from the same listing of its folder. */
const INDEX_FILES = [STATUS_FILE, REVOKED_FILE, ARI_FILE];
/** The status of a certificate without status.json (no failure yet): one object for all of them, never written to. */
const NO_STATUS: CertStatus = Object.freeze({ failures: 0 });

function summary(name: string, local: LocalCopy): IndexedCopy {
  if (local.state !== 'present') return local;
  const { info, meta } = local;
  // Each name held once: the entry's own where it is that name. The parser's names are slices of the
  // subjectAltName's text ("DNS:a.test, …"), and a slice keeps the whole text it was cut from alive.
  const names = info.names.map((n) => (n === name ? name : n));
  const same = (n: string) => (n === name ? name : (names.find((m) => m === n) ?? n));
  const keptInfo: CertInfo = {
    commonName: info.commonName === undefined ? undefined : same(info.commonName),
    names,
    notBefore: info.notBefore,
    notAfter: info.notAfter,
    fingerprint: info.fingerprint,
    fingerprintSha1: info.fingerprintSha1,
    issuer: info.issuer,
    subject: info.subject,
    serialNumber: info.serialNumber,
    selfSigned: info.selfSigned,
  };
  // meta.json's names are the certificate's own as a rule: then one array for both.
  const metaNames = meta.names.length === names.length && meta.names.every((n, i) => n === names[i]) ? names : meta.names.map(same);
  const kept: IndexedMeta = { name: same(meta.name), names: metaNames, kind: intern(meta.kind), directoryUrl: intern(meta.directoryUrl) };
  if (meta.profile !== undefined) kept.profile = intern(meta.profile);
  // Fresh objects: the LocalCopy (and its bundle, key included) is left to the garbage collector.
  return { state: 'indexed', info: keptInfo, meta: kept, keyMatches: local.keyMatches };
}

function certIdOf(local: LocalCopy, der: Buffer | undefined): string | undefined {
  if (local.state !== 'present' || !local.meta.directoryUrl || local.info.selfSigned) return undefined;
  try {
    return ariCertId(der ?? local.bundle.cert);
  } catch {
    return undefined;
  }
}

export class StoreIndex {
  private readonly byName = new Map<string, IndexEntry>();
  readonly stats: IndexStats = { read: 0, kept: 0 };

  constructor(readonly store: LocalStore) {}

  /** How many certificates the index holds. */
  get size(): number {
    return this.byName.size;
  }

  /** What is held for `name`, without looking at the files (the status page, metrics). */
  peek(name: string): IndexEntry | undefined {
    return this.byName.get(name);
  }

  /**
   * The entries of `names`, each read from its files only when it is not held or its stamp moved.
   * `recover`: finish an interrupted write first (a pass that may act); `plan` reads without.
   */
  async entries(names: string[], opts: { recover: boolean }): Promise<Map<string, IndexEntry>> {
    this.stats.read = 0;
    this.stats.kept = 0;
    const out = new Map<string, IndexEntry>();
    const stale: { name: string; stamp: string | undefined }[] = [];
    // A turn's stamps in one call to the store (statSyncs on files, MGETs on Redis), then the event loop is let go.
    for (let from = 0; from < names.length; from += STAMPS_PER_TURN) {
      if (from > 0) await yieldToLoop();
      const turn = names.slice(from, from + STAMPS_PER_TURN);
      const stamps = await this.store.stamps(turn);
      for (let i = 0; i < turn.length; i++) {
        const name = turn[i]!;
        const stamp = stamps[i];
        const held = this.byName.get(name);
        if (held && held.stamp === stamp && (held.recovered || !opts.recover)) {
          out.set(name, held);
          this.stats.kept++;
        } else stale.push({ name, stamp });
      }
    }
    let next = 0;
    const worker = async () => {
      while (next < stale.length) {
        const { name, stamp } = stale[next++]!;
        out.set(name, await this.load(name, stamp, opts.recover));
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, stale.length) }, worker));
    this.stats.read = stale.length;
    return out;
  }

  /** Reads one certificate's files into its entry: one read of its folder (LocalStore.readWith). */
  private async load(name: string, stamp: string | undefined, recover: boolean): Promise<IndexEntry> {
    if (++readsThisTurn >= READS_PER_TURN) {
      readsThisTurn = 0;
      await yieldToLoop();
    }
    const { local, texts, der } = await this.store.readWith(name, { recover }, INDEX_FILES);
    // The stamp from before the read: a change during it (a hand copy, or the read's own recovery or promotion)
    // leaves the files with another stamp, so the next pass reads them again.
    const entry: IndexEntry = { name, stamp, recovered: recover, local: summary(name, local), status: texts.get(STATUS_FILE) === undefined ? NO_STATUS : statusFrom(texts.get(STATUS_FILE)) };
    const revocation = revocationFrom(texts.get(REVOKED_FILE));
    if (revocation) entry.revocation = revocation;
    const ari = ariFrom(texts.get(ARI_FILE));
    if (ari) entry.ari = ari;
    const certId = certIdOf(local, der);
    if (certId) entry.certId = certId;
    this.set(entry);
    return entry;
  }

  private set(entry: IndexEntry): void {
    this.byName.set(entry.name, entry);
  }

  /** The full local copy, PEMs and key, for a push or an order: read from the files, never held. */
  full(name: string, opts: { recover: boolean }): Promise<LocalCopy> {
    return this.store.read(name, opts);
  }

  /** Observe kept a new ARI answer for `name` (store.writeAri): held as written, under the stamp the write left. */
  async noteAri(name: string, state: AriState): Promise<void> {
    const held = this.byName.get(name);
    if (!held) return;
    this.set({ ...held, ari: state, stamp: await this.store.stamp(name) });
  }

  /** Forgets what is not in `names` (a certificate archived, or no longer asked for and gone). */
  retain(names: Iterable<string>): void {
    const keep = new Set(names);
    for (const name of this.byName.keys()) if (!keep.has(name)) this.byName.delete(name);
  }
}

// One index per store object: a running manager keeps its deps (and so its store) from pass to pass.
const indexes = new WeakMap<LocalStore, StoreIndex>();

/** The index of `store`, made on first use. */
export function indexOf(store: LocalStore): StoreIndex {
  let index = indexes.get(store);
  if (!index) indexes.set(store, (index = new StoreIndex(store)));
  return index;
}
