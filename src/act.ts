/**
 * Step 4 of a pass (DESIGN §2): do what was decided, one job per certificate with bounded concurrency:
 * a placeholder, an order (issue → store → push), or a push; then the balancer reloads still pending.
 * One certificate's failure is caught, recorded (with its backoff) and never stops the others.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { isIP } from './ip.js';
import pLimit from 'p-limit';
import type { Client as AcmeClient } from 'acme-client';
import { parseCert } from './certs/parse.js';
import { createSelfSigned } from './certs/placeholder.js';
import type { CertBundle, PendingOrder } from './certs/store.js';
import { AcmeError, issueCertificate, type Issued } from './acme/issue.js';
import { onAcmeProblem } from './acme/transport.js';
import { challengeFor } from './acme/challenge.js';
import { isVerdict, type Ledger, type Ticket } from './limits/ledger.js';
import { renewalSchedule, wantsOrder } from './policy.js';
import { directoryOf, type Decided } from './observe.js';
import { baseResult, describeCert, emit } from './report.js';
import { decommission } from './decommission.js';
import { chooseKey, keyTypeOf } from './key-choice.js';
import type { CertResult, PassDeps } from './reconciler.js';
import type { PushResult } from './orchestrators/orchestrator.js';
import { orderFromCas } from './multica/fallback.js';
import { KeysAhead } from './acme/key-ahead.js';

// DESIGN §6: after a failed order wait 1 h, doubling to 24 h, so a name that cannot validate does not
// spend Let's Encrypt's 5-failures-per-hour limit.
const BACKOFF_FIRST_MS = 60 * 60 * 1000;
const BACKOFF_MAX_MS = 24 * 60 * 60 * 1000;

// Placeholders made and written at once. Each write is about ten fsyncs in a row on libuv's thread pool;
// with every placeholder of a first pass writing at once, the first finished (and could be pushed) only
// when nearly all had: 0.8 s for 100 names. One batch of the pool's size at a time lets the pushes start at
// once, and the CLI runs a pool of 16 (src/launch.ts), because ext4 commits concurrent fsyncs together:
// 100 placeholder sets took 2.4–3.4 s at 4 in flight on 4 threads, 1.0–1.1 s at 16 on 16 (BENCHMARKS.md).
const PLACEHOLDER_WRITE_CONCURRENCY = 16;

// Issue 17 item 3: a backoff is never longer than a quarter of the time the certificate in service has left,
// so a 24-hour step cannot let a 6-day certificate (renewed with about 2 days left) expire; the tries come
// closer together as expiry nears, never closer than 15 minutes (Let's Encrypt allows 5 failed validations
// per name an hour, and the ledger holds the rest).
const BACKOFF_LIFETIME_FRACTION = 1 / 4;
const BACKOFF_FLOOR_MS = 15 * 60 * 1000;

/** The wait after `failures` failed orders in a row; `leftMs`: how long the certificate in service still has. */
export function backoffDelay(failures: number, leftMs?: number): number {
  const step = Math.min(BACKOFF_FIRST_MS * 2 ** Math.max(0, failures - 1), BACKOFF_MAX_MS);
  if (leftMs === undefined || leftMs <= 0) return step;
  return Math.min(step, Math.max(leftMs * BACKOFF_LIFETIME_FRACTION, BACKOFF_FLOOR_MS));
}

/** A limit of the ledger says no order now: not a failure of the certificate. */
class RateLimitWait extends Error {
  constructor(message: string, readonly retryAt: Date) {
    super(message);
    this.name = 'RateLimitWait';
  }
}

/**
 * The account of a directory cannot be registered or looked up (the CA unreachable, EAB refused): no order
 * was made, and it is not the certificate's failure, so it starts no backoff. A fixed configuration is
 * tried on the next start at once, instead of an hour later for every certificate.
 */
class AccountUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AccountUnavailable';
  }
}

/**
 * The profile asked for is not one the CA offers (or it offers none): no order is made, and it is not the
 * certificate's failure to back off from, but the operator's (or the tenant's) setting to fix.
 */
class ProfileUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProfileUnavailable';
  }
}

/** The order a job is making, so that a problem the CA answers is told to the right certificate. */
interface OrderContext {
  directoryUrl: string;
  /** The CA refused the order's identifiers at creation (rejectedIdentifier, unsupportedIdentifier, malformed). */
  refused?: string;
  /** The CA answered rateLimited during this order (its detail): another CA may take it (src/multica/). */
  rateLimited?: string;
  /** The CA refused the order's ARI `replaces` (RFC 9773 §5 alreadyReplaced): its words. */
  replacesRefused?: string;
}

/** What every job of a pass shares: one account lookup per directory, the pools, the CA's answers. */
class PassActs {
  private readonly accounts = new Map<string, Promise<AcmeClient>>();
  private readonly missingAccount = new Set<string>();
  readonly orders: <T>(fn: () => Promise<T>) => Promise<T>;
  readonly placeholderWrites = pLimit(PLACEHOLDER_WRITE_CONCURRENCY);
  readonly context = new AsyncLocalStorage<OrderContext>();
  readonly stopListening: () => void;
  /** Order keys started while placeholders are stored (src/acme/key-ahead.ts), as many as orders start at once. */
  readonly keysAhead: KeysAhead;

  constructor(private readonly deps: PassDeps) {
    this.orders = pLimit(deps.config.acmeConcurrency);
    this.keysAhead = new KeysAhead(deps.config.acmeConcurrency);
    const { log } = deps;
    this.stopListening = onAcmeProblem((p) => {
      const ctx = this.context.getStore();
      if (p.kind === 'refused') {
        if (ctx) ctx.refused = `${p.type}: ${p.detail}`;
        return;
      }
      if (ctx && p.kind === 'rateLimited') ctx.rateLimited = p.detail;
      if (p.kind === 'replacesRefused') {
        if (ctx) ctx.replacesRefused = p.detail;
        return;
      }
      const directoryUrl = ctx?.directoryUrl ?? directoryOf(deps.config, deps.config.staging ? 'staging' : 'production');
      if (p.kind === 'accountDoesNotExist') {
        this.missingAccount.add(directoryUrl);
        return;
      }
      // The CA's own "rateLimited" holds every order of this directory until its Retry-After, across restarts.
      deps.ledger?.(directoryUrl)
        .caRateLimited(p.retryAfterMs, p.detail)
        .then(
          (until) => log.warn({ reason: 'CaRateLimited', detail: p.detail, until: until.toISOString() }, `the CA answered rateLimited (${p.detail}): no order before ${until.toISOString()}`),
          (e: Error) => log.error({ error: e.message }, `cannot record the CA's rate limit: ${e.message}`),
        );
    });
  }

  /** Registers or looks up the account of a directory once per pass, before its first order. */
  account(directoryUrl: string): Promise<AcmeClient> {
    let a = this.accounts.get(directoryUrl);
    if (!a) {
      a = this.deps.accounts.client(directoryUrl);
      a.catch(() => undefined); // reported per certificate
      this.accounts.set(directoryUrl, a);
    }
    return a;
  }

  accountMissing(directoryUrl: string): boolean {
    return this.missingAccount.has(directoryUrl);
  }
}

/** Does every decided action; returns one result per certificate, in the same order. */
export async function act(deps: PassDeps, decided: Decided[], now: Date): Promise<CertResult[]> {
  const acts = new PassActs(deps);
  // Accounts first, before any order starts (and only for the directories something is ordered from).
  for (const o of decided) if (wantsOrder(o.decision) && o.decision.order) acts.account(directoryOf(deps.config, o.decision.order.kind));
  try {
    // A certificate with nothing to do has its result at once: no job and no promise (10,000 in a steady pass).
    const results = decided.map((o) => (o.decision.action === 'none' || o.decision.action === 'wait' ? baseResult(o) : undefined));
    await Promise.all(decided.flatMap((o, i) => (results[i] ? [] : [job(deps, acts, o, now).then((r) => void (results[i] = r))])));
    // After the pushes: a push reloads its balancers itself and drops what was pending for them, so retrying
    // first could reload one balancer twice in a pass.
    await retryReloads(deps, now);
    return results as CertResult[];
  } finally {
    acts.stopListening();
  }
}

/** The balancer reloads an orchestrator still owes from earlier pushes (issue 16 item 5); never stops the pass. */
async function retryReloads(deps: PassDeps, now: Date): Promise<void> {
  const { orchestrator, log } = deps;
  if (!orchestrator.retryReloads) return;
  try {
    for (const r of await orchestrator.retryReloads(now)) {
      const fields = { cert: r.cert, balancer: r.balancer, action: 'reload', ok: r.ok };
      if (r.ok) log.info(fields, `${r.cert}: balancer ${r.balancer} reloaded: ${r.message}`);
      else log.warn(fields, `${r.cert}: balancer ${r.balancer} reload still pending: ${r.message}`);
    }
  } catch (e) {
    log.error({ error: (e as Error).message }, `cannot retry pending balancer reloads on ${orchestrator.name}: ${(e as Error).message}`);
  }
}

function noteReloads(deps: PassDeps, o: Decided, r: CertResult, to: PushResult): string {
  if (!to.pendingReloads?.length) return '';
  r.pendingReloads = [...to.pendingReloads];
  deps.log.warn({ cert: o.wanted.name, action: 'push', pendingReloads: r.pendingReloads }, `${o.wanted.name}: pushed, balancer reload pending: ${r.pendingReloads.join(', ')}`);
  return `; balancer reload pending: ${r.pendingReloads.join(', ')}`;
}

async function job(deps: PassDeps, acts: PassActs, o: Decided, now: Date): Promise<CertResult> {
  const r = baseResult(o);
  const { action } = o.decision;
  if (action === 'none' || action === 'wait') return r;
  let placeholderPushed: Promise<void> | undefined;
  try {
    if (action === 'push') return await pushLocal(deps, o, r);
    if (action === 'remove') return await decommission(deps, o, r, now);
    // A placeholder that cannot be stored means the real certificate could not be either: no order then.
    // Its push only lets a balancer start, so it runs while the real order does and may fail with a
    // warning; the real certificate is pushed only after it, never under it.
    if (action === 'placeholder') placeholderPushed = (await acts.placeholderWrites(() => storePlaceholder(deps, o, r, () => keyAhead(deps, acts, o)))).pushed;
    if (o.decision.held) {
      // The gate holds the order (backoff, a limit): the placeholder is in, the order waits.
      await placeholderPushed;
      r.outcome = 'waiting';
      return r;
    }
    return await issueAndPush(deps, acts, o, r, placeholderPushed);
  } catch (e) {
    await placeholderPushed;
    return failed(deps, o, r, e, now);
  }
}

/**
 * Pushes one bundle. Taking over a foreign copy (ADOPT_EXISTING) replaces a certificate whose key certwrangler
 * never had, so it is said once, when it happens; afterwards the copy is certwrangler's own.
 */
async function pushBundle(deps: PassDeps, o: Decided, bundle: CertBundle): Promise<PushResult> {
  const to = await deps.orchestrator.push(bundle, { adopt: o.adopt });
  if (o.adopt && o.remoteCopy.state !== 'absent' && !o.remoteCopy.owned) {
    deps.log.warn({ cert: o.wanted.name, action: 'adopt', target: to.target }, `${o.wanted.name}: adopted the certificate certwrangler did not manage at ${to.target} (ADOPT_EXISTING): replaced in place; certwrangler renews it from now on`);
  }
  return to;
}

async function pushLocal(deps: PassDeps, o: Decided, r: CertResult): Promise<CertResult> {
  if (o.local.state !== 'present') throw new Error('no local copy to push');
  const to = await pushBundle(deps, o, o.local.bundle);
  r.pushed = true;
  const pending = noteReloads(deps, o, r, to);
  deps.log.info({ cert: o.wanted.name, action: 'push', target: to.target, reason: o.decision.reason }, `${o.wanted.name}: pushed local copy to ${to.target}${pending}`);
  emit(deps, o, 'pushed', r, { target: to.target });
  return r;
}

/** Orders from the directory the policy chose, stores, then pushes (after the placeholder's push, never under it). */
async function issueAndPush(deps: PassDeps, acts: PassActs, o: Decided, r: CertResult, placeholderPushed: Promise<void> | undefined): Promise<CertResult> {
  const { config, store, log } = deps;
  const kind = o.decision.order!.kind;
  if (o.decision.reason === 'CARequestedEarlyRenewal') {
    // Loud on purpose (issue 17): the CA means to revoke it, and only clients that read ARI react in time.
    log.warn({ cert: o.wanted.name, reason: 'CARequestedEarlyRenewal', window: o.decision.renewalWindow, explanationURL: o.decision.renewalWindow?.explanationURL }, `${o.wanted.name}: ${o.decision.message}; renewing now`);
    emit(deps, o, 'early-renewal', r, o.decision.renewalWindow?.explanationURL ? { explanationURL: o.decision.renewalWindow.explanationURL } : {});
  }
  // The first CA of the kind, or the next one when it cannot take the order (ACME_DIRECTORY_URLS, src/multica/).
  const { result: issued, directoryUrl } = await acts.orders(() => orderFromCas(deps, r, kind, deps.now?.() ?? new Date(), (ctx) => acts.context.run(ctx, () => orderOne(deps, acts, o, r, ctx.directoryUrl))));
  r.issued = true;
  await placeholderPushed;
  const profile = o.decision.order!.profile;
  const bundle: CertBundle = { name: o.wanted.name, names: o.wanted.names, key: issued.key, cert: issued.cert, chain: issued.chain, kind, directoryUrl, ...(profile ? { profile } : {}) };
  await store.write(bundle, { orderUrl: issued.orderUrl });
  await store.dropIssued(o.wanted.name);
  const info = parseCert(issued.cert);
  await store.rememberIssuer(info.issuer, kind);
  await store.writeStatus(o.wanted.name, { failures: 0, lastAttempt: new Date().toISOString() });
  r.kind = kind;
  describeCert(r, info);
  const schedule = renewalSchedule(info, config.renewBeforeDays);
  r.renewAt = schedule.at.toISOString();
  r.renewRule = schedule.rule;
  // The window shown was the old certificate's; the new one's is asked for on the next pass.
  delete r.renewalWindow;
  log.info({ cert: o.wanted.name, action: 'issued', kind, directory: directoryUrl, notAfter: r.notAfter, issuer: info.issuer, reason: o.decision.reason }, `${o.wanted.name}: ${kind} certificate issued, expires ${r.notAfter}`);
  const to = await pushBundle(deps, o, bundle);
  r.pushed = true;
  const pending = noteReloads(deps, o, r, to);
  log.info({ cert: o.wanted.name, action: 'push', target: to.target, reason: o.decision.reason }, `${o.wanted.name}: pushed to ${to.target}${pending}`);
  // A certificate replacing one of its own kind is a renewal; anything else (none, a placeholder, staging) is new.
  const renewal = o.localCopy.state === 'present' && o.localCopy.kind === kind;
  emit(deps, o, renewal ? 'renewed' : 'issued', r, { target: to.target });
  return r;
}

/** A job's failure: its result, log line and event, and the backoff when it was a failed order attempt. */
async function failed(deps: PassDeps, o: Decided, r: CertResult, e: unknown, now: Date): Promise<CertResult> {
  const { store, log } = deps;
  const { action } = o.decision;
  if (e instanceof RateLimitWait) {
    // Not a failure of the certificate: the order was never made. No backoff is recorded for it.
    r.outcome = 'waiting';
    r.error = `not ordered: ${e.message}`;
    r.nextAttempt = e.retryAt.toISOString();
    log.warn({ cert: o.wanted.name, action, reason: 'RateLimited', nextAttempt: r.nextAttempt }, `${o.wanted.name}: not ordered, ${e.message}; the next pass after ${r.nextAttempt} may order`);
    return r;
  }
  r.outcome = 'failed';
  r.error = (e as Error).message;
  if (deps.signal?.aborted && !r.issued) {
    // Shutting down is not the certificate's failure: no backoff, no failure event; the next start orders again.
    log.warn({ cert: o.wanted.name, action, reason: 'ShuttingDown' }, `${o.wanted.name}: ${action} abandoned: ${r.error}`);
    return r;
  }
  // Every failed order attempt backs off (issue 15 item 4), before or after the CA created the order: a
  // name the CA refuses at creation would otherwise be ordered on every pass. A push that fails after a
  // certificate was issued is not an order failure: the next pass pushes the stored copy without ordering.
  // Nor is an account the CA cannot register: no order was attempted.
  if (action !== 'push' && !r.issued && !(e instanceof AccountUnavailable) && !(e instanceof ProfileUnavailable)) {
    const failures = o.status.failures + 1;
    // From the pass's clock (`--at`, tests), which is the clock the next decision is made with.
    const inService = o.localCopy.state === 'present' && o.localCopy.kind !== 'self-signed' ? o.localCopy.info.notAfter.getTime() - now.getTime() : undefined;
    r.nextAttempt = new Date(now.getTime() + backoffDelay(failures, inService)).toISOString();
    await store
      .writeStatus(o.wanted.name, { failures, lastAttempt: now.toISOString(), lastError: r.error, nextAttempt: r.nextAttempt })
      .catch((we: Error) => log.error({ cert: o.wanted.name, error: we.message }, `${o.wanted.name}: cannot record failure`));
  }
  log.error({ cert: o.wanted.name, action, reason: o.decision.reason, error: r.error, ...(r.nextAttempt ? { nextAttempt: r.nextAttempt } : {}) }, `${o.wanted.name}: ${action} failed: ${r.error}`);
  emit(deps, o, 'failed', r);
  return r;
}

/** One order under the ledger: recorded before it is made, released if the CA refuses it at creation. */
async function orderOne(deps: PassDeps, acts: PassActs, o: Decided, r: CertResult, directoryUrl: string): Promise<Issued> {
  const { config, log } = deps;
  deps.signal?.throwIfAborted();
  // Before the ledger: an account that cannot be registered makes no order, so none is recorded.
  const client = await acts.account(directoryUrl).catch((e: Error) => {
    throw new AccountUnavailable(e.message);
  });
  const plan = o.decision.order!;
  // With a profile to check, a directory that cannot be read is the CA's failure (the next CA may take the
  // order), not "it offers no profiles"; without one, ARI's `replaces` is simply left out.
  const facts = plan.profile ? await deps.directories?.facts(directoryUrl) : await deps.directories?.facts(directoryUrl).catch(() => undefined);
  if (plan.profile) checkProfile(plan.profile, directoryUrl, facts?.profiles, o);
  // RFC 9773 §5: a renewal names the certificate it replaces, when its CA speaks ARI and issued the one in place.
  let replaces = facts?.renewalInfo && o.local.state === 'present' && o.local.meta.directoryUrl === directoryUrl ? o.ari?.certId : undefined;
  const resumed = await resumeLeftOrder(deps, o, client, directoryUrl);
  if (resumed) return resumed;
  const ledger: Ledger | undefined = deps.ledger?.(directoryUrl);
  const budget = { budget: plan.budget };
  const first = await ledger?.acquire(o.wanted.names, { ...budget, ...(plan.ariRenewal && replaces ? { ariRenewal: true } : {}) });
  if (first && isVerdict(first)) throw new RateLimitWait(first.message, first.retryAt);
  let ticket: Ticket | undefined = first;
  let orderUrl: string | undefined;
  // The CA issued and we downloaded: the certificate counts against its limits whatever a later step says.
  let downloaded = false;
  try {
    const challenge = challengeFor(o.wanted.names, o.wanted.challenge, config.challenge);
    const key = chooseKey(o, config);
    const freshKey = key.reuse ? undefined : acts.keysAhead.take(o.wanted.name, key.keyType);
    if (key.fresh) log.info({ cert: o.wanted.name, action: 'key' }, `${o.wanted.name}: a fresh key, not the stored one (REUSE_KEY): ${key.fresh}`);
    const order = (c: AcmeClient) =>
      issueCertificate(c, o.wanted.names, {
        ...(plan.profile ? { profile: plan.profile } : {}),
        ...(replaces ? { replaces } : {}),
        keyType: key.keyType,
        ...(key.reuse ? { key: key.reuse } : {}),
        ...(freshKey ? { freshKey } : {}),
        solvers: { 'http-01': deps.solver, ...(deps.dnsSolver ? { 'dns-01': deps.dnsSolver } : {}) },
        challenge,
        ...(config.preferredChain ? { preferredChain: config.preferredChain } : {}),
        ...(deps.signal ? { signal: deps.signal } : {}),
        keep: ({ key, pem, orderUrl: url }) => {
          downloaded = true;
          return keepDownload(deps, o, directoryUrl, { key, pem, orderUrl: url });
        },
        remember: ({ orderUrl: url, key, expires }) =>
          deps.store.keepOrder({ name: o.wanted.name, names: o.wanted.names, directoryUrl, orderUrl: url, key, ...(expires ? { expires } : {}), createdAt: new Date().toISOString() }),
        onOrder: (url) => {
          orderUrl = url;
          r.orders += 1;
          log.info({ cert: o.wanted.name, action: 'order', order: url, challenge, directory: directoryUrl, reason: o.decision.reason }, `${o.wanted.name}: order created, validating with ${challenge}`);
        },
      });
    const got = await order(client).catch(async (e: unknown) => {
      const ctx = acts.context.getStore();
      if (replaces && ctx?.replacesRefused && e instanceof AcmeError && e.step === 'new order') {
        // RFC 9773 §5: the CA would not take `replaces` (already replaced, or not its certificate). Once more
        // without it: the certificate still needs renewing. Without `replaces` it is no ARI renewal for the
        // rate limits either, so its ledger entry is made again as an ordinary one.
        log.warn({ cert: o.wanted.name, reason: 'ReplacesRefused', replaces, problem: ctx.replacesRefused }, `${o.wanted.name}: the CA refused "replaces" ${replaces} (${ctx.replacesRefused}); ordering once more without it`);
        const wasExempt = plan.ariRenewal === true;
        replaces = undefined;
        delete ctx.replacesRefused;
        if (wasExempt && ticket && ledger) {
          ticket.release();
          await ticket.done();
          const again = await ledger.acquire(o.wanted.names, budget);
          ticket = undefined;
          if (isVerdict(again)) throw new RateLimitWait(again.message, again.retryAt);
          ticket = again;
        }
        return order(client);
      }
      // The CA no longer knows the account (Pebble restarted, or it was deactivated): register
      // a new one, once for the pass, and make this order with it. No order was created.
      if (!acts.accountMissing(directoryUrl) || !(e instanceof AcmeError) || e.step !== 'new order') throw e;
      log.warn({ cert: o.wanted.name, reason: 'AccountDoesNotExist' }, `the CA does not know our account at ${directoryUrl} any more; registering a new one`);
      return order(await deps.accounts.replace(directoryUrl, client));
    });
    ticket?.issued();
    return got;
  } catch (e) {
    if (downloaded) ticket?.issued();
    if (e instanceof AcmeError) ticket?.failedAuthorizations(e.failedNames);
    const refused = acts.context.getStore()?.refused;
    if (refused && orderUrl === undefined && ticket) {
      // The CA made no order: it must not count against the limits (issue 15 item 4). The backoff still starts.
      ticket.release();
      log.warn({ cert: o.wanted.name, reason: 'OrderRefused', problem: refused }, `${o.wanted.name}: the CA refused the order at creation (${refused}); not counted in the rate-limit ledger`);
    }
    throw e;
  } finally {
    await ticket?.done().catch((e: Error) => log.error({ cert: o.wanted.name, error: e.message }, `${o.wanted.name}: cannot write the rate-limit ledger: ${e.message}`));
  }
}

/** Keeps what the CA issued, then forgets the order it came from: it is finished. */
/**
 * Why an order left by an earlier run must not be carried on, or undefined when it may. Its key was chosen under
 * the rules of its own time: a key since revoked for keyCompromise, or of a KEY_TYPE no longer asked for, is not
 * certified again; and an order whose certificate is already the one in place (killed between keeping it and
 * forgetting the order) would only download that certificate again.
 */
function staleOrder(o: Decided, left: PendingOrder, directoryUrl: string, config: PassDeps['config']): string | undefined {
  if (left.directoryUrl !== directoryUrl || left.names.length !== o.wanted.names.length || !o.wanted.names.every((n) => left.names.includes(n))) return 'it was for other names or another CA';
  if (o.local.state === 'present' && o.local.meta.orderUrl === left.orderUrl) return 'its certificate is the one in place';
  // A placeholder may be stored while the order runs: only a real certificate newer than the order replaces it.
  if (o.local.state === 'present' && !o.local.info.selfSigned && Date.parse(o.local.meta.issuedAt) >= Date.parse(left.createdAt)) return 'the certificate in place is newer';
  if (o.input.revoked?.reason === 'keyCompromise' && o.local.state === 'present' && o.local.bundle.key === left.key) return 'its key was revoked as compromised';
  const wanted = o.wanted.keyType ?? config.keyType;
  let kept: string | undefined;
  try {
    kept = keyTypeOf(left.key);
  } catch {
    return 'its key does not parse';
  }
  if (kept !== wanted) return `its key is not a ${wanted} key (KEY_TYPE)`;
  return undefined;
}

async function keepDownload(deps: PassDeps, o: Decided, directoryUrl: string, got: { key: string; pem: string; orderUrl: string }): Promise<void> {
  const plan = o.decision.order!;
  await deps.store.keepIssued({ name: o.wanted.name, names: o.wanted.names, kind: plan.kind, ...(plan.profile ? { profile: plan.profile } : {}), directoryUrl, orderUrl: got.orderUrl, key: got.key, pem: got.pem, issuedAt: new Date().toISOString() });
  // The certificate is kept; a record left behind is judged stale by the next attempt (staleOrder), so a failure
  // here is told, not fatal.
  await deps.store.dropOrder(o.wanted.name).catch((e: Error) => deps.log.warn({ cert: o.wanted.name, error: e.message }, `${o.wanted.name}: cannot forget the finished order: ${e.message}`));
}

/**
 * An order an earlier run created for these names at this CA and did not finish (a leader killed mid-order, a
 * crash): carried on, with the key kept beside it, so that taking over never costs a second order (issue 20
 * item 2). It was counted in the ledger when it was made. One the CA will not finish is forgotten, and a new
 * order follows; any other failure is the pass's, as a new order's would be.
 */
async function resumeLeftOrder(deps: PassDeps, o: Decided, client: AcmeClient, directoryUrl: string): Promise<Issued | undefined> {
  const { config, log } = deps;
  const left = await deps.store.readOrder(o.wanted.name);
  if (!left) return undefined;
  const why = staleOrder(o, left, directoryUrl, config);
  if (why) {
    log.info({ cert: o.wanted.name, order: left.orderUrl }, `${o.wanted.name}: not carrying on order ${left.orderUrl} left by an earlier run: ${why}`);
    await deps.store.dropOrder(o.wanted.name);
    return undefined;
  }
  const plan = o.decision.order!;
  const challenge = challengeFor(o.wanted.names, o.wanted.challenge, config.challenge);
  log.info({ cert: o.wanted.name, action: 'order', order: left.orderUrl, directory: directoryUrl, reason: o.decision.reason }, `${o.wanted.name}: resuming order ${left.orderUrl}, left unfinished by an earlier run (${left.createdAt}); no new order`);
  try {
    return await issueCertificate(client, o.wanted.names, {
      resume: left.orderUrl,
      key: left.key,
      keyType: o.wanted.keyType ?? config.keyType,
      solvers: { 'http-01': deps.solver, ...(deps.dnsSolver ? { 'dns-01': deps.dnsSolver } : {}) },
      challenge,
      ...(config.preferredChain ? { preferredChain: config.preferredChain } : {}),
      ...(deps.signal ? { signal: deps.signal } : {}),
      ...(plan.profile ? { profile: plan.profile } : {}),
      keep: (got) => keepDownload(deps, o, directoryUrl, got),
    });
  } catch (e) {
    if (!(e instanceof AcmeError) || e.step !== 'resume') throw e;
    log.warn({ cert: o.wanted.name, order: left.orderUrl, error: e.message }, `${o.wanted.name}: the order left by an earlier run cannot be carried on (${e.message}); making a new one`);
    await deps.store.dropOrder(o.wanted.name);
    return undefined;
  }
}

/** The profile must be one the CA lists in its directory (draft-ietf-acme-profiles §3); else one clear error and no order. */
function checkProfile(profile: string, directoryUrl: string, offered: Record<string, string> | undefined, o: Decided): void {
  if (offered && profile in offered) return;
  const from = o.wanted.profile ? `the ${o.wanted.sources.find((s) => s.startsWith('label')) ?? 'label'}'s profile` : 'PROFILE';
  const which = offered ? `it offers ${Object.keys(offered).join(', ')}` : 'it offers no profiles (its directory has no meta.profiles)';
  throw new ProfileUnavailable(`${from} "${profile}" is not a profile of ${directoryUrl}: ${which}; not ordered`);
}

/**
 * The order that follows a placeholder gets its fresh key started once the placeholder is made (its own key comes
 * first) and the CA's account is there: the order's key is then made while the placeholder is stored and pushed
 * (src/acme/key-ahead.ts).
 */
function keyAhead(deps: PassDeps, acts: PassActs, o: Decided): void {
  if (!wantsOrder(o.decision) || !o.decision.order) return;
  const key = chooseKey(o, deps.config);
  if (key.reuse) return;
  // Only once the CA's account is there: with the CA down (placeholders only) no key is made for nothing.
  acts.account(directoryOf(deps.config, o.decision.order.kind)).then(
    () => acts.keysAhead.start(o.wanted.name, key.keyType),
    () => undefined,
  );
}

/**
 * Stores a self-signed placeholder, then returns its push, which reports its own failure as a warning.
 * `made`: told once the placeholder is made, before it is stored.
 */
async function storePlaceholder(deps: PassDeps, o: Decided, r: CertResult, made?: () => void): Promise<{ pushed: Promise<void> }> {
  const { log } = deps;
  // IP identifiers (RFC 8738) go in as iPAddress SANs, not as DNS names.
  const ips = o.wanted.names.filter((n) => isIP(n));
  const ss = await createSelfSigned(o.wanted.names.filter((n) => !isIP(n)), { sharedKey: true, ...(ips.length > 0 ? { ips } : {}) });
  made?.();
  const bundle: CertBundle = { name: o.wanted.name, names: o.wanted.names, key: ss.key, cert: ss.cert, chain: '', kind: 'self-signed', directoryUrl: '' };
  await deps.store.write(bundle);
  log.debug({ cert: o.wanted.name, action: 'placeholder' }, `${o.wanted.name}: self-signed placeholder stored`);
  const info = parseCert(ss.cert);
  r.placeholder = true;
  r.kind = 'self-signed';
  describeCert(r, info);
  delete r.renewAt;
  delete r.renewRule;
  const pushed = deps.orchestrator.push(bundle, { adopt: o.adopt }).then(
    (to) => {
      log.info({ cert: o.wanted.name, action: 'placeholder', target: to.target }, `${o.wanted.name}: self-signed placeholder pushed to ${to.target}`);
      emit(deps, o, 'placeholder', r, { target: to.target, kind: 'self-signed', issuer: info.issuer, notAfter: info.notAfter.toISOString() });
    },
    (e: Error) => log.warn({ cert: o.wanted.name, action: 'placeholder', error: e.message }, `${o.wanted.name}: placeholder not pushed: ${e.message}`),
  );
  return { pushed };
}
