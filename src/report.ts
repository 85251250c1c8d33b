/**
 * Step 5 of a pass (DESIGN §2): what the pass tells people. The result of each certificate, the log line
 * of each decision, the events, and the pass's summary; nothing here changes a certificate.
 */
import { originOf, type RefusedCert } from './domains.js';
import type { CertInfo } from './certs/parse.js';
import type { Logger } from './log.js';
import type { CertEvent, EventType } from './events/events.js';
import type { Decided } from './observe.js';
import type { CertResult, DirectoryBudgets, PassDeps, PassReport } from './reconciler.js';

// A certificate's dates are the same pass after pass (and its renewal time with them): their text is made once.
// toISOString costs a microsecond or more, three per certificate a pass (issue 22). Emptied when it grows past
// ISO_CACHE_MAX, so a manager running for years keeps no more than that.
const isoCache = new Map<number, string>();
const ISO_CACHE_MAX = 300_000;

/** `d.toISOString()`, from isoCache when that moment was shown before. */
export function isoOf(d: Date): string {
  const t = d.getTime();
  let s = isoCache.get(t);
  if (s === undefined) {
    s = d.toISOString();
    if (isoCache.size >= ISO_CACHE_MAX) isoCache.clear();
    isoCache.set(t, s);
  }
  return s;
}

/** The certificate in place, as the report, the status page and the events show it. */
export function describeCert(r: CertResult, info: CertInfo): void {
  r.issuer = info.issuer;
  r.notBefore = isoOf(info.notBefore);
  r.notAfter = isoOf(info.notAfter);
}

/** A foreign copy that expires within FOREIGN_WARN_DAYS, or has: the operator must act (issue 16 item 6). */
export const needsAttention = (r: CertResult): boolean => r.outcome === 'failed' || r.outcome === 'waiting' || r.decision.reason === 'ForeignExpiring';

/** The result before anything is done: what was decided, and the certificate the decision is about. */
export function baseResult(o: Decided): CertResult {
  const { decision } = o;
  const r: CertResult = { name: o.wanted.name, names: o.wanted.names, sources: o.wanted.sources, decision, outcome: 'ok', orders: 0, pushed: false, placeholder: false };
  const shown = decision.describesRemote ? o.remoteCopy : o.localCopy;
  if (shown.state === 'present') {
    if (shown.kind) r.kind = shown.kind;
    describeCert(r, shown.info);
  }
  if (decision.foreign) {
    r.foreign = true;
    r.outcome = 'foreign';
    delete r.kind;
  }
  if (decision.reason === 'ServedElsewhere' || decision.reason === 'PushedElsewhere') r.servedElsewhere = true;
  if (decision.renewAt) {
    r.renewAt = isoOf(decision.renewAt);
    if (decision.renewRule) r.renewRule = decision.renewRule;
  }
  const w = decision.renewalWindow;
  if (w) r.renewalWindow = { start: w.start.toISOString(), end: w.end.toISOString(), ...(w.explanationURL ? { explanationURL: w.explanationURL } : {}), early: w.early };
  if (o.ari?.nextFetch) r.ariNextFetch = o.ari.nextFetch;
  const profile = decision.order?.profile ?? o.input.wanted.profile ?? (o.localCopy.state === 'present' ? o.localCopy.profile : undefined);
  if (profile) r.profile = profile;
  if (decision.held) {
    if (decision.action === 'wait') r.outcome = 'waiting';
    r.nextAttempt = decision.held.until.toISOString();
    // Backing off: the failure that started it is the error to show; otherwise the limit that holds it.
    const lastError = decision.reason === 'BackingOff' ? o.status.lastError : undefined;
    r.error = lastError ?? `not ordered: ${decision.held.why}`;
  }
  return r;
}

// One warning per certificate and rule for the life of the process: RENEW_BEFORE_DAYS does not change
// while it runs, and a line per certificate per pass would drown the log (issue 16 item 3).
const clampWarned = new Set<string>();

/** One line per decision; the warnings a person must see once: a clamped RENEW_BEFORE_DAYS, STAGING overruled. */
export function logDecisions(log: Logger, decided: Decided[]): void {
  let kept = 0;
  // Below LOG_LEVEL=info the line's fields and text are not even made (10,000 of each a pass, issue 22).
  const info = log.isLevelEnabled('info');
  for (const o of decided) {
    const d = o.decision;
    if (info) log.info({ cert: o.wanted.name, names: o.wanted.names, action: d.action, reason: d.reason }, `${o.wanted.name}: ${d.action} — ${d.message}`);
    if (d.renewClamped && !clampWarned.has(`${o.wanted.name}\n${d.renewClamped}`)) {
      clampWarned.add(`${o.wanted.name}\n${d.renewClamped}`);
      log.warn({ cert: o.wanted.name, reason: 'RenewBeforeClamped' }, `${o.wanted.name}: ${d.renewClamped}`);
    }
    if (d.keptKind && d.order) kept++;
  }
  if (kept > 0) {
    log.warn(
      { reason: 'KeptProduction', certificates: kept },
      `STAGING=true, but ${kept} certificate${kept === 1 ? '' : 's'} with a production certificate in service ${kept === 1 ? 'is' : 'are'} ordered from the production directory: STAGING would downgrade them (set STAGING=false to silence this)`,
    );
  }
}

export function emit(deps: PassDeps, o: Decided, type: EventType, r: CertResult, extra: Partial<CertEvent> = {}): void {
  if (!deps.events) return;
  const e: CertEvent = { type, name: o.wanted.name, names: o.wanted.names, at: new Date().toISOString(), reason: o.decision.reason };
  if (r.kind) e.kind = r.kind;
  if (r.issuer) e.issuer = r.issuer;
  if (r.notAfter) e.notAfter = r.notAfter;
  if (r.error) e.error = r.error;
  if (r.nextAttempt) e.nextAttempt = r.nextAttempt;
  if (r.pendingReloads?.length) e.pendingReloads = r.pendingReloads;
  deps.events.emit({ ...e, ...extra });
}

/** Every certificate failed with one error of the pass (the orchestrator's copies could not be read). */
export function unavailableResults(wanted: { name: string; names: string[]; sources: string[] }[], error: string): CertResult[] {
  return wanted.map((w) => ({
    name: w.name,
    names: w.names,
    sources: w.sources,
    decision: { action: 'none' as const, reason: 'OrchestratorUnavailable' as const, message: error },
    outcome: 'failed' as const,
    orders: 0,
    pushed: false,
    placeholder: false,
    error,
  }));
}

export function finish(log: Logger | undefined, started: Date, results: CertResult[], refused: RefusedCert[], errors: string[]): PassReport {
  // A tenant's refused label is shown (status page, event to its service), but it is not the operator's to
  // fix: it must not keep `--once` and `reconcile --wait` failing. A refusal in DOMAINS or the API is.
  const ok = !refused.some((r) => originOf(r.source) !== 'label') && errors.length === 0 && !results.some(needsAttention);
  const report: PassReport = { startedAt: started.toISOString(), finishedAt: new Date().toISOString(), results, refused, errors, ok };
  log?.info(
    { pass: { certificates: results.length, orders: results.reduce((n, r) => n + r.orders, 0), failed: results.filter((r) => r.outcome === 'failed').length, refused: refused.length } },
    `pass finished: ${results.length} certificates, ${ok ? 'all fine' : 'some need attention'}`,
  );
  return report;
}

/**
 * The rate-limit budgets of every directory certwrangler may order from: used, the share new certificates
 * from labels or the API may use, what is held back for renewals, and when each refills.
 */
export async function budgetsOf(deps: PassDeps): Promise<DirectoryBudgets[]> {
  if (!deps.ledger) return [];
  const { cas, stagingDirectoryUrl } = deps.config;
  const out: DirectoryBudgets[] = [];
  // Every listed production CA (ACME_DIRECTORY_URLS) has its own ledger.
  for (const directory of [...new Set([...cas.map((c) => c.directoryUrl), stagingDirectoryUrl])]) {
    try {
      const rows = await deps.ledger(directory).budgets();
      if (rows.length > 0) out.push({ directory, rows });
    } catch (e) {
      out.push({ directory, rows: [], error: (e as Error).message });
    }
  }
  return out;
}

/** One budget row as a person reads it, in `plan` and on the status page. */
export function describeBudget(r: DirectoryBudgets['rows'][number]): string {
  const what = LIMIT_WORDS[r.limit];
  const scope = r.scope === 'account' ? '' : ` for ${r.scope}`;
  const refill = r.refillsAt ? `; the oldest leaves the window at ${r.refillsAt}` : '';
  return `${what}${scope}: ${r.used} of ${r.max} used, new certificates from labels or the API may use ${r.newMax}, ${r.heldBack} held back for renewals${refill}`;
}

const LIMIT_WORDS: Record<DirectoryBudgets['rows'][number]['limit'], string> = {
  newOrdersPerAccount: 'new orders per account (3 h)',
  certificatesPerRegisteredDomain: 'certificates per registered domain (7 days)',
  duplicateCertificates: 'certificates for one set of names (7 days)',
  failedAuthorizationsPerName: 'failed validations per name (1 h)',
};

/**
 * The earliest moment after `now` that something waits for: a pending balancer reload (retried with a
 * backoff of minutes, which the twice-daily schedule would turn into hours) or a certificate's next attempt.
 */
export async function nextWake(deps: PassDeps, results: CertResult[], now: Date): Promise<string | undefined> {
  const times = results.map((r) => (r.nextAttempt ? Date.parse(r.nextAttempt) : NaN));
  // DESIGN §10: the manager wakes at the earliest renewal moment, so a window of a few hours (ARI, or a
  // 6-day certificate's) is met, and when the CA's renewal information may be asked again (its Retry-After).
  for (const r of results) {
    if (r.renewAt && !r.issued && Date.parse(r.renewAt) > now.getTime()) times.push(Date.parse(r.renewAt));
    if (r.ariNextFetch && Date.parse(r.ariNextFetch) > now.getTime()) times.push(Date.parse(r.ariNextFetch));
  }
  try {
    const reload = await deps.orchestrator.nextReloadAt?.();
    if (reload) times.push(reload.getTime());
  } catch (e) {
    deps.log.warn({ error: (e as Error).message }, `cannot read the pending balancer reloads: ${(e as Error).message}`);
  }
  // A time already past (a reload whose retry failed this pass) is retried a minute on, not forgotten: it
  // would otherwise hide every later one until the schedule.
  const due = times.filter((t) => Number.isFinite(t)).map((t) => Math.max(t, now.getTime() + PAST_DUE_RETRY_MS));
  return due.length > 0 ? new Date(Math.min(...due)).toISOString() : undefined;
}

const PAST_DUE_RETRY_MS = 60_000;
