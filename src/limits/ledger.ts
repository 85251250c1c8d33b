/**
 * The rate-limit ledger (DESIGN §6, issue 4): what this account asked of one ACME directory, kept in
 * the store (DATA_DIR/ledger/ on files) so that a restart forgets nothing, and checked before every order against Let's Encrypt's
 * production limits. An order that would break one is not made; the verdict says which limit and when
 * the order may be made. Checks count orders in flight, so parallel orders cannot overshoot together.
 * An order is written to the file before it is made: a volume that is full or read-only stops orders
 * instead of letting them run unrecorded, and a crash right after an order cannot forget it.
 */
import { getDomain } from 'tldts';
import { JsonBook } from '../stores/json-book.js';
import type { Store } from '../stores/store.js';

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

export type LimitName = keyof typeof LE_LIMITS | 'caRateLimited' | 'newOrderBudget';

/**
 * Which share of the limits an order may use (DESIGN §10, issue 15). `new`: a new certificate asked for by a
 * label or the API, which any tenant can cause; it may use only NEW_ORDER_BUDGET of each limit. `reserved`:
 * renewals and DOMAINS, which may use all of it, so no tenant can starve a certificate already in service.
 */
export type BudgetClass = 'new' | 'reserved';

/** The default share of each limit that new certificates from labels or the API may use. */
export const DEFAULT_NEW_ORDER_BUDGET = 0.8;

export interface OrderOptions {
  budget?: BudgetClass;
  /**
   * A renewal sent with ARI's `replaces` inside the window the CA suggested: Let's Encrypt exempts it from every
   * rate limit (https://letsencrypt.org/docs/rate-limits/, "ARI renewals"; announced in "An Engineer's Guide
   * to Integrating ARI into Existing ACME Clients", 2024-04-25). Only the CA's own rateLimited answer holds it;
   * it is kept in the ledger, marked, and counts against no limit.
   */
  ariRenewal?: boolean;
}

/** One limit as it stands, for `plan` and the status page. */
export interface BudgetRow {
  limit: keyof typeof LE_LIMITS;
  /** What it counts: "account", a registered domain, a name, or a set of names. */
  scope: string;
  used: number;
  max: number;
  /** The most that new certificates from labels or the API may use. */
  newMax: number;
  /** Kept back for renewals and DOMAINS. */
  heldBack: number;
  /** When the oldest entry leaves the window, so one more fits. */
  refillsAt: string | undefined;
}

export interface LedgerData {
  version: 1;
  /** `ari`: an ARI renewal, exempt from every limit (OrderOptions.ariRenewal); kept so the file says what was ordered. */
  orders: { at: string; names: string[]; ari?: true }[];
  issued: { at: string; names: string[]; ari?: true }[];
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

  const orders = data.orders.filter((o) => !o.ari && within(o.at, limits.newOrdersPerAccount)).map((o) => Date.parse(o.at));
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

  const issued = [...data.issued.filter((i) => !i.ari), ...pending.map((p) => ({ at: pendingAt, names: p }))];
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

/** An ARI renewal is exempt from every limit; only the CA's own rateLimited answer (its Retry-After) holds it. */
function caLimitOnly(data: LedgerData, now: Date): Verdict | undefined {
  return checkLimits({ ...data, orders: [], issued: [], failedAuthorizations: [] }, [], now);
}

/** Each limit cut to the share new certificates may use; never below 1, so a small budget still lets one through. */
export function newOrderLimits(fraction: number, limits = LE_LIMITS): typeof LE_LIMITS {
  const cut = (l: Limit): Limit => ({ count: Math.max(1, Math.floor(l.count * fraction)), windowMs: l.windowMs });
  return {
    certificatesPerRegisteredDomain: cut(limits.certificatesPerRegisteredDomain),
    duplicateCertificates: cut(limits.duplicateCertificates),
    failedAuthorizationsPerName: cut(limits.failedAuthorizationsPerName),
    newOrdersPerAccount: cut(limits.newOrdersPerAccount),
  };
}

/**
 * checkLimits for one class of order: a `new` order is also held once it would use more than its share of
 * any limit, with a verdict that names the share and the limit behind it.
 */
export function checkOrder(data: LedgerData, names: string[], now: Date, pending: string[][], budget: BudgetClass, fraction: number, limits = LE_LIMITS): Verdict | undefined {
  const full = checkLimits(data, names, now, pending, limits);
  if (full || budget === 'reserved' || fraction >= 1) return full;
  const share = checkLimits(data, names, now, pending, newOrderLimits(fraction, limits));
  if (!share) return undefined;
  const pct = Math.round(fraction * 100);
  return {
    limit: 'newOrderBudget',
    message: `${share.message.replace('(limit ', '(share of new certificates ')}; new certificates from labels and the API may use ${pct}% of each limit (NEW_ORDER_BUDGET), the rest is kept for renewals`,
    retryAt: share.retryAt,
  };
}

/** Every limit with something counted against it now: used, the share of new certificates, held back, refill time. */
export function budgetRows(data: LedgerData, now: Date, fraction: number, limits = LE_LIMITS): BudgetRow[] {
  const t = now.getTime();
  const within = (at: string, l: Limit) => t - Date.parse(at) < l.windowMs;
  const share = newOrderLimits(fraction, limits);
  const rows: BudgetRow[] = [];
  const row = (limit: keyof typeof LE_LIMITS, scope: string, times: number[]) => {
    if (times.length === 0) return;
    const max = limits[limit].count;
    const newMax = fraction >= 1 ? max : Math.min(max, share[limit].count);
    const oldest = Math.min(...times);
    rows.push({ limit, scope, used: times.length, max, newMax, heldBack: max - newMax, refillsAt: new Date(oldest + limits[limit].windowMs).toISOString() });
  };
  row('newOrdersPerAccount', 'account', data.orders.filter((o) => !o.ari && within(o.at, limits.newOrdersPerAccount)).map((o) => Date.parse(o.at)));
  const issued = data.issued.filter((i) => !i.ari && within(i.at, limits.certificatesPerRegisteredDomain));
  const byDomain = new Map<string, number[]>();
  const bySet = new Map<string, number[]>();
  for (const i of issued) {
    for (const d of new Set(i.names.map(registeredDomain))) (byDomain.get(d) ?? byDomain.set(d, []).get(d)!).push(Date.parse(i.at));
    if (within(i.at, limits.duplicateCertificates)) (bySet.get(key(i.names)) ?? bySet.set(key(i.names), []).get(key(i.names))!).push(Date.parse(i.at));
  }
  for (const [d, times] of byDomain) row('certificatesPerRegisteredDomain', d, times);
  // A set issued once is every renewal's normal state; only sets nearing their limit are worth a row.
  for (const [set, times] of bySet) if (times.length > 1) row('duplicateCertificates', set, times);
  const fails = new Map<string, number[]>();
  for (const f of data.failedAuthorizations) if (within(f.at, limits.failedAuthorizationsPerName)) (fails.get(f.name) ?? fails.set(f.name, []).get(f.name)!).push(Date.parse(f.at));
  for (const [name, times] of fails) row('failedAuthorizationsPerName', name, times);
  return rows;
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
  /**
   * The CA refused the order at creation (rejectedIdentifier, unsupportedIdentifier, malformed): no order
   * exists, so it leaves the ledger as if never made. done() must still be called.
   */
  release(): void;
  failedAuthorizations(names: string[]): void;
  /** Ends the reservation; records made through the ticket stay. */
  done(): Promise<void>;
}

/** One directory's ledger, in memory after the first read, written whole through the store after every change. */
export class Ledger {
  private data: Promise<LedgerData> | undefined;
  private readonly pending = new Set<string[]>();
  private readonly book: JsonBook<LedgerData>;
  /** Where the ledger is, as messages name it (the file on STORE=files). */
  private readonly path: string;

  constructor(
    store: Store,
    /** The store path, e.g. "ledger/<directory id>.json". */
    path: string,
    private readonly clock: () => Date = () => new Date(),
    /** NEW_ORDER_BUDGET: the share of each limit that `new` orders may use. */
    private readonly newOrderBudget = DEFAULT_NEW_ORDER_BUDGET,
  ) {
    // A ledger we cannot read must stop orders, not wave them through: limits are what it protects.
    const unreadable = (shown: string, why: string) => `rate-limit ledger ${shown} is unreadable (${why}); fix or move it aside`;
    this.book = new JsonBook<LedgerData>(store, {
      path,
      empty: emptyLedger,
      validate: (parsed) => {
        const d = parsed as LedgerData;
        if (d?.version !== 1 || !Array.isArray(d.orders) || !Array.isArray(d.issued) || !Array.isArray(d.failedAuthorizations) || !Array.isArray(d.caLimited)) {
          throw new Error('not a version 1 ledger');
        }
        return d;
      },
      unreadable,
      invalid: unreadable,
    });
    this.path = this.book.shown;
  }

  static forDirectory(store: Store, id: string, clock?: () => Date, newOrderBudget?: number): Ledger {
    return new Ledger(store, `ledger/${id}.json`, clock, newOrderBudget);
  }

  private load(): Promise<LedgerData> {
    this.data ??= this.book.load().catch((e: Error) => {
      this.data = undefined;
      throw e;
    });
    return this.data;
  }

  /**
   * The verdict, or a ticket once the order is on file: it counts as an order from now on, and as a
   * certificate in flight until `done()`.
   */
  async acquire(names: string[], opts: OrderOptions = {}): Promise<Verdict | Ticket> {
    const data = await this.load();
    const now = this.clock();
    const verdict = opts.ariRenewal ? caLimitOnly(data, now) : checkOrder(data, names, now, [...this.pending], opts.budget ?? 'reserved', this.newOrderBudget);
    if (verdict) return verdict;
    const reservation = [...names];
    const ari = opts.ariRenewal ? ({ ari: true } as const) : {};
    const order = { at: now.toISOString(), names: reservation, ...ari };
    data.orders.push(order);
    // An exempt renewal is not in flight against any limit either.
    if (!opts.ariRenewal) this.pending.add(reservation);
    try {
      await this.save();
    } catch (e) {
      data.orders.splice(data.orders.indexOf(order), 1);
      this.pending.delete(reservation);
      throw new Error(`cannot record the order in the rate-limit ledger ${this.path} (${(e as Error).message}); no order made`);
    }
    const at = () => this.clock().toISOString();
    return {
      issued: () => void data.issued.push({ at: at(), names, ...ari }),
      release: () => {
        const i = data.orders.indexOf(order);
        if (i >= 0) data.orders.splice(i, 1);
      },
      failedAuthorizations: (failed) => void data.failedAuthorizations.push(...failed.map((name) => ({ at: at(), name }))),
      done: async () => {
        this.pending.delete(reservation);
        await this.save();
      },
    };
  }

  /** The verdict an order for `names` would get now, reserving nothing (for `plan`). */
  async peek(names: string[], opts: OrderOptions = {}): Promise<Verdict | undefined> {
    if (opts.ariRenewal) return caLimitOnly(await this.load(), this.clock());
    return checkOrder(await this.load(), names, this.clock(), [...this.pending], opts.budget ?? 'reserved', this.newOrderBudget);
  }

  /** Each limit with something counted against it, for `plan` and the status page. */
  async budgets(): Promise<BudgetRow[]> {
    return budgetRows(await this.load(), this.clock(), this.newOrderBudget);
  }

  async caRateLimited(retryAfterMs: number | undefined, detail: string): Promise<Date> {
    const data = await this.load();
    // Without a Retry-After, an hour: the shortest window of Let's Encrypt's limits.
    const until = new Date(this.clock().getTime() + Math.min(retryAfterMs ?? HOUR, 7 * DAY));
    data.caLimited.push({ until: until.toISOString(), detail });
    await this.save();
    return until;
  }

  private async save(): Promise<void> {
    const data = await this.load();
    Object.assign(data, prune(data, this.clock()));
    await this.book.save(data);
  }
}

export function isVerdict(x: Verdict | Ticket): x is Verdict {
  return 'limit' in x;
}
