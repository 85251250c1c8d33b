/**
 * What the status page, the JSON API and the readiness check show: the latest view of every wanted
 * certificate, kept across passes (a quiet pass does not erase what the last real action was).
 */
import type { CertEvent } from '../events/events.js';
import type { CertResult, DirectoryBudgets, Outcome, PassReport } from '../reconciler.js';
import type { RefusedCert } from '../domains.js';
import { FOREIGN_WARN_DAYS } from '../policy.js';

export type Health = 'ok' | 'expired' | 'expiring' | 'failing' | 'pending';

/** What a pass learns about the certificate in place; a pass that could not look keeps the last values. */
const LEARNED = ['kind', 'issuer', 'notBefore', 'notAfter', 'renewAt', 'renewRule', 'profile', 'renewalWindow', 'ca', 'caWhy', 'served'] as const;

/** What the book keeps per certificate. Health is not kept: it changes with the clock, so it is derived when shown. */
type KeptRow = Pick<CertResult, 'name' | 'names' | 'sources' | (typeof LEARNED)[number]> & {
  /** What the last pass decided and why. */
  decision: { action: string; reason: string; message: string };
  /** The last pass that did something for this certificate. */
  lastAction?: { action: string; outcome: Outcome; at: string };
  lastError?: string;
  nextAttempt?: string;
  /** The orchestrator's copy is not certwrangler's: watched for expiry, never written. */
  foreign?: boolean;
  /** Another manager's copy serves it. */
  servedElsewhere?: boolean;
  /** Pushed, but these balancers' reloads are still pending. */
  pendingReloads?: string[];
};

export type CertRow = KeptRow & { health: Health };

export interface PassSummary {
  startedAt: string;
  finishedAt: string;
  ok: boolean;
  orders: number;
  errors: string[];
  refused: RefusedCert[];
  /** Each rate limit in use: used, the share of new certificates, held back for renewals, refill time. */
  budgets: DirectoryBudgets[];
}

export interface StatusSnapshot {
  version: string;
  now: string;
  ready: boolean;
  passes: number;
  lastPass?: PassSummary;
  lastSuccessfulPassAt?: string;
  nextPassAt?: string;
  /** One line per certificate that needs a person's eye, worst first. */
  alerts: string[];
  certificates: CertRow[];
  events: CertEvent[];
}

const MAX_EVENTS = 50;

/** Expired; in its last tenth of life (a foreign one: within FOREIGN_WARN_DAYS); its last attempt failed; or nothing in place yet. */
export function healthOf(row: KeptRow, now: Date): Health {
  if (row.notAfter && now >= new Date(row.notAfter)) return 'expired';
  if (row.foreign) return row.notAfter && new Date(row.notAfter).getTime() - now.getTime() <= FOREIGN_WARN_DAYS * 86_400_000 ? 'expiring' : 'ok';
  if (row.lastError) return 'failing';
  // Unwanted: served, never renewed on purpose; its end is no alert (an expired one still is, above).
  if (row.decision.reason === 'Unwanted') return 'ok';
  if (row.notAfter && row.notBefore) {
    const end = new Date(row.notAfter).getTime();
    const life = end - new Date(row.notBefore).getTime();
    if (end - now.getTime() < life / 10) return 'expiring';
  }
  if (!row.notAfter || row.kind === 'self-signed') return 'pending';
  return 'ok';
}

/** Errors often start with the certificate's own name; the alert already says it. */
const bare = (row: KeptRow, error: string | undefined) => (error?.startsWith(`${row.name}: `) ? error.slice(row.name.length + 2) : error);

/** "in 12 days"; under two days, in hours, so a 6-day certificate's last tenth (14 hours) does not read "0 days". */
function inTime(leftMs: number): string {
  return leftMs < 2 * 86_400_000 ? `${Math.floor(leftMs / 3_600_000)} hours` : `${Math.floor(leftMs / 86_400_000)} days`;
}

function alertFor(row: CertRow, now: Date): string | undefined {
  const left = inTime(row.notAfter ? new Date(row.notAfter).getTime() - now.getTime() : 0);
  if (row.foreign && (row.health === 'expired' || row.health === 'expiring')) {
    const when = row.health === 'expired' ? `expired on ${row.notAfter}` : `expires in ${left} (${row.notAfter})`;
    return `${row.name}: the orchestrator's certificate, which certwrangler does not manage, ${when}: renew it yourself, or list it in ADOPT_EXISTING`;
  }
  const w = row.renewalWindow;
  if (w?.early && row.health !== 'expired') return `${row.name}: the CA asks for early renewal (its renewal window opened ${w.start}, before a third of the lifetime; most likely it will be revoked)${w.explanationURL ? `: ${w.explanationURL}` : ''}`;
  switch (row.health) {
    case 'expired':
      return `${row.name} expired on ${row.notAfter}${row.lastError ? `; last error: ${bare(row, row.lastError)}` : ''}`;
    case 'expiring':
      return `${row.name} expires in ${left} (${row.notAfter}), in the last tenth of its life${row.lastError ? `; last error: ${bare(row, row.lastError)}` : ''}`;
    case 'failing':
      return `${row.name} is failing: ${bare(row, row.lastError)}${row.nextAttempt ? `; next attempt ${row.nextAttempt}` : ''}`;
    default:
      return undefined;
  }
}

const SEVERITY: Record<Health, number> = { expired: 0, expiring: 1, failing: 2, pending: 3, ok: 4 };

export class StatusBook {
  private rows = new Map<string, KeptRow>();
  private passes = 0;
  private lastPass: PassSummary | undefined;
  private lastSuccessfulPassAt: string | undefined;
  private readonly events: CertEvent[] = [];

  /** When the schedule runs the next pass; set once the scheduler exists. */
  nextPassAt: () => Date | undefined = () => undefined;

  constructor(private readonly version: string) {}

  record(report: PassReport): void {
    this.passes++;
    const next = new Map<string, KeptRow>();
    for (const r of report.results) next.set(r.name, this.merge(this.rows.get(r.name), r, report.finishedAt));
    this.rows = next;
    this.lastPass = {
      startedAt: report.startedAt,
      finishedAt: report.finishedAt,
      ok: report.ok,
      orders: report.results.reduce((n, r) => n + r.orders, 0),
      errors: report.errors,
      refused: report.refused,
      budgets: report.budgets ?? [],
    };
    if (report.ok) this.lastSuccessfulPassAt = report.finishedAt;
  }

  onEvent(e: CertEvent): void {
    this.events.unshift(e);
    this.events.length = Math.min(this.events.length, MAX_EVENTS);
  }

  get ready(): boolean {
    return this.passes > 0;
  }

  /** The health of `name` now, without copying its row (the metrics ask it of every certificate after a pass). */
  health(name: string, now: Date = new Date()): Health | undefined {
    const r = this.rows.get(name);
    return r && healthOf(r, now);
  }

  row(name: string, now: Date = new Date()): CertRow | undefined {
    const r = this.rows.get(name);
    return r && { ...r, health: healthOf(r, now) };
  }

  private merge(prev: KeptRow | undefined, r: CertResult, at: string): KeptRow {
    const row: KeptRow = {
      name: r.name,
      names: r.names,
      sources: r.sources,
      decision: { action: r.decision.action, reason: r.decision.reason, message: r.decision.message },
    };
    if (r.foreign) row.foreign = true;
    if (r.servedElsewhere) row.servedElsewhere = true;
    if (r.pendingReloads?.length) row.pendingReloads = r.pendingReloads;
    // A foreign copy has no kind of ours; a kind learned before it turned foreign must not linger.
    for (const k of LEARNED) {
      if (r.foreign && k === 'kind') continue;
      const value = r[k] ?? prev?.[k];
      if (value !== undefined) (row as Record<string, unknown>)[k] = value;
    }
    const acted = r.decision.action !== 'none' && r.decision.action !== 'wait';
    // Name what was done rather than what was decided: a "placeholder" decision usually ends with an issued certificate.
    const failedAt = r.decision.action === 'placeholder' ? 'issue' : r.decision.action;
    const done = r.issued ? 'issued' : r.outcome === 'failed' ? failedAt : r.pushed ? 'pushed' : r.placeholder ? 'placeholder' : r.decision.action;
    if (acted || r.outcome === 'failed') row.lastAction = { action: done, outcome: r.outcome, at };
    else if (prev?.lastAction) row.lastAction = prev.lastAction;
    if (r.outcome === 'failed' || r.outcome === 'waiting') {
      if (r.error) row.lastError = r.error;
      if (r.nextAttempt) row.nextAttempt = r.nextAttempt;
    }
    return row;
  }

  snapshot(now: Date = new Date()): StatusSnapshot {
    const certificates = [...this.rows.values()]
      .map((r) => ({ ...r, health: healthOf(r, now) }))
      .sort((a, b) => SEVERITY[a.health] - SEVERITY[b.health] || a.name.localeCompare(b.name));
    const alerts = certificates.map((r) => alertFor(r, now)).filter((a): a is string => a !== undefined);
    if (this.lastPass) {
      for (const e of this.lastPass.errors) alerts.push(e);
      for (const r of this.lastPass.refused) alerts.push(`refused ${r.spec} (${r.source}): ${r.error}`);
    }
    const next = this.nextPassAt();
    return {
      version: this.version,
      now: now.toISOString(),
      ready: this.ready,
      passes: this.passes,
      ...(this.lastPass ? { lastPass: this.lastPass } : {}),
      ...(this.lastSuccessfulPassAt ? { lastSuccessfulPassAt: this.lastSuccessfulPassAt } : {}),
      ...(next ? { nextPassAt: next.toISOString() } : {}),
      alerts,
      certificates,
      events: [...this.events],
    };
  }
}
