/**
 * Which certificates certwrangler took over by import (certbot's store), by name and SHA-256 fingerprint, kept in
 * the store's imported.json. An orchestrator copy with one of these fingerprints is certwrangler's own: its key is in
 * the local store, so replacing it in place loses nothing, and the seed's certificates in Rancher are renewed from
 * then on instead of being left alone as foreign. Kept after a renewal too: if the push of the renewed certificate
 * fails, the copy still in Rancher is the imported one, and the next pass must still be allowed to replace it.
 */
import { JsonBook } from '../stores/json-book.js';
import type { Store } from '../stores/store.js';

interface ImportedFile {
  version: 1;
  /** Certificate name → the fingerprints (CertInfo.fingerprint) imported under it, with where each came from. */
  certs: Record<string, Array<{ fingerprint: string; from: string; at: string }>>;
}

export type ImportedFingerprints = ReadonlyMap<string, ReadonlySet<string>>;

export class ImportedBook {
  /** Where the book is, as messages name it (the file on STORE=files). */
  readonly path: string;
  private readonly book: JsonBook<ImportedFile>;

  constructor(store: Store) {
    this.book = new JsonBook<ImportedFile>(store, {
      path: 'imported.json',
      empty: () => ({ version: 1, certs: {} }),
      validate: (parsed) => {
        const f = parsed as ImportedFile;
        if (f?.version !== 1 || typeof f.certs !== 'object' || f.certs === null) throw new Error('not version 1');
        return f;
      },
      indent: 2,
      invalid: (shown) => `${shown} is not a certwrangler import record (version 1); restore it, or run the import again to rebuild it`,
    });
    this.path = this.book.shown;
  }

  private read(): Promise<ImportedFile> {
    return this.book.load();
  }

  /** Name → imported fingerprints; empty when nothing was ever imported. */
  async load(): Promise<ImportedFingerprints> {
    const file = await this.read();
    return new Map(Object.entries(file.certs).map(([name, list]) => [name, new Set(list.map((e) => e.fingerprint))]));
  }

  /** Adds what is new; writes nothing when everything was recorded already. */
  async record(entries: Array<{ name: string; fingerprint: string; from: string }>, at = new Date()): Promise<void> {
    await this.book.change((file) => {
      let changed = false;
      for (const e of entries) {
        const list = (file.certs[e.name] ??= []);
        if (list.some((x) => x.fingerprint === e.fingerprint)) continue;
        list.push({ fingerprint: e.fingerprint, from: e.from, at: at.toISOString() });
        changed = true;
      }
      return changed ? file : undefined;
    });
  }
}
