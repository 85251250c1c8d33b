/**
 * The decision tree (DESIGN §3, §10): a pure function from what was observed to one action and its reason.
 * Written as cert-manager writes its trigger policies: an ordered chain of small named checks, each of
 * which passes (undefined) or returns a decision; the first that fires wins. Reading the names in `CHAIN`
 * is reading the policy. No I/O here, and `now` is an input, so tests move time instead of waiting for it.
 * "May we order now" (backoff, the rate-limit ledger, the new-order budget) is an input too, so `plan`,
 * the status page and the manager explain "not ordered" from this one place.
 */
import { RANK, type Kind } from './certs/kind.js';
import type { CertInfo } from './certs/parse.js';
import { isEarlyWindow, type AriInput } from './acme/ari.js';

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
      /** The ACME profile it was ordered with (the local store's meta.json). */
      profile?: string;
    };

export interface RenewalPolicy {
  /** RENEW_BEFORE_DAYS; undefined = when a third of the lifetime remains. Clamped per certificate. */
  renewBeforeDays: number | undefined;
  /** ADOPT_EXISTING names this certificate. */
  adoptExisting: boolean;
  placeholders: boolean;
}

/** Which share of the rate limits an order may use (issue 15 item 3): new tenant certificates leave a reserve. */
export type OrderBudget = 'new' | 'reserved';

/** A limit of the ledger that would hold the order now, as the ledger's `peek` answers. */
export interface LedgerHold {
  /** The ledger's limit name; `newOrderBudget` is the share kept back for renewals. */
  limit: string;
  message: string;
  retryAt: Date;
}

/** May an order be made now. Only asked of the ledger for certificates whose decision is an order. */
export interface Gate {
  /** Set after a failed order: no new order before this time (DESIGN §6). */
  backoffUntil?: Date;
  /** The ledger's verdict for this certificate's order, when it would be held. */
  ledger?: LedgerHold;
}

/** A certificate in the local store that no source asks for any more (issue 17 item 5). */
export interface Unwanted {
  /** When a pass first found no source asking for it. */
  since: Date;
  /** DECOMMISSION=remove: when it may be removed (since + DECOMMISSION_AFTER); undefined: kept (DECOMMISSION=keep). */
  removeAt?: Date;
  /** Balancers that still reference the orchestrator's copy (asked only with DECOMMISSION=remove). */
  usedBy: string[];
}

export interface PolicyInput {
  /** `profile`: PROFILE or the service's `<HOSTS_LABEL>.profile` label (draft-ietf-acme-profiles). */
  wanted: { name: string; names: string[]; kind: Kind; origin: 'DOMAINS' | 'api' | 'label'; profile?: string };
  local: Copy;
  remote: Copy;
  now: Date;
  policy: RenewalPolicy;
  gate?: Gate;
  /** The local copy was revoked (`certwrangler revoke`): it is replaced. */
  revoked?: { reason: string; at: Date };
  /** No source asks for it any more: served as it is, never renewed, removed only under DECOMMISSION=remove. */
  unwanted?: Unwanted;
  /** The CA's renewal window for the local copy (ACME Renewal Information, RFC 9773), when it offers one. */
  ari?: AriInput;
  /** The order's CA lists profiles in its directory (false: it offers none, or it could not be read). */
  caOffersProfiles?: boolean;
}

/**
 * `wait`: an order is due but the gate holds it (backoff, a rate limit, the new-order budget).
 * `remove`: an unwanted certificate leaves the orchestrator (DECOMMISSION=remove).
 */
export type Action = 'none' | 'push' | 'issue' | 'placeholder' | 'wait' | 'remove';

/** Every machine reason a decision or a pass gives; stable for logs, events, metrics and tests. */
export type Reason =
  // no source asks for it any more (issue 17 item 5)
  | 'Unwanted'
  // the orchestrator's copy is not ours
  | 'ForeignExpiring'
  | 'Foreign'
  // nothing anywhere
  | 'NoCertificate'
  // another manager's copy serves
  | 'ServedElsewhere'
  | 'PushedElsewhere'
  // the local copy cannot be used
  | 'NoLocalCopy'
  | 'LocalUnreadable'
  | 'LocalKeyMismatch'
  | 'Revoked'
  | 'NamesChanged'
  | 'ReplacePlaceholder'
  | 'UpgradeKind'
  | 'Expired'
  | 'Renew'
  // the CA's renewal window (ARI) opened before a third of the lifetime: it wants the certificate gone early
  | 'CARequestedEarlyRenewal'
  // PROFILE or the profile label changed since the certificate was ordered
  | 'ProfileChanged'
  // the orchestrator's copy is not the local one
  | 'NotInOrchestrator'
  | 'RemoteUnreadable'
  | 'RemoteExpired'
  | 'RemoteLowerKind'
  | 'RemoteDiffers'
  | 'UpToDate'
  // the gate holds an order
  | 'BackingOff'
  | 'RateLimited'
  | 'NewOrderBudget'
  // PREFLIGHT: the challenge path of a name does not reach the webroot (src/preflight/)
  | 'RouteUnproven'
  // VERIFY: pushed, but a balancer does not serve it (events and logs only; src/verify/)
  | 'NotServed'
  // the pass could not look
  | 'OrchestratorUnavailable'
  // discovery refused the request (events only: a refused request is never decided on)
  | 'Refused'
  // DNS upkeep changed an address record of a managed name (events only)
  | 'DnsRecordChanged';

export interface OrderPlan {
  /** The kind to order: never lower than a certificate of ours in service, whatever STAGING says. */
  kind: Exclude<Kind, 'self-signed'>;
  budget: OrderBudget;
  /** The ACME profile to ask for (newOrder `profile`); none: the CA's default. */
  profile?: string;
  /**
   * An ARI renewal: it replaces a certificate of this kind inside the window its CA suggested. Let's Encrypt
   * exempts such renewals, sent with `replaces`, from every rate limit (https://letsencrypt.org/docs/rate-limits/).
   */
  ariRenewal?: boolean;
}

export interface Decision {
  action: Action;
  /** Short machine reason, stable for logs, metrics and tests. */
  reason: Reason;
  /** What a person reads. */
  message: string;
  /** When the certificate in place falls due for renewal, when there is one, and by which rule. */
  renewAt?: Date;
  renewRule?: string;
  /** The CA's renewal window for the certificate in place (ARI), as the decision used it. */
  renewalWindow?: { start: Date; end: Date; explanationURL?: string; early: boolean };
  /** RENEW_BEFORE_DAYS was outside this certificate's bounds: the warning to log (once per certificate). */
  renewClamped?: string;
  /** An order is (or would be, but for the gate) due: from which directory, under which budget. */
  order?: OrderPlan;
  /** The order kind is higher than STAGING asks: a certificate of that kind is in service. */
  keptKind?: Kind;
  /** The gate holds the order (backoff, a rate limit, the budget): why, and until when. */
  held?: { why: string; until: Date };
  /** A copy certwrangler does not manage is in the orchestrator (reported, never written). */
  foreign?: boolean;
  /** The decision describes the orchestrator's copy (foreign, or served from elsewhere), not a local one. */
  describesRemote?: boolean;
}

type Check = (input: PolicyInput) => Decision | undefined;

const DAY = 86_400_000;

// Let's Encrypt and cert-manager both renew when a third of the lifetime is left (60 of 90 days).
const RENEW_AT_FRACTION_ELAPSED = 2 / 3;
// DESIGN §10: never renew before a third of the lifetime has passed (else every new certificate is due at
// once and reordered every pass: the reissue loop of issue 16), ...
const RENEW_FLOOR_FRACTION = 1 / 3;
// ... and never later than the last tenth of it, where the status page already calls it "expiring".
const RENEW_CEILING_FRACTION = 1 / 10;
/** A foreign certificate this close to expiry (or expired) needs the operator (issue 16 item 6). */
export const FOREIGN_WARN_DAYS = 14;

export interface RenewalSchedule {
  at: Date;
  /** How the time was chosen, as the status page shows it. */
  rule: string;
  /** RENEW_BEFORE_DAYS was clamped: the one warning to log for it. */
  clamped?: string;
}

const lifetimeDays = (info: CertInfo) => Math.round(((info.notAfter.getTime() - info.notBefore.getTime()) / DAY) * 10) / 10;
const fmtDays = (ms: number) => `${Math.round((ms / DAY) * 10) / 10}`;

/**
 * When a certificate falls due (DESIGN §10), the first that applies: the CA's ARI window (the moment drawn
 * inside it, never later than the last tenth of the lifetime); else RENEW_BEFORE_DAYS clamped to
 * [notBefore + ⅓ life, notAfter − 1/10 life]; else when a third of the lifetime is left.
 */
export function renewalSchedule(info: CertInfo, renewBeforeDays: number | undefined, ari?: AriInput): RenewalSchedule {
  const nb = info.notBefore.getTime();
  const na = info.notAfter.getTime();
  const life = na - nb;
  if (ari) {
    const ceiling = na - life * RENEW_CEILING_FRACTION;
    const window = `the CA's renewal window ${ari.start.toISOString()} – ${ari.end.toISOString()} (ARI)`;
    if (ari.at.getTime() <= ceiling) return { at: ari.at, rule: `a random moment inside ${window}` };
    return { at: new Date(ceiling), rule: `${window}, but never later than the last tenth of its lifetime` };
  }
  if (renewBeforeDays === undefined) return { at: new Date(nb + life * RENEW_AT_FRACTION_ELAPSED), rule: 'when a third of its lifetime is left' };
  const wanted = na - renewBeforeDays * DAY;
  const floor = nb + life * RENEW_FLOOR_FRACTION;
  const ceiling = na - life * RENEW_CEILING_FRACTION;
  const asked = `RENEW_BEFORE_DAYS=${renewBeforeDays}`;
  if (wanted >= floor && wanted <= ceiling) return { at: new Date(wanted), rule: `${renewBeforeDays} days before expiry (RENEW_BEFORE_DAYS)` };
  const lifetime = lifetimeDays(info);
  const [at, why] = wanted < floor ? [floor, 'a third of its lifetime must pass first'] : [ceiling, 'never later than its last tenth'];
  const rule = `${fmtDays(na - at)} days before expiry: ${asked} clamped for a ${lifetime}-day certificate (${why})`;
  return { at: new Date(at), rule, clamped: `${asked} is outside what a ${lifetime}-day certificate allows; renewing ${fmtDays(na - at)} days before expiry instead (${why})` };
}

/** When a certificate falls due for renewal (see `renewalSchedule`). */
export function renewalTime(info: CertInfo, renewBeforeDays: number | undefined, ari?: AriInput): Date {
  return renewalSchedule(info, renewBeforeDays, ari).at;
}

const day = (d: Date) => d.toISOString().slice(0, 10);
const decide = (action: Action, reason: Reason, message: string, extra: Partial<Decision> = {}): Decision => ({ action, reason, message, ...extra });
const rank = (k: Kind | undefined) => (k === undefined ? -1 : RANK[k]);
const covers = (info: CertInfo, names: string[]) => names.every((n) => info.names.includes(n));

/**
 * The kind to order and to judge the local copy against: STAGING's, or higher when a certificate of ours
 * of a higher kind is in service (local, or in the orchestrator), valid or expired. A production certificate
 * is never replaced by a staging one because the compose file set STAGING back (issue 16 item 2).
 */
export function effectiveKind(input: PolicyInput): { kind: Exclude<Kind, 'self-signed'>; kept?: Kind } {
  const { wanted, local, remote, policy } = input;
  let kind = wanted.kind === 'self-signed' ? 'staging' : wanted.kind;
  for (const c of [local, remote]) {
    if (c.state !== 'present' || !(c.owned || policy.adoptExisting) || c.kind === undefined || c.kind === 'self-signed') continue;
    if (RANK[c.kind] > RANK[kind]) kind = c.kind;
  }
  return kind === wanted.kind ? { kind } : { kind, kept: kind };
}

// --- no source asks for it any more (issue 17 item 5) ---------------------------------------------------

const unwanted: Check = ({ unwanted: u, remote, now }) => {
  if (!u) return undefined;
  const why = `no source asks for it any more (since ${u.since.toISOString()}): served as it is, not renewed`;
  if (!u.removeAt) return decide('none', 'Unwanted', `${why} (DECOMMISSION=keep)`);
  // Never delete what certwrangler did not create.
  if (remote.state !== 'absent' && !remote.owned) return decide('none', 'Unwanted', `${why}; the orchestrator's copy was not created by certwrangler, so it is never removed`);
  if (now < u.removeAt) return decide('none', 'Unwanted', `${why}; removed after ${u.removeAt.toISOString()} (DECOMMISSION_AFTER)`);
  if (u.usedBy.length > 0) return decide('none', 'Unwanted', `${why}; kept while balancers still use it: ${u.usedBy.join(', ')}`);
  return decide('remove', 'Unwanted', `${why}; removed from the orchestrator (DECOMMISSION=remove)`);
};

// --- the orchestrator's copy is not ours -------------------------------------------------------------

const foreignCopy = ({ remote, policy }: PolicyInput) => remote.state === 'present' && !remote.owned && !policy.adoptExisting ? remote : undefined;

const foreignExpiring: Check = (input) => {
  const r = foreignCopy(input);
  if (!r) return undefined;
  const left = (r.info.notAfter.getTime() - input.now.getTime()) / DAY;
  if (left > FOREIGN_WARN_DAYS) return undefined;
  const when = left <= 0 ? `expired ${day(r.info.notAfter)}` : `expires in ${Math.ceil(left)} days (${day(r.info.notAfter)})`;
  return decide('none', 'ForeignExpiring', `orchestrator holds a certificate certwrangler does not manage, and it ${when}: renew it yourself, or list it in ADOPT_EXISTING`, { foreign: true, describesRemote: true });
};

const foreign: Check = (input) => {
  const { remote, policy, wanted } = input;
  if (remote.state === 'absent' || remote.owned || policy.adoptExisting) return undefined;
  // A label can never adopt (its key is gone for good once replaced): only the operator's sources can.
  const how = wanted.origin === 'label' ? 'a label never takes one over; the operator may, through DOMAINS and ADOPT_EXISTING' : `list ${wanted.name} in ADOPT_EXISTING to take it over`;
  return decide('none', 'Foreign', `orchestrator holds a certificate certwrangler does not manage (${how})`, { foreign: true, describesRemote: remote.state === 'present' });
};

// --- nothing anywhere -------------------------------------------------------------------------------

const nothingAnywhere: Check = ({ local, remote, policy }) => {
  if (!policy.placeholders || local.state !== 'absent' || remote.state !== 'absent') return undefined;
  return decide('placeholder', 'NoCertificate', 'no certificate anywhere: self-signed placeholder first so the balancer can start');
};

// --- another manager's copy serves (issue 16 item 4) -----------------------------------------------------

/** The orchestrator holds a copy certwrangler pushed that covers the names, is of a kind we would keep, and is not due. */
function servingRemote(input: PolicyInput) {
  const { remote, wanted, now, policy } = input;
  if (remote.state !== 'present' || !remote.owned || !covers(remote.info, wanted.names)) return undefined;
  // An issuer we have not seen (another manager's CA, never ours) is not lower; a self-signed one is.
  if (remote.info.selfSigned || remote.kind === 'self-signed') return undefined;
  if (remote.kind !== undefined && RANK[remote.kind] < RANK[effectiveKind(input).kind]) return undefined;
  if (now >= renewalTime(remote.info, policy.renewBeforeDays)) return undefined;
  return remote;
}

const servedElsewhere: Check = (input) => {
  // Only with no local copy at all: an unreadable or broken one is this store's own, to reissue.
  if (input.local.state !== 'absent') return undefined;
  const r = servingRemote(input);
  if (!r) return undefined;
  return decide('none', 'ServedElsewhere', `served from elsewhere: the orchestrator holds a copy certwrangler pushed (another manager's), valid until ${day(r.info.notAfter)}; no order while it is not due`, { describesRemote: true });
};

const pushedElsewhere: Check = (input) => {
  const { local } = input;
  if (local.state !== 'present' || !local.keyMatches) return undefined;
  const r = servingRemote(input);
  if (!r || r.info.fingerprint === local.info.fingerprint || r.info.notAfter <= local.info.notAfter) return undefined;
  if (r.kind !== undefined && rank(r.kind) < rank(local.kind)) return undefined;
  if (!covers(local.info, input.wanted.names) || !covers(r.info, local.info.names)) return undefined;
  return decide('none', 'PushedElsewhere', `a newer copy is in the orchestrator (pushed elsewhere), valid until ${day(r.info.notAfter)}; not overwritten`, { describesRemote: true });
};

// --- the local copy cannot be used (DESIGN §3 rule 3, one check per reason) ----------------------------

const noLocalCopy: Check = ({ local }) => (local.state === 'absent' ? decide('issue', 'NoLocalCopy', 'no local copy') : undefined);

const localUnreadable: Check = ({ local }) => (local.state === 'unreadable' ? decide('issue', 'LocalUnreadable', `local copy unreadable: ${local.error}`) : undefined);

const localKeyMismatch: Check = ({ local }) =>
  local.state === 'present' && !local.keyMatches ? decide('issue', 'LocalKeyMismatch', 'local key does not match its certificate') : undefined;

const revoked: Check = ({ local, revoked: r }) =>
  local.state === 'present' && r ? decide('issue', 'Revoked', `revoked (${r.reason}) at ${r.at.toISOString()}: replaced by a new certificate`) : undefined;

const namesChanged: Check = ({ local, wanted }) => {
  if (local.state !== 'present') return undefined;
  const missing = wanted.names.filter((n) => !local.info.names.includes(n));
  return missing.length > 0 ? decide('issue', 'NamesChanged', `names changed: ${missing.join(', ')} not covered`) : undefined;
};

const replacePlaceholder: Check = (input) => {
  const { local } = input;
  if (local.state !== 'present' || (local.kind ?? 'self-signed') !== 'self-signed') return undefined;
  return decide('issue', 'ReplacePlaceholder', `replace self-signed placeholder with a ${effectiveKind(input).kind} certificate`);
};

const upgradeKind: Check = (input) => {
  const { local } = input;
  if (local.state !== 'present' || local.kind === undefined) return undefined;
  const { kind } = effectiveKind(input);
  return RANK[local.kind] < RANK[kind] ? decide('issue', 'UpgradeKind', `upgrade ${local.kind} → ${kind}`) : undefined;
};

/**
 * PROFILE or the service's profile label names another profile than the certificate was ordered with: one
 * reissue, after which meta.json holds the new one. Nothing asked for and none recorded is no change; one
 * recorded and none asked for any more is, unless the CA offers no profiles at all (nothing could be changed).
 */
const profileChanged: Check = ({ local, wanted, caOffersProfiles }) => {
  if (local.state !== 'present' || local.kind === 'self-signed' || local.kind === undefined) return undefined;
  const had = local.profile;
  const want = wanted.profile;
  if (had === want || (want === undefined && !caOffersProfiles)) return undefined;
  return decide('issue', 'ProfileChanged', `profile changed: ordered as ${had ?? "the CA's default"}, now ${want ?? "the CA's default"} is asked for`);
};

const expired: Check = ({ local, now }) =>
  local.state === 'present' && now >= local.info.notAfter ? decide('issue', 'Expired', `expired ${day(local.info.notAfter)}`) : undefined;

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** RFC 9773: the CA's window opened before a third of the lifetime had passed, and its moment has come. */
const caRequestedEarlyRenewal: Check = ({ local, now, ari }) => {
  if (local.state !== 'present' || !ari || now < ari.at || !isEarlyWindow(ari, local.info.notBefore, local.info.notAfter)) return undefined;
  const why = ari.explanationURL ? `; the CA explains at ${ari.explanationURL}` : '';
  return decide('issue', 'CARequestedEarlyRenewal', `the CA asks for early renewal: its renewal window opened ${iso(ari.start)}, before a third of the certificate's lifetime had passed (most likely it will be revoked)${why}`);
};

const renewalDue: Check = ({ local, now, policy, ari }) => {
  if (local.state !== 'present') return undefined;
  const renewAt = renewalTime(local.info, policy.renewBeforeDays, ari);
  if (now < renewAt) return undefined;
  const left = Math.ceil((local.info.notAfter.getTime() - now.getTime()) / DAY);
  if (ari) {
    const late = now > ari.end ? `; the window closed ${iso(ari.end)}, so now` : '';
    return decide('issue', 'Renew', `expires in ${left} days; inside the CA's renewal window ${iso(ari.start)} – ${iso(ari.end)} (ARI)${late}`);
  }
  const at = Math.round((local.info.notAfter.getTime() - renewAt.getTime()) / DAY);
  return decide('issue', 'Renew', `expires in ${left} days (renew at ${at})`);
};

// --- the orchestrator's copy is not the local one (rule 4) ---------------------------------------------

const notInOrchestrator: Check = ({ local, remote }) => (local.state === 'present' && remote.state === 'absent' ? decide('push', 'NotInOrchestrator', 'not in orchestrator') : undefined);

const remoteUnreadable: Check = ({ local, remote }) =>
  local.state === 'present' && remote.state === 'unreadable' ? decide('push', 'RemoteUnreadable', `orchestrator copy unreadable: ${remote.error}`) : undefined;

const differs = ({ local, remote }: PolicyInput) => (local.state === 'present' && remote.state === 'present' && remote.info.fingerprint !== local.info.fingerprint ? { l: local, r: remote } : undefined);

const remoteExpired: Check = (input) => {
  const d = differs(input);
  return d && input.now >= d.r.info.notAfter ? decide('push', 'RemoteExpired', 'orchestrator copy expired, local copy fresh') : undefined;
};

const remoteLowerKind: Check = (input) => {
  const d = differs(input);
  if (!d || d.r.kind === undefined || d.l.kind === undefined || RANK[d.r.kind] >= RANK[d.l.kind]) return undefined;
  return decide('push', 'RemoteLowerKind', `orchestrator holds ${d.r.kind}, local copy is ${d.l.kind}`);
};

const remoteDiffers: Check = (input) => (differs(input) ? decide('push', 'RemoteDiffers', 'orchestrator copy differs from the local copy') : undefined);

// --- rule 5 -------------------------------------------------------------------------------------------

const upToDate: Check = ({ local, policy, ari }) => {
  if (local.state !== 'present') return undefined;
  const at = renewalTime(local.info, policy.renewBeforeDays, ari);
  // A certificate of a few days renews within hours: say the hour too.
  const when = local.info.notAfter.getTime() - local.info.notBefore.getTime() < 30 * DAY ? iso(at) : day(at);
  return decide('none', 'UpToDate', `up to date; renews ${when}${ari ? " (the CA's renewal window, ARI)" : ''}`);
};

/** DESIGN §3 and §10, in order; the first check that fires wins. */
export const CHAIN: ReadonlyArray<[string, Check]> = [
  ['unwanted', unwanted],
  ['foreignExpiring', foreignExpiring],
  ['foreign', foreign],
  ['nothingAnywhere', nothingAnywhere],
  ['servedElsewhere', servedElsewhere],
  ['pushedElsewhere', pushedElsewhere],
  ['noLocalCopy', noLocalCopy],
  ['localUnreadable', localUnreadable],
  ['localKeyMismatch', localKeyMismatch],
  ['revoked', revoked],
  ['namesChanged', namesChanged],
  ['replacePlaceholder', replacePlaceholder],
  ['upgradeKind', upgradeKind],
  ['profileChanged', profileChanged],
  ['expired', expired],
  ['caRequestedEarlyRenewal', caRequestedEarlyRenewal],
  ['renewalDue', renewalDue],
  ['notInOrchestrator', notInOrchestrator],
  ['remoteUnreadable', remoteUnreadable],
  ['remoteExpired', remoteExpired],
  ['remoteLowerKind', remoteLowerKind],
  ['remoteDiffers', remoteDiffers],
  ['upToDate', upToDate],
];

/**
 * An order from a label or the API is for a NEW certificate, and may use only NEW_ORDER_BUDGET, unless it
 * renews one the CA already issued for these names. Judged by what the store holds, not by the reason: a
 * tenant's name that never validates is retried as ReplacePlaceholder (its placeholder is in), and those
 * retries must not eat the share kept for renewals.
 */
function orderBudget(input: PolicyInput, d: Decision, kind: Kind): OrderBudget {
  if (input.wanted.origin === 'DOMAINS') return 'reserved';
  const { local, now } = input;
  // A renewal is of a certificate in service from the CA the order goes to: not one expired (it may never
  // validate again), nor staging's when production is ordered.
  const renews = local.state === 'present' && local.kind === kind && now < local.info.notAfter;
  return renews && d.reason !== 'NamesChanged' ? 'reserved' : 'new';
}

/**
 * Let's Encrypt's ARI exemption: a renewal, sent with `replaces`, of a certificate of this kind once its
 * suggested window has opened. A window that has already closed still counts: the CA answers a certificate it
 * is revoking with a window that opened an hour ago and closed half an hour later (Boulder's
 * RenewalInfoImmediate), and that renewal is exactly the one ARI exists for.
 */
function isAriRenewal(input: PolicyInput, kind: Kind): boolean {
  const { local, ari, now } = input;
  return ari !== undefined && local.state === 'present' && local.kind === kind && now >= ari.start;
}

export const KEPT_MESSAGE = (kind: Kind) => `kept ${kind}: STAGING would downgrade`;

/** The gate (issue 16 item 7): an order that is due waits out a backoff, a limit or the budget. */
function gate(d: Decision, input: PolicyInput): Decision {
  if (d.action !== 'issue' && d.action !== 'placeholder') return d;
  const { backoffUntil, ledger } = input.gate ?? {};
  let reason: Reason;
  let held: { why: string; until: Date };
  if (backoffUntil && input.now < backoffUntil) {
    reason = 'BackingOff';
    held = { why: `backing off after a failed order until ${backoffUntil.toISOString()}`, until: backoffUntil };
  } else if (ledger) {
    reason = ledger.limit === 'newOrderBudget' ? 'NewOrderBudget' : 'RateLimited';
    held = { why: ledger.message, until: ledger.retryAt };
  } else return d;
  const message = `${d.message}; not ordered: ${held.why}`;
  // A placeholder still goes in (the balancer must start); only its order waits.
  return d.action === 'placeholder' ? { ...d, message, held } : { ...d, action: 'wait', reason, message, held };
}

export function decideAction(input: PolicyInput): Decision {
  for (const [, check] of CHAIN) {
    const found = check(input);
    if (!found) continue;
    // Never renewed, never ordered: no order plan, kept kind or renewal time to show.
    if (found.reason === 'Unwanted') return found;
    const { kind, kept } = effectiveKind(input);
    let d = found;
    if (d.action === 'issue' || d.action === 'placeholder') {
      const profile = input.wanted.profile;
      d = { ...d, order: { kind, budget: orderBudget(input, d, kind), ...(profile ? { profile } : {}), ...(isAriRenewal(input, kind) ? { ariRenewal: true } : {}) } };
    }
    if (kept && !d.foreign) d = { ...d, keptKind: kept, message: `${d.message}; ${KEPT_MESSAGE(kept)}` };
    d = gate(d, input);
    const shown = d.describesRemote ? input.remote : input.local;
    if (shown.state === 'present' && !d.foreign) {
      // The ARI window is the local copy's; an orchestrator copy shown instead is judged by its lifetime.
      const ari = d.describesRemote ? undefined : input.ari;
      const s = renewalSchedule(shown.info, input.policy.renewBeforeDays, ari);
      d.renewAt = s.at;
      d.renewRule = s.rule;
      if (s.clamped) d.renewClamped = s.clamped;
      if (ari) d.renewalWindow = { start: ari.start, end: ari.end, ...(ari.explanationURL ? { explanationURL: ari.explanationURL } : {}), early: isEarlyWindow(ari, shown.info.notBefore, shown.info.notAfter) };
    }
    return d;
  }
  // Unreachable: upToDate fires whenever the local copy is present, and noLocalCopy/localUnreadable otherwise.
  throw new Error(`policy: no rule matched for ${input.wanted.name}`);
}

/** The decision is an order the gate did not hold: ask the ledger about it. */
export const wantsOrder = (d: Decision): boolean => (d.action === 'issue' || d.action === 'placeholder') && d.held === undefined;
