/**
 * The pending-reload book (issue 16 item 5, DESIGN §10 "a reload that did not take is retried as state"):
 * a certificate was written to Rancher, but a balancer that serves it has not run its `update` action
 * since. One entry per certificate and balancer, kept in the store's rancher-reloads.json (DATA_DIR's on files) so that a restart
 * does not forget it, retried with backoff and without a new order.
 */
import { JsonBook } from '../../stores/json-book.js';
import type { Store } from '../../stores/store.js';

// A balancer's `update` is refused while it is busy (upgrading, another update); such a process usually
// ends within a couple of minutes (janeczku waits up to 2 min for one, specs §4.5), so the first retry
// comes a minute later. Doubling to an hour: once the cause is fixed, a balancer serves the new
// certificate within the hour, while one that stays broken costs Rancher at most one GET an hour.
export const RELOAD_RETRY_FIRST_MS = 60 * 1000;
export const RELOAD_RETRY_MAX_MS = 60 * 60 * 1000;

/** The whole listing failed, so which balancers serve the certificate is not known yet. */
export const EVERY_BALANCER = '*';

export interface PendingReload {
  /** Certificate name (the Rancher resource's name) and id. */
  cert: string;
  certId: string;
  /** Balancer id, or EVERY_BALANCER when the balancers could not be listed. */
  balancerId: string;
  balancerName: string;
  /** The balancer's links.self, read again with one GET at each retry. */
  self: string;
  /** SHA-1 fingerprint of the certificate that was pushed, for the operator. */
  fingerprint: string;
  /** Why it is pending, e.g. "update action failed: … 500" or "balancer is upgrading". */
  reason: string;
  since: string;
  attempts: number;
  nextAttempt: string;
}

interface ReloadsFile {
  version: 1;
  pending: PendingReload[];
}

export function retryDelay(attempts: number): number {
  return Math.min(RELOAD_RETRY_FIRST_MS * 2 ** Math.max(0, attempts - 1), RELOAD_RETRY_MAX_MS);
}

export function describePending(p: Pick<PendingReload, 'balancerId' | 'balancerName' | 'reason'>): string {
  const who = p.balancerId === EVERY_BALANCER ? 'every balancer that serves it' : `balancer ${p.balancerName} (${p.balancerId})`;
  return `${who}: reload pending, ${p.reason}`;
}

const ENTRY_FIELDS = ['cert', 'certId', 'balancerId', 'balancerName', 'self', 'fingerprint', 'reason', 'since', 'nextAttempt'] as const;

function validReloads(parsed: unknown): ReloadsFile {
  const f = parsed as ReloadsFile;
  if (f?.version !== 1 || !Array.isArray(f.pending)) throw new Error('not a version 1 reloads file');
  for (const p of f.pending) {
    for (const field of ENTRY_FIELDS) {
      if (typeof p?.[field] !== 'string') throw new Error(`an entry has no ${field}`);
    }
    if (!Number.isInteger(p.attempts) || Number.isNaN(Date.parse(p.nextAttempt))) throw new Error(`the entry for ${p.cert} and balancer ${p.balancerId} has no attempts count or a bad nextAttempt`);
  }
  return f;
}

export class ReloadBook {
  /** Where the book is, as messages name it (the file on STORE=files). */
  readonly path: string;
  /** One change at a time (JsonBook's chain), so concurrent pushes cannot lose each other's entries. */
  private readonly book: JsonBook<ReloadsFile>;

  constructor(store: Store) {
    this.book = new JsonBook<ReloadsFile>(store, {
      path: 'rancher-reloads.json',
      empty: () => ({ version: 1, pending: [] }),
      validate: validReloads,
      indent: 2,
      unreadable: (shown, why) => `${shown} is unreadable: ${why}`,
      invalid: (shown, why) => `${shown} is not valid (${why}); move it aside to forget the pending balancer reloads (the next renewal reloads them anyway)`,
    });
    this.path = this.book.shown;
  }

  /** Every pending reload, as stored (read from the store each time: the book is small, and it is the truth). */
  async all(): Promise<PendingReload[]> {
    return (await this.book.load()).pending;
  }

  /**
   * Replaces every entry of `cert` with `entries` (a push reloads every balancer again, so whatever was
   * pending for the certificate before is settled by it).
   */
  replaceFor(cert: string, entries: PendingReload[]): Promise<void> {
    return this.change((pending) => [...pending.filter((p) => p.cert !== cert), ...entries]);
  }

  /**
   * Applies the outcome of a retry: `drop` entries are removed, `update` entries replace theirs, and
   * `add` entries (found by expanding EVERY_BALANCER) join unless their balancer is pending already. An
   * entry a push replaced in the meantime (another `since`) is left as the push wrote it.
   */
  settle(outcome: { drop: PendingReload[]; update: PendingReload[]; add: PendingReload[] }): Promise<void> {
    const same = (a: PendingReload, b: PendingReload) => a.cert === b.cert && a.balancerId === b.balancerId && a.since === b.since;
    return this.change((pending) => {
      const kept = pending
        .filter((p) => !outcome.drop.some((d) => same(d, p)))
        .map((p) => outcome.update.find((u) => same(u, p)) ?? p);
      const added = outcome.add.filter((a) => !kept.some((p) => p.cert === a.cert && p.balancerId === a.balancerId));
      return [...kept, ...added];
    });
  }

  private async change(fn: (pending: PendingReload[]) => PendingReload[]): Promise<void> {
    await this.book.change((file) => ({ version: 1, pending: fn(file.pending) }));
  }
}
