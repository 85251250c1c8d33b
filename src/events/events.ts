/** What happened to a certificate, as hooks, webhooks and the status page are told. */
import type { Kind } from '../certs/kind.js';
import type { Reason } from '../policy.js';

/** `early-renewal`: the CA's renewal window (ARI) asks for the certificate to be replaced early (likely revocation). */
export type EventType = 'issued' | 'renewed' | 'pushed' | 'placeholder' | 'failed' | 'refused' | 'removed' | 'dns' | 'not-served' | 'early-renewal';

export interface CertEvent {
  type: EventType;
  name: string;
  names: string[];
  at: string;
  /** The decision's reason (NoLocalCopy, Renew, UpgradeKind, RemoteExpired, …). */
  reason: Reason;
  kind?: Kind;
  issuer?: string;
  notAfter?: string;
  /** Where the certificate went (a folder, or the orchestrator's resource). */
  target?: string;
  error?: string;
  nextAttempt?: string;
  /** `refused`: the service whose label asked, "web (1s12)". */
  service?: string;
  /** Balancers whose reload is still pending after the push. */
  pendingReloads?: string[];
  /** `dns`: an address record of a managed name changed (DNS_UPKEEP); `name` is the DNS name. */
  dns?: { type: 'A' | 'AAAA'; from: string[]; to: string[] };
  /** `early-renewal`: the page where the CA explains why (RFC 9773 §4.2 explanationURL). */
  explanationURL?: string;
}

/** One line a person reads, for logs, Slack and hook output. */
export function describeEvent(e: CertEvent): string {
  const names = e.names.join(', ');
  switch (e.type) {
    case 'issued':
      return `${e.name}: ${e.kind ?? ''} certificate issued for ${names}, expires ${e.notAfter ?? '?'}`.replace(/ {2,}/g, ' ');
    case 'renewed':
      return `${e.name}: ${e.kind ?? ''} certificate renewed (${e.reason}), expires ${e.notAfter ?? '?'}`.replace(/ {2,}/g, ' ');
    case 'pushed':
      return `${e.name}: local certificate pushed to ${e.target ?? 'the orchestrator'} (${e.reason})${e.pendingReloads?.length ? `; balancer reload pending: ${e.pendingReloads.join(', ')}` : ''}`;
    case 'placeholder':
      return `${e.name}: self-signed placeholder in place for ${names} until the real certificate arrives`;
    case 'removed':
      return `${e.name}: no source asks for it any more; removed: ${e.target ?? 'from the orchestrator'}`;
    case 'refused':
      return `${e.name}: refused${e.service ? ` for service ${e.service}` : ''}: ${e.error ?? 'unknown reason'}`;
    case 'dns':
      return `${e.name}: DNS ${e.dns?.type ?? 'address'} record set to ${e.dns?.to.join(', ') ?? '?'} (was ${e.dns?.from.length ? e.dns.from.join(', ') : 'none'})`;
    case 'not-served':
      return `${e.name}: not served by the balancer: ${e.error ?? 'unknown'}`;
    case 'early-renewal':
      return `${e.name}: the CA asks for early renewal (its ARI window moved forward; most likely it will revoke the certificate)${e.explanationURL ? `: ${e.explanationURL}` : ''}; renewing now`;
    case 'failed':
      return `${e.name}: failed (${e.reason}): ${e.error ?? 'unknown error'}${e.nextAttempt ? `; next attempt ${e.nextAttempt}` : ''}`;
  }
}

export interface EventSink {
  emit(e: CertEvent): void;
}
