/**
 * PREFLIGHT (DESIGN §2, issue 19 item 1): between deciding and acting, prove the route of every HTTP-01
 * name about to be ordered. One random probe file goes into the webroot; each name is fetched through the
 * real balancer as the CA would (probe.ts), all at once. A certificate with a name that fails is not ordered
 * (no ledger entry, no failed validation spent), is reported with what went wrong, and is probed again
 * after a short backoff. Names that pass are ordered as decided.
 */
import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import { challengeFor } from '../acme/challenge.js';
import { CHALLENGE_PATH } from '../acme/http01.js';
import { wantsOrder, type Decision } from '../policy.js';
import type { Decided } from '../observe.js';
import type { PassDeps } from '../reconciler.js';
import { probeRoute } from './probe.js';
import { readRouteBook, writeRouteBook, type RouteBook } from './route-book.js';

// Issue 19: a failed probe is tried again after 5 minutes, doubling to an hour. Short, unlike an order's
// backoff (1 h → 24 h): a probe costs the CA nothing, and a route is usually fixed within minutes.
const ROUTE_BACKOFF_FIRST_MS = 5 * 60_000;
const ROUTE_BACKOFF_MAX_MS = 60 * 60_000;
// Probes in flight at once: each is one DNS lookup and one small HTTP request.
const PROBE_CONCURRENCY = 32;

export function routeBackoff(failures: number): number {
  return Math.min(ROUTE_BACKOFF_FIRST_MS * 2 ** Math.max(0, failures - 1), ROUTE_BACKOFF_MAX_MS);
}

/** The decision held by the route: a placeholder still goes in (the balancer must start), the order waits. */
function hold(o: Decided, why: string, until: Date): Decided {
  const d = o.decision;
  const held = { why, until };
  const message = `${d.message}; not ordered: ${why}`;
  const decision: Decision = d.action === 'placeholder' ? { ...d, message, held } : { ...d, action: 'wait', reason: 'RouteUnproven', message, held };
  return { ...o, decision };
}

/** The certificates PREFLIGHT looks at: an order is due and not held, and every name validates over HTTP-01. */
function needsRoute(deps: PassDeps, o: Decided): boolean {
  return wantsOrder(o.decision) && challengeFor(o.wanted.names, o.wanted.challenge, deps.config.challenge) === 'http-01';
}

/**
 * Holds the orders whose route is not proven. `probe: false` (plan) only applies the backoffs on file:
 * plan writes nothing, not even a probe file.
 */
export async function proveRoutes(deps: PassDeps, decided: Decided[], now: Date, opts: { probe: boolean }): Promise<Decided[]> {
  const { config, log } = deps;
  if (!config.preflight.enabled || !decided.some((o) => needsRoute(deps, o))) return decided;
  let book: RouteBook;
  try {
    book = await readRouteBook(deps.store.backend);
  } catch (e) {
    log.warn({ error: (e as Error).message }, `preflight: ${(e as Error).message}; starting with no backoffs`);
    book = {};
  }
  const toProbe: Decided[] = [];
  const out = decided.map((o) => {
    if (!needsRoute(deps, o)) return o;
    const last = book[o.wanted.name];
    if (last && now < new Date(last.nextAttempt)) return hold(o, `the route is not proven (PREFLIGHT): ${last.lastError}`, new Date(last.nextAttempt));
    if (opts.probe) toProbe.push(o);
    return o;
  });
  if (toProbe.length === 0) return out;

  const problems = await probeAll(deps, [...new Set(toProbe.flatMap((o) => o.wanted.names))]);
  const held = new Map<string, Decided>();
  for (const o of toProbe) {
    const failed = o.wanted.names.filter((n) => problems.get(n) !== undefined).map((n) => problems.get(n)!);
    if (failed.length === 0) {
      delete book[o.wanted.name];
      continue;
    }
    const failures = (book[o.wanted.name]?.failures ?? 0) + 1;
    const until = new Date(now.getTime() + routeBackoff(failures));
    const lastError = failed.join('; ');
    book[o.wanted.name] = { failures, lastError, nextAttempt: until.toISOString() };
    const why = `the route is not proven (PREFLIGHT): ${lastError}`;
    held.set(o.wanted.name, hold(o, why, until));
    log.warn({ cert: o.wanted.name, reason: 'RouteFailed', problems: failed, nextAttempt: until.toISOString() }, `${o.wanted.name}: not ordered, the challenge path does not reach the webroot: ${lastError}; probed again after ${until.toISOString()}`);
    deps.events?.emit({ type: 'failed', name: o.wanted.name, names: o.wanted.names, at: new Date().toISOString(), reason: 'RouteUnproven', error: why, nextAttempt: until.toISOString() });
  }
  // Only the certificates still wanted keep a backoff.
  const wanted = new Set(decided.map((o) => o.wanted.name));
  for (const name of Object.keys(book)) if (!wanted.has(name)) delete book[name];
  await writeRouteBook(deps.store.backend, book).catch((e: Error) => log.error({ error: e.message }, `preflight: cannot record the route backoffs: ${e.message}`));
  return out.map((o) => held.get(o.wanted.name) ?? o);
}

/** One probe file for the whole pass; every name fetched at once. Name → what went wrong (absent: fine). */
async function probeAll(deps: PassDeps, names: string[]): Promise<Map<string, string | undefined>> {
  const { config } = deps;
  const token = randomBytes(24).toString('base64url');
  const body = randomBytes(32).toString('base64url');
  const problems = new Map<string, string | undefined>();
  try {
    await deps.solver.present('preflight', token, body);
  } catch (e) {
    // The webroot cannot be written: every order would fail the same way, so none is made.
    for (const n of names) problems.set(n, `the probe file cannot be written into WEBROOT_DIR ${config.webrootDir}: ${(e as Error).message}`);
    return problems;
  }
  try {
    const limit = pLimit(PROBE_CONCURRENCY);
    const expected = Buffer.from(body);
    const path = `/${CHALLENGE_PATH}/${token}`;
    const opts = { httpPort: config.preflight.httpPort, resolvers: config.preflight.resolvers, timeoutMs: config.preflight.timeoutMs };
    await Promise.all(names.map((n) => limit(async () => problems.set(n, await probeRoute(n, path, expected, opts)))));
  } finally {
    await deps.solver.cleanup('preflight', token, body).catch(() => undefined);
  }
  return problems;
}
