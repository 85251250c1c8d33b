/**
 * One pass of the manager (DESIGN §2): discover → observe → decide → act → report.
 * Gathering is separate from deciding: `observe` builds plain records, `decideAction` is pure, and only
 * `act` changes anything. One certificate's failure is caught, recorded and never stops the others.
 */
import pLimit from 'p-limit';
import type { Config } from './config.js';
import type { RefusedCert, WantedCert } from './domains.js';
import { discover } from './discover.js';
import { mayAdopt } from './adopt.js';
import { classifyByIssuer, kindOfDirectory, type Kind, type KnownIssuers } from './certs/kind.js';
import { parseCert, type CertInfo } from './certs/parse.js';
import { createSelfSigned } from './certs/placeholder.js';
import type { CertBundle, CertStatus, LocalCopy, LocalStore } from './certs/store.js';
import type { AccountBook } from './acme/account.js';
import type { Client as AcmeClient } from 'acme-client';
import { issueCertificate } from './acme/issue.js';
import { challengeFor, type ChallengeSolver } from './acme/challenge.js';
import type { Orchestrator, RemoteCopy } from './orchestrators/orchestrator.js';
import { decideAction, renewalTime, type Copy, type Decision } from './policy.js';
import type { Logger } from './log.js';
import type { CertEvent, EventSink, EventType } from './events/events.js';
import type { RequestBook } from './requests.js';
import { isVerdict, type Ledger } from './limits/ledger.js';
import { AcmeError } from './acme/issue.js';
import { onAcmeProblem } from './acme/transport.js';

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
  kind?: Kind;
  issuer?: string;
  notBefore?: string;
  notAfter?: string;
  /** When the certificate in place falls due for renewal, and by which rule. */
  renewAt?: string;
  renewRule?: string;
  nextAttempt?: string;
}

export interface PassReport {
  startedAt: string;
  finishedAt: string;
  results: CertResult[];
  refused: RefusedCert[];
  /** Problems of the pass as a whole (labels or the orchestrator's list could not be read). */
  errors: string[];
  /** Every certificate is in place and nothing was refused or failed. */
  ok: boolean;
}

interface Observed {
  wanted: WantedCert;
  local: LocalCopy;
  status: CertStatus;
  localCopy: Copy;
  remoteCopy: Copy;
  decision: Decision;
  /** ADOPT_EXISTING lets this certificate take over a foreign copy of its name. */
  adopt: boolean;
}

// DESIGN §6: after a failed order wait 1 h, doubling to 24 h, so a name that cannot validate does not
// spend Let's Encrypt's 5-failures-per-hour limit.
const BACKOFF_FIRST_MS = 60 * 60 * 1000;
const BACKOFF_MAX_MS = 24 * 60 * 60 * 1000;

const STORE_READ_CONCURRENCY = 64;
// Placeholders made and written at once. Each write is several fsyncs on libuv's 4 threads; with every
// placeholder of a first pass writing at once, the first finished (and could be pushed) only when nearly
// all had: 0.8 s for 100 names. One batch of the pool's size at a time lets the pushes start at once.
const PLACEHOLDER_WRITE_CONCURRENCY = 4;

export function backoffDelay(failures: number): number {
  return Math.min(BACKOFF_FIRST_MS * 2 ** Math.max(0, failures - 1), BACKOFF_MAX_MS);
}

function wantedKind(config: Config): Kind {
  return config.staging ? 'staging' : 'production';
}

function directoryFor(config: Config): string {
  return config.staging ? config.stagingDirectoryUrl : config.productionDirectoryUrl;
}

function localToCopy(local: LocalCopy, config: Config): Copy {
  if (local.state !== 'present') return local.state === 'absent' ? local : { ...local, owned: true };
  const kind = kindOfDirectory(local.meta.directoryUrl, config, local.meta.kind);
  return { state: 'present', info: local.info, kind, keyMatches: local.keyMatches, owned: true };
}

function remoteToCopy(remote: RemoteCopy, local: Copy, known: KnownIssuers): Copy {
  if (remote.state !== 'present') return remote;
  // The same certificate as the local copy is the same kind; otherwise judge it by its issuer.
  const kind =
    local.state === 'present' && local.info.fingerprint === remote.info.fingerprint
      ? local.kind
      : classifyByIssuer(remote.info, known);
  return { state: 'present', info: remote.info, kind, keyMatches: true, owned: remote.owned };
}

/**
 * `observe`, or, when the orchestrator's copies cannot be read, the error added to `errors` and every
 * certificate failed with it: nothing can be decided safely, so each waits for the next pass.
 */
async function observeOrReport(deps: PassDeps, wanted: WantedCert[], now: Date, recover: boolean, errors: string[]): Promise<Observed[] | { results: CertResult[] }> {
  try {
    return await observe(deps, wanted, now, recover);
  } catch (e) {
    const error = `cannot read certificates from ${deps.orchestrator.name}: ${(e as Error).message}`;
    errors.push(error);
    const results = wanted.map((w) => ({
      name: w.name,
      names: w.names,
      sources: w.sources,
      decision: { action: 'none' as const, reason: 'OrchestratorUnavailable', message: error },
      outcome: 'failed' as const,
      orders: 0,
      pushed: false,
      placeholder: false,
      error,
    }));
    return { results };
  }
}

async function observe(deps: PassDeps, wanted: WantedCert[], now: Date, recover: boolean): Promise<Observed[]> {
  const { config, store } = deps;
  const [known, remotes] = await Promise.all([store.knownIssuers(), deps.orchestrator.list(wanted.map((w) => w.name))]);
  // Bounded: each read opens several files, and 10,000 certificates at once exceed the open-file limit.
  const reads = pLimit(STORE_READ_CONCURRENCY);
  return Promise.all(
    wanted.map(async (w) => {
      const [local, status] = await reads(() => Promise.all([store.read(w.name, { recover }), store.readStatus(w.name)]));
      const localCopy = localToCopy(local, config);
      const remoteCopy = remoteToCopy(remotes.get(w.name) ?? { state: 'absent' }, localCopy, known);
      const adopt = mayAdopt(config.adoptExisting, w);
      const decision = decideAction({
        wanted: { name: w.name, names: w.names, kind: wantedKind(config) },
        local: localCopy,
        remote: remoteCopy,
        now,
        policy: { renewBeforeDays: config.renewBeforeDays, adoptExisting: adopt, placeholders: config.placeholders },
        ...(status.nextAttempt ? { backoffUntil: new Date(status.nextAttempt) } : {}),
      });
      return { wanted: w, local, status, localCopy, remoteCopy, decision, adopt };
    }),
  );
}

function baseResult(o: Observed, config: Config): CertResult {
  const r: CertResult = {
    name: o.wanted.name,
    names: o.wanted.names,
    sources: o.wanted.sources,
    decision: o.decision,
    outcome: 'ok',
    orders: 0,
    pushed: false,
    placeholder: false,
  };
  if (o.localCopy.state === 'present') {
    r.kind = o.localCopy.kind;
    describeCert(r, o.localCopy.info);
  }
  if (o.decision.renewAt) {
    r.renewAt = o.decision.renewAt.toISOString();
    r.renewRule = renewRule(config);
  }
  return r;
}

/** The certificate in place, as the report, the status page and the events show it. */
function describeCert(r: CertResult, info: CertInfo): void {
  r.issuer = info.issuer;
  r.notBefore = info.notBefore.toISOString();
  r.notAfter = info.notAfter.toISOString();
}

function renewRule(config: Config): string {
  return config.renewBeforeDays ? `${config.renewBeforeDays} days before expiry (RENEW_BEFORE_DAYS)` : 'when a third of its lifetime is left';
}

/** `plan`: discover, observe and decide; change nothing. */
export async function planPass(deps: PassDeps): Promise<PassReport> {
  const started = new Date();
  const now = deps.now?.() ?? started;
  const { wanted, refused, errors } = await discover(deps);
  const observed = await observeOrReport(deps, wanted, now, false, errors);
  const results = Array.isArray(observed) ? await Promise.all(observed.map((o) => planned(deps, o))) : observed.results;
  return { startedAt: started.toISOString(), finishedAt: new Date().toISOString(), results, refused, errors, ok: refused.length === 0 && errors.length === 0 };
}

/** A planned result; an order the rate-limit ledger would hold says so, as the pass would. */
async function planned(deps: PassDeps, o: Observed): Promise<CertResult> {
  const r: CertResult = { ...baseResult(o, deps.config), outcome: 'planned' };
  const { action } = o.decision;
  if (!deps.ledger || (action !== 'issue' && action !== 'placeholder')) return r;
  const verdict = await deps.ledger(directoryFor(deps.config)).peek(o.wanted.names).catch((e: Error) => ({ message: e.message, retryAt: undefined }));
  if (verdict) {
    r.error = `not ordered: ${verdict.message}`;
    if (verdict.retryAt) r.nextAttempt = verdict.retryAt.toISOString();
  }
  return r;
}

export async function runPass(deps: PassDeps): Promise<PassReport> {
  const { config, store, log } = deps;
  const started = new Date();
  const now = deps.now?.() ?? started;
  const { wanted, refused, errors } = await discover(deps);
  for (const r of refused) log.error({ cert: r.spec, source: r.source, error: r.error }, `refused ${r.spec} from ${r.source}: ${r.error}`);
  for (const e of errors) log.error({ error: e }, e);
  const observed = await observeOrReport(deps, wanted, now, true, errors);
  if (!Array.isArray(observed)) {
    log.error({ error: errors.at(-1) }, `${errors.at(-1)}; nothing changed, next pass retries`);
    return finish(log, started, observed.results, refused, errors);
  }
  for (const o of observed) {
    log.info({ cert: o.wanted.name, names: o.wanted.names, action: o.decision.action, reason: o.decision.reason }, `${o.wanted.name}: ${o.decision.action} — ${o.decision.message}`);
  }

  const directoryUrl = directoryFor(config);
  const needsOrder = observed.some((o) => o.decision.action === 'issue' || o.decision.action === 'placeholder');
  // Register or look up the account once, before any order starts.
  const account = needsOrder ? deps.accounts.client(directoryUrl) : undefined;
  account?.catch(() => undefined); // reported per certificate below
  const limit = pLimit(config.acmeConcurrency);
  const placeholderWrites = pLimit(PLACEHOLDER_WRITE_CONCURRENCY);
  let accountMissing = false;
  const stopListening = onAcmeProblem((p) => {
    if (p.kind === 'accountDoesNotExist') {
      accountMissing = true;
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

  const results = await Promise.all(
    observed.map((o) => {
      const r = baseResult(o, config);
      const { action } = o.decision;
      if (action === 'none') {
        if (o.decision.reason === 'Foreign') r.outcome = 'foreign';
        return r;
      }
      if (action === 'wait') {
        r.outcome = 'waiting';
        if (o.status.nextAttempt) r.nextAttempt = o.status.nextAttempt;
        if (o.status.lastError) r.error = o.status.lastError;
        return r;
      }
      const job = async (): Promise<CertResult> => {
        let orderUrl: string | undefined;
        let placeholderPushed: Promise<void> | undefined;
        try {
          // A placeholder that cannot be stored means the real certificate could not be either: no order then.
          // Its push only lets a balancer start, so it runs while the real order does and may fail with a
          // warning; the real certificate is pushed only after it, never under it.
          if (action === 'placeholder') placeholderPushed = (await placeholderWrites(() => storePlaceholder(deps, o, r))).pushed;
          if (action === 'push') {
            if (o.local.state !== 'present') throw new Error('no local copy to push');
            const to = await deps.orchestrator.push(o.local.bundle, { adopt: o.adopt });
            r.pushed = true;
            log.info({ cert: o.wanted.name, action: 'push', target: to.target, reason: o.decision.reason }, `${o.wanted.name}: pushed local copy to ${to.target}`);
            emit(deps, o, 'pushed', r, { target: to.target });
            return r;
          }
          const issued = await limit(async () => {
            deps.signal?.throwIfAborted();
            // Before the ledger: an account that cannot be registered makes no order, so none is recorded.
            const client = await account!;
            const ticket = await deps.ledger?.(directoryUrl).acquire(o.wanted.names);
            if (ticket && isVerdict(ticket)) throw new RateLimitWait(ticket.message, ticket.retryAt);
            try {
              const challenge = challengeFor(o.wanted.names, o.wanted.challenge, config.challenge);
              const order = (client: AcmeClient) =>
                issueCertificate(client, o.wanted.names, {
                  keyType: config.keyType,
                  solvers: { 'http-01': deps.solver, ...(deps.dnsSolver ? { 'dns-01': deps.dnsSolver } : {}) },
                  challenge,
                  ...(deps.signal ? { signal: deps.signal } : {}),
                  onOrder: (url) => {
                    orderUrl = url;
                    r.orders += 1;
                    log.info({ cert: o.wanted.name, action: 'order', order: url, challenge, reason: o.decision.reason }, `${o.wanted.name}: order created, validating with ${challenge}`);
                  },
                });
              const got = await order(client).catch(async (e: unknown) => {
                // The CA no longer knows the account (Pebble restarted, or it was deactivated): register
                // a new one, once for the pass, and make this order with it. No order was created.
                if (!accountMissing || !(e instanceof AcmeError) || e.step !== 'new order') throw e;
                log.warn({ cert: o.wanted.name, reason: 'AccountDoesNotExist' }, `the CA does not know our account at ${directoryUrl} any more; registering a new one`);
                return order(await deps.accounts.replace(directoryUrl, client));
              });
              ticket?.issued();
              return got;
            } catch (e) {
              if (e instanceof AcmeError) ticket?.failedAuthorizations(e.failedNames);
              throw e;
            } finally {
              await ticket?.done().catch((e: Error) => log.error({ cert: o.wanted.name, error: e.message }, `${o.wanted.name}: cannot write the rate-limit ledger: ${e.message}`));
            }
          });
          r.issued = true;
          await placeholderPushed;
          const kind = wantedKind(config);
          const bundle: CertBundle = { name: o.wanted.name, names: o.wanted.names, key: issued.key, cert: issued.cert, chain: issued.chain, kind, directoryUrl };
          await store.write(bundle, { orderUrl: issued.orderUrl });
          const info = parseCert(issued.cert);
          await store.rememberIssuer(info.issuer, kind);
          await store.writeStatus(o.wanted.name, { failures: 0, lastAttempt: new Date().toISOString() });
          r.kind = kind;
          describeCert(r, info);
          r.renewAt = renewalTime(info, config.renewBeforeDays).toISOString();
          r.renewRule = renewRule(config);
          log.info({ cert: o.wanted.name, action: 'issued', kind, notAfter: r.notAfter, issuer: info.issuer, reason: o.decision.reason }, `${o.wanted.name}: ${kind} certificate issued, expires ${r.notAfter}`);
          const to = await deps.orchestrator.push(bundle, { adopt: o.adopt });
          r.pushed = true;
          log.info({ cert: o.wanted.name, action: 'push', target: to.target, reason: o.decision.reason }, `${o.wanted.name}: pushed to ${to.target}`);
          // A certificate replacing one of its own kind is a renewal; anything else (none, a placeholder, staging) is new.
          const renewal = o.localCopy.state === 'present' && o.localCopy.kind === kind;
          emit(deps, o, renewal ? 'renewed' : 'issued', r, { target: to.target });
          return r;
        } catch (e) {
          await placeholderPushed;
          if (e instanceof RateLimitWait) {
            // Not a failure of the certificate: the order was never made. No backoff is recorded for it.
            r.outcome = 'waiting';
            r.error = `not ordered: ${e.message}`;
            r.nextAttempt = e.retryAt.toISOString();
            log.warn({ cert: o.wanted.name, action, reason: 'RateLimit', nextAttempt: r.nextAttempt }, `${o.wanted.name}: not ordered, ${e.message}; the next pass after ${r.nextAttempt} may order`);
            return r;
          }
          r.outcome = 'failed';
          r.error = (e as Error).message;
          if (deps.signal?.aborted && !r.issued) {
            // Shutting down is not the certificate's failure: no backoff, no failure event; the next start orders again.
            log.warn({ cert: o.wanted.name, action, reason: 'ShuttingDown' }, `${o.wanted.name}: ${action} abandoned: ${r.error}`);
            return r;
          }
          // Only a failure after the CA created an order counts against the limits: back off then.
          if (orderUrl) {
            const failures = o.status.failures + 1;
            // From the pass's clock (`--at`, tests), which is the clock the next decision is made with.
            r.nextAttempt = new Date(now.getTime() + backoffDelay(failures)).toISOString();
            await store
              .writeStatus(o.wanted.name, { failures, lastAttempt: now.toISOString(), lastError: r.error, nextAttempt: r.nextAttempt })
              .catch((we: Error) => log.error({ cert: o.wanted.name, error: we.message }, `${o.wanted.name}: cannot record failure`));
          }
          log.error({ cert: o.wanted.name, action, reason: o.decision.reason, error: r.error, ...(r.nextAttempt ? { nextAttempt: r.nextAttempt } : {}) }, `${o.wanted.name}: ${action} failed: ${r.error}`);
          emit(deps, o, 'failed', r);
          return r;
        }
      };
      return job();
    }),
  );
  stopListening();
  return finish(log, started, results, refused, errors);
}

/** A limit of the ledger says no order now. */
class RateLimitWait extends Error {
  constructor(message: string, readonly retryAt: Date) {
    super(message);
    this.name = 'RateLimitWait';
  }
}

function emit(deps: PassDeps, o: Observed, type: EventType, r: CertResult, extra: Partial<CertEvent> = {}): void {
  if (!deps.events) return;
  const e: CertEvent = { type, name: o.wanted.name, names: o.wanted.names, at: new Date().toISOString(), reason: o.decision.reason };
  if (r.kind) e.kind = r.kind;
  if (r.issuer) e.issuer = r.issuer;
  if (r.notAfter) e.notAfter = r.notAfter;
  if (r.error) e.error = r.error;
  if (r.nextAttempt) e.nextAttempt = r.nextAttempt;
  deps.events.emit({ ...e, ...extra });
}

/** Stores a self-signed placeholder, then returns its push, which reports its own failure as a warning. */
async function storePlaceholder(deps: PassDeps, o: Observed, r: CertResult): Promise<{ pushed: Promise<void> }> {
  const { log } = deps;
  const ss = await createSelfSigned(o.wanted.names, { sharedKey: true });
  const bundle: CertBundle = { name: o.wanted.name, names: o.wanted.names, key: ss.key, cert: ss.cert, chain: '', kind: 'self-signed', directoryUrl: '' };
  await deps.store.write(bundle);
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

function finish(log: Logger, started: Date, results: CertResult[], refused: RefusedCert[], errors: string[]): PassReport {
  const ok = refused.length === 0 && errors.length === 0 && results.every((r) => r.outcome === 'ok' || r.outcome === 'foreign');
  const report: PassReport = { startedAt: started.toISOString(), finishedAt: new Date().toISOString(), results, refused, errors, ok };
  log.info(
    { pass: { certificates: results.length, orders: results.reduce((n, r) => n + r.orders, 0), failed: results.filter((r) => r.outcome === 'failed').length, refused: refused.length } },
    `pass finished: ${results.length} certificates, ${ok ? 'all fine' : 'some need attention'}`,
  );
  return report;
}
