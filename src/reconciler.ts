/**
 * One pass of the manager (DESIGN §2), as its steps in order: discover (src/discover.ts) → observe
 * (src/observe.ts) → decide (src/policy.ts, pure) → act (src/act.ts) → report (src/report.ts).
 * Gathering is separate from deciding, and only `act` changes anything.
 */
import type { Config } from './config.js';
import type { RefusedCert } from './domains.js';
import { discover } from './discover.js';
import type { Kind } from './certs/kind.js';
import type { LocalStore } from './certs/store.js';
import type { AccountBook } from './acme/account.js';
import type { ChallengeSolver } from './acme/challenge.js';
import type { Orchestrator } from './orchestrators/orchestrator.js';
import { decideAction, type Decision } from './policy.js';
import type { Logger } from './log.js';
import type { DirectoryBook } from './acme/directory.js';
import type { EventSink } from './events/events.js';
import type { RequestBook } from './requests.js';
import type { BudgetRow, Ledger } from './limits/ledger.js';
import { gateOrders, observe, withBundles, type Decided } from './observe.js';
import { act } from './act.js';
import { findUnwanted } from './decommission.js';
import type { Unwanted } from './policy.js';
import { proveRoutes } from './preflight/preflight.js';
import type { CaHealth } from './multica/ca-health.js';
import { servingNow, verifyDeploys, type ServingCheck } from './verify/verify.js';
import { baseResult, budgetsOf, finish, logDecisions, nextWake, unavailableResults } from './report.js';
import type { DnsUpkeep, DnsUpkeepReport } from './dns-upkeep/upkeep.js';

export { backoffDelay } from './act.js';

/** After a pass that could not read the orchestrator: its own client already retried; a few minutes, then again. */
const UNAVAILABLE_RETRY_MS = 5 * 60_000;

export interface PassDeps {
  config: Config;
  store: LocalStore;
  orchestrator: Orchestrator;
  accounts: AccountBook;
  /** HTTP-01 (the webroot). */
  solver: ChallengeSolver;
  /** DNS-01, when DNS_PROVIDER is set. */
  dnsSolver?: ChallengeSolver;
  log: Logger;
  now?: () => Date;
  /** Hooks, webhooks and the status page's event list; absent in `plan`. */
  events?: EventSink;
  /** Certificates asked for at run time through the status API. */
  requests?: RequestBook;
  /** The rate-limit ledger of a directory; absent, orders are not checked (plan, some tests). */
  ledger?: (directoryUrl: string) => Ledger;
  /** Shutdown: no new order starts, and orders still validating are abandoned. */
  signal?: AbortSignal;
  /** DNS_UPKEEP: the wanted names' A/AAAA records, kept before anything is ordered; absent in `plan`. */
  dnsUpkeep?: DnsUpkeep;
  /** Each CA's backoff after it was unreachable (ACME_DIRECTORY_URLS, src/multica/). */
  caHealth?: CaHealth;
  /** The CAs' directories as read (renewalInfo, profiles); absent: neither ARI nor profiles are asked about. */
  directories?: DirectoryBook;
}

export type Outcome = 'ok' | 'failed' | 'waiting' | 'foreign' | 'planned';

export interface CertResult {
  name: string;
  names: string[];
  sources: string[];
  decision: Decision;
  outcome: Outcome;
  /** Orders this pass created for the certificate (0 or 1). */
  orders: number;
  pushed: boolean;
  placeholder: boolean;
  /** This pass's order ended with a certificate (even if pushing it then failed). */
  issued?: boolean;
  error?: string;
  /** The kind of the certificate in place; a foreign copy has none (`foreign` is set). */
  kind?: Kind;
  /** The orchestrator holds a certificate certwrangler does not manage under this name (reported, never written). */
  foreign?: boolean;
  /** Another manager's copy in the orchestrator serves this certificate (issue 16 item 4). */
  servedElsewhere?: boolean;
  /** Pushed, but these balancers' reloads are still pending (retried by the orchestrator). */
  pendingReloads?: string[];
  issuer?: string;
  notBefore?: string;
  notAfter?: string;
  /** When the certificate in place falls due for renewal, and by which rule. */
  renewAt?: string;
  renewRule?: string;
  /** The CA's renewal window for the certificate in place (ARI, RFC 9773); `early`: it asks for early renewal. */
  renewalWindow?: { start: string; end: string; explanationURL?: string; early: boolean };
  /** When the CA's renewal information is asked for again (its Retry-After): the manager wakes for it. */
  ariNextFetch?: string;
  /** The ACME profile the certificate in place was ordered with, and the one asked for now. */
  profile?: string;
  nextAttempt?: string;
  /** VERIFY: every balancer serves the certificate in place (absent: not checked, or no balancer address known). */
  served?: boolean;
  /** The ACME directory that issued the certificate this pass, and why that one (the preferred CA, or a fallback and from what). */
  ca?: string;
  caWhy?: string;
  /** VERIFY and `plan`: what each balancer serves for the certificate's names. */
  serving?: ServingCheck[];
}

export interface PassReport {
  startedAt: string;
  finishedAt: string;
  results: CertResult[];
  refused: RefusedCert[];
  /** Problems of the pass as a whole (labels or the orchestrator's list could not be read). */
  errors: string[];
  /** Every certificate is in place, nothing failed, and nothing of DOMAINS or the API was refused (a refused label is the tenant's). */
  ok: boolean;
  /** Each rate limit in use, per ACME directory this account has ordered from (issue 15 item 3). */
  budgets?: DirectoryBudgets[];
  /** The earliest moment something waits for (a pending balancer reload, a backoff, a rate limit): the manager wakes then. */
  wakeAt?: string;
  /** DNS_UPKEEP: the public addresses found and the address records this pass changed. */
  dns?: DnsUpkeepReport;
}

export interface DirectoryBudgets {
  directory: string;
  rows: BudgetRow[];
  /** The ledger could not be read: no order is made from this directory until it can. */
  error?: string;
}

type Observed = Awaited<ReturnType<typeof observe>>;

/**
 * Decides every observed certificate; the ledger is asked only about those whose decision is an order. The
 * decision is put on the pass's own observation rather than on a copy of it (10,000 copies a pass, issue 22).
 */
function decide(deps: PassDeps, observed: Observed): Promise<Decided[]> {
  const decided = observed as Decided[];
  for (const o of decided) o.decision = decideAction(o.input);
  return gateOrders(deps, decided);
}

/** Observes, or, when the orchestrator's copies cannot be read, says so: nothing can be decided safely. */
async function observeOr(deps: PassDeps, wanted: Parameters<typeof observe>[1], now: Date, recover: boolean, errors: string[], unwanted?: Map<string, Unwanted>): Promise<{ observed: Observed } | { failed: CertResult[] }> {
  try {
    return { observed: await observe(deps, wanted, now, recover, unwanted) };
  } catch (e) {
    const error = `cannot read certificates from ${deps.orchestrator.name}: ${(e as Error).message}`;
    errors.push(error);
    return { failed: unavailableResults(wanted, error) };
  }
}

/** `plan`: discover, observe and decide; change nothing. */
export async function planPass(deps: PassDeps): Promise<PassReport> {
  const started = new Date();
  const now = deps.now?.() ?? started;
  const { wanted, refused, errors } = await discover(deps);
  // The store's certificates no source asks for: decided (and shown) with the others, as Unwanted.
  const left = await findUnwanted(deps, wanted, refused, errors, now, false);
  errors.push(...left.errors);
  const seen = await observeOr(deps, [...wanted, ...left.certs], now, false, errors, left.unwanted);
  const results = 'failed' in seen ? seen.failed : (await proveRoutes(deps, await decide(deps, seen.observed), now, { probe: false })).map((o) => ({ ...baseResult(o), outcome: 'planned' as const }));
  if (!('failed' in seen)) await servingNow(deps, results);
  return { ...finish(undefined, started, results, refused, errors), budgets: await budgetsOf(deps) };
}

export async function runPass(deps: PassDeps): Promise<PassReport> {
  const { log } = deps;
  const started = new Date();
  const now = deps.now?.() ?? started;
  const { wanted, refused, errors } = await discover(deps);
  for (const r of refused) log.error({ cert: r.spec, source: r.source, error: r.error }, `refused ${r.spec} from ${r.source}: ${r.error}`);
  const left = await findUnwanted(deps, wanted, refused, errors, now, true);
  errors.push(...left.errors);
  for (const e of errors) log.error({ error: e }, e);
  // Before any order: a new name must resolve here before HTTP-01 asks for it.
  const dns = deps.dnsUpkeep ? await deps.dnsUpkeep.run(wanted.flatMap((w) => w.names.map((name) => ({ name, fromLabel: w.origin === 'label' })))) : undefined;
  errors.push(...(dns?.errors ?? []));
  const seen = await observeOr(deps, [...wanted, ...left.certs], now, true, errors, left.unwanted);
  if ('failed' in seen) {
    // The orchestrator could not be read: look again soon, not at the next scheduled pass hours away.
    const wakeAt = new Date(now.getTime() + UNAVAILABLE_RETRY_MS).toISOString();
    log.error({ error: errors.at(-1), wakeAt }, `${errors.at(-1)}; nothing changed, the next pass at ${wakeAt} retries`);
    return { ...finish(log, started, seen.failed, refused, errors), wakeAt, ...(dns ? { dns } : {}) };
  }
  // PREFLIGHT: an order whose route is not proven waits, before it costs a ledger entry or a validation.
  const decided = await withBundles(deps, await proveRoutes(deps, await decide(deps, seen.observed), now, { probe: true }), true);
  logDecisions(log, decided);
  const results = await act(deps, decided, now);
  // VERIFY: what was pushed is served (one more reload when it is not), or reported NotServed.
  await verifyDeploys(deps, results);
  const wakeAt = await nextWake(deps, results, now);
  return { ...finish(log, started, results, refused, errors), budgets: await budgetsOf(deps), ...(wakeAt ? { wakeAt } : {}), ...(dns ? { dns } : {}) };
}
