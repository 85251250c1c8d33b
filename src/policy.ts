/**
 * The decision tree (DESIGN §3): a pure function from what was observed to one action and its reason.
 * Written as cert-manager writes its trigger policies: an ordered chain of small named checks, each of
 * which passes (undefined) or returns a decision; the first that fires wins. No I/O here, and `now` is an
 * input, so tests move time instead of waiting for it.
 */
import { RANK, type Kind } from './certs/kind.js';
import type { CertInfo } from './certs/parse.js';

export type Copy =
  | { state: 'absent' }
  | { state: 'unreadable'; error: string; owned: boolean }
  | {
      state: 'present';
      info: CertInfo;
      /** undefined: issued by a CA none of our directories has been seen issuing from. */
      kind: Kind | undefined;
      /** Local copy: the private key matches. Orchestrator copies whose key cannot be read: true. */
      keyMatches: boolean;
      /** Pushed by certwrangler (always true for the local store). */
      owned: boolean;
    };

export interface RenewalPolicy {
  /** Renew this many days before expiry; undefined = when a third of the lifetime remains. */
  renewBeforeDays: number | undefined;
  adoptExisting: boolean;
  placeholders: boolean;
}

export interface PolicyInput {
  wanted: { name: string; names: string[]; kind: Kind };
  local: Copy;
  remote: Copy;
  now: Date;
  policy: RenewalPolicy;
  /** Set after a failed order: no new order before this time (DESIGN §6). */
  backoffUntil?: Date;
}

/** `wait`: an order is due but the certificate is backing off after a failed one. */
export type Action = 'none' | 'push' | 'issue' | 'placeholder' | 'wait';

export interface Decision {
  action: Action;
  /** Short machine reason, stable for logs, metrics and tests. */
  reason: string;
  /** What a person reads. */
  message: string;
  /** When the local copy falls due for renewal, when there is one. */
  renewAt?: Date;
}

type Check = (input: PolicyInput) => Decision | undefined;

const DAY = 86_400_000;

// Let's Encrypt and cert-manager both renew when a third of the lifetime is left (60 of 90 days).
const RENEW_AT_FRACTION_ELAPSED = 2 / 3;

export function renewalTime(info: CertInfo, renewBeforeDays: number | undefined): Date {
  if (renewBeforeDays !== undefined) return new Date(info.notAfter.getTime() - renewBeforeDays * DAY);
  const life = info.notAfter.getTime() - info.notBefore.getTime();
  return new Date(info.notBefore.getTime() + life * RENEW_AT_FRACTION_ELAPSED);
}

const day = (d: Date) => d.toISOString().slice(0, 10);
const decide = (action: Action, reason: string, message: string): Decision => ({ action, reason, message });

/** Why the local copy cannot be used as it is, or undefined when it can. */
function localProblem(input: PolicyInput): Decision | undefined {
  const { local, wanted, now, policy } = input;
  if (local.state === 'absent') return decide('issue', 'NoLocalCopy', 'no local copy');
  if (local.state === 'unreadable') return decide('issue', 'LocalUnreadable', `local copy unreadable: ${local.error}`);
  if (!local.keyMatches) return decide('issue', 'LocalKeyMismatch', 'local key does not match its certificate');
  const missing = wanted.names.filter((n) => !local.info.names.includes(n));
  if (missing.length > 0) return decide('issue', 'NamesChanged', `names changed: ${missing.join(', ')} not covered`);
  const kind = local.kind ?? 'self-signed';
  if (RANK[kind] < RANK[wanted.kind]) {
    return kind === 'self-signed'
      ? decide('issue', 'ReplacePlaceholder', `replace self-signed placeholder with a ${wanted.kind} certificate`)
      : decide('issue', 'UpgradeKind', `upgrade ${kind} → ${wanted.kind}`);
  }
  if (now >= local.info.notAfter) return decide('issue', 'Expired', `expired ${day(local.info.notAfter)}`);
  const renewAt = renewalTime(local.info, policy.renewBeforeDays);
  if (now >= renewAt) {
    const left = Math.ceil((local.info.notAfter.getTime() - now.getTime()) / DAY);
    const at = Math.round((local.info.notAfter.getTime() - renewAt.getTime()) / DAY);
    return decide('issue', 'Renew', `expires in ${left} days (renew at ${at})`);
  }
  return undefined;
}

const remoteIsForeign: Check = ({ remote, policy }) => {
  if (remote.state === 'absent' || remote.owned || policy.adoptExisting) return undefined;
  return decide('none', 'Foreign', 'orchestrator holds a certificate certwrangler does not manage (set ADOPT_EXISTING=true to take it over)');
};

const nothingAnywhere: Check = (input) => {
  const { local, remote, policy } = input;
  if (!policy.placeholders || local.state !== 'absent' || remote.state !== 'absent') return undefined;
  return decide('placeholder', 'NoCertificate', 'no certificate anywhere: self-signed placeholder first so the balancer can start');
};

const localNotUsable: Check = (input) => localProblem(input);

const remoteDiffers: Check = ({ local, remote, now }) => {
  if (local.state !== 'present') return undefined;
  if (remote.state === 'absent') return decide('push', 'NotInOrchestrator', 'not in orchestrator');
  if (remote.state === 'unreadable') return decide('push', 'RemoteUnreadable', `orchestrator copy unreadable: ${remote.error}`);
  if (remote.info.fingerprint === local.info.fingerprint) return undefined;
  if (now >= remote.info.notAfter) return decide('push', 'RemoteExpired', 'orchestrator copy expired, local copy fresh');
  const rk = remote.kind;
  if (rk !== undefined && local.kind !== undefined && RANK[rk] < RANK[local.kind]) {
    return decide('push', 'RemoteLowerKind', `orchestrator holds ${rk}, local copy is ${local.kind}`);
  }
  return decide('push', 'RemoteDiffers', 'orchestrator copy differs from the local copy');
};

const upToDate: Check = ({ local, policy }) => {
  if (local.state !== 'present') return undefined;
  return decide('none', 'UpToDate', `up to date; renews ${day(renewalTime(local.info, policy.renewBeforeDays))}`);
};

/** DESIGN §3, rules 1–5, in order. Reading the names is reading the policy. */
export const CHAIN: ReadonlyArray<[string, Check]> = [
  ['remoteIsForeign', remoteIsForeign],
  ['nothingAnywhere', nothingAnywhere],
  ['localNotUsable', localNotUsable],
  ['remoteDiffers', remoteDiffers],
  ['upToDate', upToDate],
];

/** An order that is due waits out the backoff of a failed one, so a broken name cannot burn limits. */
function holdForBackoff(d: Decision, input: PolicyInput): Decision {
  if (d.action !== 'issue' || !input.backoffUntil || input.now >= input.backoffUntil) return d;
  return { ...d, action: 'wait', reason: 'BackingOff', message: `${d.message}; backing off after a failed order until ${input.backoffUntil.toISOString()}` };
}

export function decideAction(input: PolicyInput): Decision {
  for (const [, check] of CHAIN) {
    const found = check(input);
    if (found) {
      const d = holdForBackoff(found, input);
      if (input.local.state === 'present') d.renewAt = renewalTime(input.local.info, input.policy.renewBeforeDays);
      return d;
    }
  }
  // Unreachable: upToDate fires whenever the local copy is present, and localNotUsable whenever it is not.
  throw new Error(`policy: no rule matched for ${input.wanted.name}`);
}
