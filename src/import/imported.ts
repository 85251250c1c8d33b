/**
 * Which certificates certwrangler took over by import (certbot's store), by name and SHA-256 fingerprint, kept in
 * DATA_DIR/imported.json. An orchestrator copy with one of these fingerprints is certwrangler's own: its key is in
 * the local store, so replacing it in place loses nothing, and the seed's certificates in Rancher are renewed from
 * then on instead of being left alone as foreign. Kept after a renewal too: if the push of the renewed certificate
 * fails, the copy still in Rancher is the imported one, and the next pass must still be allowed to replace it.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { ensureDir, writeFileAtomic } from '../certs/atomic.js';
import { DIR_MODE } from '../certs/store.js';

interface ImportedFile {
  version: 1;
  /** Certificate name → the fingerprints (CertInfo.fingerprint) imported under it, with where each came from. */
  certs: Record<string, Array<{ fingerprint: string; from: string; at: string }>>;
}

export type ImportedFingerprints = ReadonlyMap<string, ReadonlySet<string>>;

export class ImportedBook {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, 'imported.json');
  }

  private async read(): Promise<ImportedFile> {
    let text: string;
    try {
      text = await fs.readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, certs: {} };
      throw new Error(`${this.path} is unreadable (${(e as Error).message})`);
    }
    const parsed = JSON.parse(text) as ImportedFile;
    if (parsed?.version !== 1 || typeof parsed.certs !== 'object' || parsed.certs === null) {
      throw new Error(`${this.path} is not a certwrangler import record (version 1); restore it, or run the import again to rebuild it`);
    }
    return parsed;
  }

  /** Name → imported fingerprints; empty when nothing was ever imported. */
  async load(): Promise<ImportedFingerprints> {
    const file = await this.read();
    return new Map(Object.entries(file.certs).map(([name, list]) => [name, new Set(list.map((e) => e.fingerprint))]));
  }

  /** Adds what is new; writes nothing when everything was recorded already. */
  async record(entries: Array<{ name: string; fingerprint: string; from: string }>, at = new Date()): Promise<void> {
    const file = await this.read();
    let changed = false;
    for (const e of entries) {
      const list = (file.certs[e.name] ??= []);
      if (list.some((x) => x.fingerprint === e.fingerprint)) continue;
      list.push({ fingerprint: e.fingerprint, from: e.from, at: at.toISOString() });
      changed = true;
    }
    if (!changed) return;
    await ensureDir(join(this.path, '..'), DIR_MODE);
    await writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
  }
}
