/**
 * Prometheus metrics at /metrics. Names follow cert-manager's where one exists, with our prefix in
 * place of `certmanager_`, so its alerts and dashboards carry over by renaming.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PassReport } from '../reconciler.js';
import type { Reason } from '../policy.js';
import type { RequestObservation } from '../acme/transport.js';

const P = 'certwrangler_';
const CONDITIONS = ['True', 'False', 'Unknown'] as const;

/** One certificate's values in the per-certificate series; undefined: the series is absent for it. */
interface CertSeries {
  expiration: { kind: string; value: number } | undefined;
  renewal: number | undefined;
  served: number | undefined;
  early: number | undefined;
  ready: boolean;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly expiration: Gauge;
  private readonly renewal: Gauge;
  private readonly ready: Gauge;
  private readonly orders: Counter;
  private readonly acmeCount: Counter;
  private readonly acmeDuration: Histogram;
  private readonly orchCount: Counter;
  private readonly orchDuration: Histogram;
  private readonly passDuration: Histogram;
  private readonly lastPass: Gauge;
  private readonly lastSuccess: Gauge;
  private readonly certificates: Gauge;
  private readonly decisions: Gauge;
  private readonly served: Gauge;
  private readonly earlyRenewal: Gauge;
  private readonly earlyRenewals: Counter;
  /** What each certificate's series were set to by the last pass. */
  private series = new Map<string, CertSeries>();

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: P });
    this.expiration = new Gauge({ name: `${P}certificate_expiration_timestamp_seconds`, help: 'The date after which the certificate in place expires, in seconds since the epoch.', labelNames: ['name', 'kind'], registers });
    this.renewal = new Gauge({ name: `${P}certificate_renewal_timestamp_seconds`, help: 'The date after which the certificate will be renewed, in seconds since the epoch.', labelNames: ['name'], registers });
    this.ready = new Gauge({ name: `${P}certificate_ready_status`, help: 'The ready status of the certificate: a valid certificate of the wanted kind is in place and its last attempt did not fail.', labelNames: ['name', 'condition'], registers });
    this.certificates = new Gauge({ name: `${P}certificates`, help: 'Wanted certificates by health.', labelNames: ['health'], registers });
    this.decisions = new Gauge({ name: `${P}certificate_decisions`, help: 'Certificates by the last pass\'s decision: action and machine reason (src/policy.ts Reason).', labelNames: ['action', 'reason'], registers });
    this.served = new Gauge({ name: `${P}certificate_served`, help: 'VERIFY: 1 when every balancer serves the certificate in place (TLS handshake with SNI), 0 when one does not; absent when not checked.', labelNames: ['name'], registers });
    this.earlyRenewal = new Gauge({ name: `${P}certificate_early_renewal_window_start_timestamp_seconds`, help: "The CA asks for this certificate to be replaced early (its ARI window opens before a third of the lifetime): when that window opens, in seconds since the epoch. Most likely the CA will revoke it.", labelNames: ['name'], registers });
    this.earlyRenewals = new Counter({ name: `${P}ca_requested_early_renewals_total`, help: 'Orders made because the CA asked for early renewal (reason CARequestedEarlyRenewal).', registers });
    this.orders = new Counter({ name: `${P}orders_total`, help: 'ACME orders created, by result.', labelNames: ['result'], registers });
    this.acmeCount = new Counter({ name: `${P}http_acme_client_request_count`, help: 'ACME requests, by host, path, method and status.', labelNames: ['host', 'path', 'method', 'status'], registers });
    this.acmeDuration = new Histogram({ name: `${P}http_acme_client_request_duration_seconds`, help: 'Duration of ACME requests.', labelNames: ['host', 'path', 'method', 'status'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
    this.orchCount = new Counter({ name: `${P}orchestrator_request_count`, help: 'Orchestrator API requests, by orchestrator, resource, method and status.', labelNames: ['orchestrator', 'path', 'method', 'status'], registers });
    this.orchDuration = new Histogram({ name: `${P}orchestrator_request_duration_seconds`, help: 'Duration of orchestrator API requests.', labelNames: ['orchestrator', 'path', 'method', 'status'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
    this.passDuration = new Histogram({ name: `${P}pass_duration_seconds`, help: 'Duration of a full pass.', buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600], registers });
    this.lastPass = new Gauge({ name: `${P}last_pass_timestamp_seconds`, help: 'When the last pass finished.', registers });
    this.lastSuccess = new Gauge({ name: `${P}last_successful_pass_timestamp_seconds`, help: 'When the last pass that left every certificate fine finished.', registers });
    // These metrics exist once the manager holds the store's lock: the leader. A standby answers with its own
    // (src/status/standby.ts), the same gauge the other way round.
    const role = new Gauge({ name: `${P}manager_role`, help: "1 for this manager's role: leader (holds the store's lease and runs passes) or standby.", labelNames: ['role'], registers });
    role.set({ role: 'leader' }, 1);
    role.set({ role: 'standby' }, 0);
  }

  acmeRequest(o: RequestObservation): void {
    const labels = { host: hostOf(o.url), path: pathShape(o.url), method: o.method, status: o.status };
    this.acmeCount.inc(labels);
    this.acmeDuration.observe(labels, o.seconds);
  }

  orchestratorRequest(orchestrator: string, o: RequestObservation): void {
    const labels = { orchestrator, path: pathShape(o.url), method: o.method, status: o.status };
    this.orchCount.inc(labels);
    this.orchDuration.observe(labels, o.seconds);
  }

  /**
   * After each pass; `health` comes from the status book so both say the same. A certificate's series are set only
   * when their value changed since the last pass, and removed when it is no longer wanted or the value is gone:
   * resetting and setting them all cost 40 µs a certificate (issue 22: 0.4 s a pass at 10,000).
   */
  recordPass(report: PassReport, health: (name: string) => string | undefined): void {
    const seconds = (Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 1000;
    this.passDuration.observe(seconds);
    const finished = Date.parse(report.finishedAt) / 1000;
    this.lastPass.set(finished);
    if (report.ok) this.lastSuccess.set(finished);
    const byHealth = new Map<string, number>();
    const byDecision = new Map<string, { action: string; reason: string; n: number }>();
    const next = new Map<string, CertSeries>();
    for (const r of report.results) {
      if (r.orders > 0) this.orders.inc({ result: r.issued ? 'issued' : 'failed' }, r.orders);
      if (r.decision.reason === 'CARequestedEarlyRenewal' && r.orders > 0) this.earlyRenewals.inc(r.orders);
      const d = `${r.decision.action}\n${r.decision.reason satisfies Reason}`;
      const seen = byDecision.get(d);
      if (seen) seen.n++;
      else byDecision.set(d, { action: r.decision.action, reason: r.decision.reason, n: 1 });
      const h = health(r.name) ?? 'pending';
      byHealth.set(h, (byHealth.get(h) ?? 0) + 1);
      const series: CertSeries = {
        // A foreign copy (not certwrangler's) is watched too: kind "foreign", so an alert can tell it apart.
        expiration: r.notAfter ? { kind: r.foreign ? 'foreign' : (r.kind ?? 'unknown'), value: Date.parse(r.notAfter) / 1000 } : undefined,
        renewal: r.renewAt ? Date.parse(r.renewAt) / 1000 : undefined,
        served: r.served !== undefined ? (r.served ? 1 : 0) : undefined,
        early: r.renewalWindow?.early ? Date.parse(r.renewalWindow.start) / 1000 : undefined,
        ready: h === 'ok' || h === 'expiring',
      };
      this.update(r.name, this.series.get(r.name), series);
      next.set(r.name, series);
    }
    // Certificates no longer wanted disappear from the series instead of lingering with old values.
    for (const [name, old] of this.series) if (!next.has(name)) this.update(name, old, undefined);
    this.series = next;
    this.certificates.reset();
    for (const [h, n] of byHealth) this.certificates.set({ health: h }, n);
    this.decisions.reset();
    for (const { action, reason, n } of byDecision.values()) this.decisions.set({ action, reason }, n);
  }

  /** Sets what changed of one certificate's series, and removes what it no longer has (`now` undefined: all). */
  private update(name: string, was: CertSeries | undefined, now: CertSeries | undefined): void {
    const e0 = was?.expiration;
    const e1 = now?.expiration;
    if (e0 && e0.kind !== e1?.kind) this.expiration.remove({ name, kind: e0.kind });
    if (e1 && (e0?.kind !== e1.kind || e0.value !== e1.value)) this.expiration.set({ name, kind: e1.kind }, e1.value);
    for (const [gauge, key] of [
      [this.renewal, 'renewal'],
      [this.served, 'served'],
      [this.earlyRenewal, 'early'],
    ] as const) {
      const v0 = was?.[key];
      const v1 = now?.[key];
      if (v1 === undefined) {
        if (v0 !== undefined) gauge.remove({ name });
      } else if (v1 !== v0) gauge.set({ name }, v1);
    }
    if (!now) {
      for (const condition of CONDITIONS) this.ready.remove({ name, condition });
    } else if (now.ready !== was?.ready) {
      for (const condition of CONDITIONS) this.ready.set({ name, condition }, condition === (now.ready ? 'True' : 'False') ? 1 : 0);
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'unknown';
  }
}

const NAMED = /^(?:[a-z]+(?:-[a-z]+)*(?:-v\d+)?|v\d+(?:-[a-z]+)?)$/i;

/**
 * A URL's path with identifiers replaced by `:id`, so that label values stay few:
 * `/acme/authz-v3/12345` → `/acme/authz-v3/:id`, `/v2-beta/projects/1a5/certificates/1c3?action=update`
 * → `/v2-beta/projects/:id/certificates/:id?action=update`.
 */
export function pathShape(url: string): string {
  let u: URL;
  try {
    u = new URL(url, 'http://x');
  } catch {
    return 'unknown';
  }
  const path = u.pathname
    .split('/')
    .map((seg) => (seg === '' || (NAMED.test(seg) && seg.length <= 24) ? seg : ':id'))
    .join('/');
  const action = u.searchParams.get('action');
  return action && NAMED.test(action) ? `${path}?action=${action}` : path;
}
