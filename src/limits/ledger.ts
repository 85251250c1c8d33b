/**
 * The rate-limit ledger (DESIGN §6, issue 4): what this account asked of one ACME directory, kept in
 * DATA_DIR so that a restart forgets nothing, and checked before every order against Let's Encrypt's
 * production limits. An order that would break one is not made; the verdict says which limit and when
 * the order may be made. Checks count orders in flight, so parallel orders cannot overshoot together.
 * An order is written to the file before it is made: a volume that is full or read-only stops orders
 * instead of letting them run unrecorded, and a crash right after an order cannot forget it.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { getDomain } from 'tldts';
import { ensureDir, writeFileAtomic } from '../certs/atomic.js';
import { DIR_MODE, KEY_MODE } from '../certs/store.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface Limit {
  count: number;
  windowMs: number;
}

/** https://letsencrypt.org/docs/rate-limits/ — production values; staging's are higher, so these are safe there too. */
export const LE_LIMITS = {
  certificatesPerRegisteredDomain: { count: 50, windowMs: 7 * DAY },
  duplicateCertificates: { count: 5, windowMs: 7 * DAY },
  failedAuthorizationsPerName: { count: 5, windowMs: HOUR },
  newOrdersPerAccount: { count: 300, windowMs: 3 * HOUR },
} satisfies Record<string, Limit>;

// lead replaces: 'newOrderBudget' (issue 15 item 3) is the lead's; stubbed so the policy branch compiles.
export type LimitName = keyof typeof LE_LIMITS | 'caRateLimited' | 'newOrderBudget';

/** lead replaces: the share of each limit an order may use (issue 15 item 3). */
export interface AcquireOptions {
  budget?: 'new' | 'reserved';
}

export interface LedgerData {
  version: 1;
  orders: { at: string; names: string[] }[];
  issued: { at: string; names: string[] }[];
  failedAuthorizations: { at: string; name: string }[];
  /** The CA answered rateLimited: no order before `until`. */
  caLimited: { until: string; detail: string }[];
}

export interface Verdict {
  limit: LimitName;
  message: string;
  retryAt: Date;
}

export function emptyLedger(): LedgerData {
  return { version: 1, orders: [], issued: [], failedAuthorizations: [], caLimited: [] };
}

const domainMemo = new Map<string, string>();

/**
 * Let's Encrypt counts by the registered domain of the Public Suffix List, private section included.
 * Memoised: every check walks every certificate of the last week, so a first run with thousands of
 * certificates would otherwise parse the same names millions of times.
 */
export function registeredDomain(name: string): string {
  let d = domainMemo.get(name);
  if (d === undefined) {
    const bare = name.replace(/^\*\./, '');
    d = getDomain(bare, { allowPrivateDomains: true }) ?? bare;
    if (domainMemo.size >= 100_000) domainMemo.clear();
    domainMemo.set(name, d);
  }
  return d;
}

const key = (names: string[]) => [...new Set(names.map((n) => n.toLowerCase()))].sort().join(',');

/** When the window lets one more in: the moment the oldest entry that must leave it, leaves it. */
function retryAt(times: number[], limit: Limit): Date {
  const sorted = [...times].sort((a, b) => a - b);
  return new Date(sorted[sorted.length - limit.count]! + limit.windowMs);
}

/**
 * Pure: would an order for `names` at `now` break a limit, counting `pending` (orders in flight, already
 * in `data.orders`) as certificates? Returns the first limit it would break, or undefined.
 */
export function checkLimits(data: LedgerData, names: string[], now: Date, pending: string[][] = [], limits = LE_LIMITS): Verdict | undefined {
  const t = now.getTime();
  const within = (at: string, l: Limit) => t - Date.parse(at) < l.windowMs;
  const pendingAt = new Date(t).toISOString();

  for (const c of data.caLimited) {
    if (Date.parse(c.until) > t) return { limit: 'caRateLimited', message: `the CA answered rateLimited (${c.detail}); no order before ${c.until}`, retryAt: new Date(c.until) };
  }

  const orders = data.orders.filter((o) => within(o.at, limits.newOrdersPerAccount)).map((o) => Date.parse(o.at));
  if (orders.length >= limits.newOrdersPerAccount.count) {
    const at = retryAt(orders, limits.newOrdersPerAccount);
    return { limit: 'newOrdersPerAccount', message: `${orders.length} new orders in the last 3 hours (limit ${limits.newOrdersPerAccount.count} per account)`, retryAt: at };
  }

  for (const name of names) {
    const fails = data.failedAuthorizations.filter((f) => f.name === name && within(f.at, limits.failedAuthorizationsPerName)).map((f) => Date.parse(f.at));
    if (fails.length >= limits.failedAuthorizationsPerName.count) {
      return { limit: 'failedAuthorizationsPerName', message: `${name} failed validation ${fails.length} times in the last hour (limit ${limits.failedAuthorizationsPerName.count})`, retryAt: retryAt(fails, limits.failedAuthorizationsPerName) };
    }
  }

  const issued = [...data.issued, ...pending.map((p) => ({ at: pendingAt, names: p }))];
  const wanted = key(names);
  const dups = issued.filter((i) => key(i.names) === wanted && within(i.at, limits.duplicateCertificates)).map((i) => Date.parse(i.at));
  if (dups.length >= limits.duplicateCertificates.count) {
    return { limit: 'duplicateCertificates', message: `${dups.length} certificates for exactly these names in the last 7 days (limit ${limits.duplicateCertificates.count})`, retryAt: retryAt(dups, limits.duplicateCertificates) };
  }

  for (const domain of new Set(names.map(registeredDomain))) {
    const certs = issued.filter((i) => within(i.at, limits.certificatesPerRegisteredDomain) && i.names.some((n) => registeredDomain(n) === domain)).map((i) => Date.parse(i.at));
    if (certs.length >= limits.certificatesPerRegisteredDomain.count) {
      return { limit: 'certificatesPerRegisteredDomain', message: `${certs.length} certificates for ${domain} in the last 7 days (limit ${limits.certificatesPerRegisteredDomain.count} per registered domain)`, retryAt: retryAt(certs, limits.certificatesPerRegisteredDomain) };
    }
  }
  return undefined;
}

/** Drops what no window can see any more, so the file stays small. */
export function prune(data: LedgerData, now: Date): LedgerData {
  const t = now.getTime();
  const keep = (at: string, ms: number) => t - Date.parse(at) < ms;
  return {
    version: 1,
    orders: data.orders.filter((o) => keep(o.at, LE_LIMITS.newOrdersPerAccount.windowMs)),
    issued: data.issued.filter((i) => keep(i.at, 7 * DAY)),
    failedAuthorizations: data.failedAuthorizations.filter((f) => keep(f.at, LE_LIMITS.failedAuthorizationsPerName.windowMs)),
    caLimited: data.caLimited.filter((c) => Date.parse(c.until) > t),
  };
}

export interface Ticket {
  issued(): void;
  failedAuthorizations(names: string[]): void;
  /** lead replaces: the CA refused the order at creation; it is removed as if never made (still call done()). */
  release(): void;
  /** Ends the reservation; records made through the ticket stay. */
  done(): Promise<void>;
}

/** One directory's ledger file, in memory after the first read, written atomically after every change. */
export class Ledger {
  private data: Promise<LedgerData> | undefined;
  private readonly pending = new Set<string[]>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly path: string,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  static forDirectory(dataDir: string, id: string, clock?: () => Date): Ledger {
    return new Ledger(join(dataDir, 'ledger', `${id}.json`), clock);
  }

  private load(): Promise<LedgerData> {
    this.data ??= fs.readFile(this.path, 'utf8').then(
      (text) => {
        const d = JSON.parse(text) as LedgerData;
        if (d.version !== 1 || !Array.isArray(d.orders) || !Array.isArray(d.issued) || !Array.isArray(d.failedAuthorizations) || !Array.isArray(d.caLimited)) {
          throw new Error('not a version 1 ledger');
        }
        return d;
      },
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return emptyLedger();
        throw e;
      },
    ).catch((e: Error) => {
      // A ledger we cannot read must stop orders, not wave them through: limits are what it protects.
      this.data = undefined;
      throw new Error(`rate-limit ledger ${this.path} is unreadable (${e.message}); fix or move it aside`);
    });
    return this.data;
  }

  /**
   * The verdict, or a ticket once the order is on file: it counts as an order from now on, and as a
   * certificate in flight until `done()`.
   */
  async acquire(names: string[], _opts: AcquireOptions = {}): Promise<Verdict | Ticket> {
    const data = await this.load();
    const now = this.clock();
    const verdict = checkLimits(data, names, now, [...this.pending]);
    if (verdict) return verdict;
    const reservation = [...names];
    const order = { at: now.toISOString(), names: reservation };
    data.orders.push(order);
    this.pending.add(reservation);
    try {
      await this.save();
    } catch (e) {
      data.orders.splice(data.orders.indexOf(order), 1);
      this.pending.delete(reservation);
      throw new Error(`cannot record the order in the rate-limit ledger ${this.path} (${(e as Error).message}); no order made`);
    }
    const at = () => this.clock().toISOString();
    return {
      issued: () => void data.issued.push({ at: at(), names }),
      failedAuthorizations: (failed) => void data.failedAuthorizations.push(...failed.map((name) => ({ at: at(), name }))),
      // lead replaces (minimal stub): drop the order record written before the order was sent.
      release: () => {
        const i = data.orders.indexOf(order);
        if (i >= 0) data.orders.splice(i, 1);
      },
      done: async () => {
        this.pending.delete(reservation);
        await this.save();
      },
    };
  }

  /** The verdict an order for `names` would get now, reserving nothing (for `plan`). */
  async peek(names: string[], _opts: AcquireOptions = {}): Promise<Verdict | undefined> {
    return checkLimits(await this.load(), names, this.clock(), [...this.pending]);
  }

  async caRateLimited(retryAfterMs: number | undefined, detail: string): Promise<Date> {
    const data = await this.load();
    // Without a Retry-After, an hour: the shortest window of Let's Encrypt's limits.
    const until = new Date(this.clock().getTime() + Math.min(retryAfterMs ?? HOUR, 7 * DAY));
    data.caLimited.push({ until: until.toISOString(), detail });
    await this.save();
    return until;
  }

  private save(): Promise<void> {
    const p = this.chain.then(async () => {
      const data = await this.load();
      const pruned = prune(data, this.clock());
      Object.assign(data, pruned);
      await ensureDir(join(this.path, '..'), DIR_MODE);
      await writeFileAtomic(this.path, `${JSON.stringify(data)}\n`, KEY_MODE);
    });
    this.chain = p.catch(() => undefined);
    return p;
  }
}

export function isVerdict(x: Verdict | Ticket): x is Verdict {
  return 'limit' in x;
}
