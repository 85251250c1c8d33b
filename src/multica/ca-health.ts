/**
 * Each CA's own backoff (issue 19 item 3): a CA that was unreachable or answered 5xx is passed over, for the
 * orders that follow, until its backoff ends; then it is tried first again. Kept in the store's ca-health.json
 * so that a restart during an outage does not wait out every timeout again.
 */
import { JsonBook } from '../stores/json-book.js';
import type { Store } from '../stores/store.js';
import { directoryId } from '../acme/account.js';

// A CA outage is usually minutes to hours: the next orders skip it for 5 minutes, doubling to an hour, so
// a pass hours later (the next renewal) always tries the preferred CA first again.
const CA_BACKOFF_FIRST_MS = 5 * 60_000;
const CA_BACKOFF_MAX_MS = 60 * 60_000;

interface Down {
  directoryUrl: string;
  failures: number;
  until: string;
  reason: string;
}

export class CaHealth {
  private data: Promise<Record<string, Down>> | undefined;
  private readonly book: JsonBook<{ version: 1; cas: Record<string, Down> }>;

  constructor(store: Store) {
    this.book = new JsonBook(store, {
      path: 'ca-health.json',
      empty: () => ({ version: 1 as const, cas: {} }),
      validate: (parsed) => {
        const d = parsed as { version?: number; cas?: Record<string, Down> };
        return { version: 1 as const, cas: d?.version === 1 && d.cas && typeof d.cas === 'object' ? d.cas : {} };
      },
      indent: 1,
      // Missing or unreadable: no CA is known to be down, so every CA is tried in order.
      lenient: true,
    });
  }

  private load(): Promise<Record<string, Down>> {
    this.data ??= this.book.load().then((b) => b.cas);
    return this.data;
  }

  /** The CA's backoff when it is in one at `now`. */
  async downUntil(directoryUrl: string, now: Date): Promise<{ until: string; reason: string } | undefined> {
    const d = (await this.load())[directoryId(directoryUrl)];
    return d && now < new Date(d.until) ? { until: d.until, reason: d.reason } : undefined;
  }

  async down(directoryUrl: string, reason: string, now: Date): Promise<string> {
    const all = await this.load();
    const id = directoryId(directoryUrl);
    const failures = (all[id]?.failures ?? 0) + 1;
    const until = new Date(now.getTime() + Math.min(CA_BACKOFF_FIRST_MS * 2 ** (failures - 1), CA_BACKOFF_MAX_MS)).toISOString();
    all[id] = { directoryUrl, failures, until, reason };
    await this.save();
    return until;
  }

  async up(directoryUrl: string): Promise<void> {
    const all = await this.load();
    const id = directoryId(directoryUrl);
    if (!all[id]) return;
    delete all[id];
    await this.save();
  }

  private async save(): Promise<void> {
    await this.book.save({ version: 1, cas: await this.load() });
  }
}
