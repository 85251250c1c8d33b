/**
 * Certificates asked for at run time (`PUT /api/certificates/<name>`), kept in the store's requests.json
 * so that they survive a restart. Names are checked with the same rules as DOMAINS, when asked for and
 * again on every read, so a later ALLOWED_DOMAINS applies to them too.
 */
import { JsonBook } from './stores/json-book.js';
import type { Store } from './stores/store.js';
import { certName, parseDomainList, type DomainsOptions, type ParsedDomains, type WantedCert } from './domains.js';
import { resolveOwnership } from './ownership.js';

export const API_SOURCE = 'api';

interface RequestsFile {
  version: 1;
  certificates: Record<string, { names: string[]; requestedAt: string }>;
}

export class RequestError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = 'RequestError';
  }
}

export class RequestBook {
  private readonly book: JsonBook<RequestsFile>;
  /** Writes one after another, so two requests at once cannot lose each other's change. */
  private chain: Promise<unknown> = Promise.resolve();

  /** `higher`: the certificates of DOMAINS, which outrank the API (a request may not widen or copy them). */
  constructor(store: Store, private readonly domains: DomainsOptions, private readonly higher: WantedCert[] = []) {
    this.book = new JsonBook<RequestsFile>(store, {
      path: 'requests.json',
      empty: () => ({ version: 1, certificates: {} }),
      validate: (parsed) => {
        const f = parsed as RequestsFile;
        if (f?.version !== 1 || typeof f.certificates !== 'object' || f.certificates === null) throw new Error('not a version 1 requests file');
        return f;
      },
      indent: 2,
      unreadable: (shown, why) => `${shown} is unreadable: ${why}`,
      invalid: (shown, why) => `${shown} is not valid (${why}); fix or move it aside to drop the run-time certificate requests`,
    });
  }

  private load(): Promise<RequestsFile> {
    return this.book.load();
  }

  /** The run-time requests as wanted certificates, checked against today's rules. */
  async wanted(): Promise<ParsedDomains> {
    const file = await this.load();
    const out: ParsedDomains = { certs: [], refused: [] };
    for (const { names } of Object.values(file.certificates)) {
      const p = parseDomainList(names.join(','), API_SOURCE, { ...this.domains, onePerName: false });
      out.certs.push(...p.certs);
      out.refused.push(...p.refused);
    }
    return out;
  }

  /**
   * Validates and records one request. The certificate's name is its first name, so `name` must be one
   * of `names`; it is moved to the front.
   */
  put(name: string, names: unknown): Promise<{ name: string; names: string[]; created: boolean }> {
    if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string')) {
      return Promise.reject(new RequestError('body must be {"names": ["example.com", "www.example.com"]}: a non-empty list of DNS names', 400));
    }
    if (names.some((n: string) => /[,;]/.test(n))) return Promise.reject(new RequestError('each entry of "names" is one DNS name, without "," or ";"', 400));
    const parsed = parseDomainList(names.join(','), API_SOURCE, { ...this.domains, onePerName: false });
    if (parsed.refused.length > 0) return Promise.reject(new RequestError(parsed.refused[0]!.error, 400));
    const cert = parsed.certs[0]!;
    const index = cert.names.findIndex((n) => certName([n]) === name);
    if (index < 0) {
      return Promise.reject(new RequestError(`the certificate's name is its first name: "${name}" is not among ${JSON.stringify(cert.names)}`, 400));
    }
    const ordered = [cert.names[index]!, ...cert.names.filter((_, i) => i !== index)];
    return this.serial(async () => {
      // Refused now rather than on every pass: DOMAINS owns its certificates and their names.
      const owned = await resolveOwnership({ domains: this.higher, api: [{ ...cert, name, names: ordered }], labels: undefined, claims: { version: 1, claims: {}, newSets: {} }, now: new Date(), maxNewPerDay: 0, hasCopy: async () => false });
      if (owned.refused.length > 0) throw new RequestError(owned.refused[0]!.error, 409);
      const file = await this.load();
      const created = !(name in file.certificates);
      file.certificates[name] = { names: ordered, requestedAt: file.certificates[name]?.requestedAt ?? new Date().toISOString() };
      await this.save(file);
      return { name, names: ordered, created };
    });
  }

  /** Stops asking for a run-time certificate; the certificate itself and its files stay where they are. */
  delete(name: string): Promise<boolean> {
    return this.serial(async () => {
      const file = await this.load();
      if (!(name in file.certificates)) return false;
      delete file.certificates[name];
      await this.save(file);
      return true;
    });
  }

  private save(file: RequestsFile): Promise<void> {
    return this.book.save(file);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }
}
