import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAction, CHAIN, renewalTime, renewalSchedule, type Copy, type PolicyInput, type Action, type Reason, type Gate, type Decision } from '../../src/policy.js';
import type { CertInfo } from '../../src/certs/parse.js';
import type { Kind } from '../../src/certs/kind.js';

const NOW = new Date('2027-01-01T00:00:00Z');
const DAY = 86_400_000;
const NAMES = ['app.example.com', 'www.app.example.com'];

/** A certificate issued `ageDays` ago with a 90-day life (or `lifeDays`). Renewal (1/3 left) falls at day 60. */
function info(opts: { ageDays?: number; names?: string[]; fp?: string; lifeDays?: number; selfSigned?: boolean } = {}): CertInfo {
  const notBefore = new Date(NOW.getTime() - (opts.ageDays ?? 10) * DAY);
  return {
    commonName: (opts.names ?? NAMES)[0],
    names: opts.names ?? NAMES,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (opts.lifeDays ?? 90) * DAY),
    fingerprint: opts.fp ?? 'aa',
    fingerprintSha1: 'aa',
    issuer: 'CN=Test CA',
    subject: 'CN=app.example.com',
    serialNumber: '1',
    selfSigned: opts.selfSigned ?? false,
  };
}

const absent: Copy = { state: 'absent' };
const local = (kind: Kind, o: Parameters<typeof info>[0] & { profile?: string } = {}, keyMatches = true): Copy => ({ state: 'present', info: info(o), kind, keyMatches, owned: true, ...(o.profile ? { profile: o.profile } : {}) });
const remote = (kind: Kind | undefined, o: Parameters<typeof info>[0] = {}, owned = true): Copy => ({ state: 'present', info: info(o), kind, keyMatches: true, owned });

interface Row {
  name: string;
  local: Copy;
  remote: Copy;
  want?: Kind;
  names?: string[];
  policy?: Partial<PolicyInput['policy']>;
  backoffUntil?: Date;
  gate?: Gate;
  origin?: 'DOMAINS' | 'api' | 'label';
  /** More of the input: a revocation, an unwanted certificate. */
  extra?: Pick<PolicyInput, 'revoked' | 'unwanted'>;
  /** The CA's renewal window (ARI), days from NOW, and the moment drawn inside it. */
  ari?: { startDays: number; endDays: number; atDays: number; explanationURL?: string };
  /** PROFILE / the label's profile; and whether the CA offers profiles. */
  profile?: string;
  caOffersProfiles?: boolean;
  action: Action;
  reason: Reason;
  message?: RegExp;
  /** What else the decision must say: the kind ordered, the budget, … */
  expect?: (d: Decision) => void;
}

const HOUR = 3_600_000;
const ordersFrom = (kind: 'staging' | 'production') => (d: Decision) => assert.equal(d.order?.kind, kind, `ordered as ${d.order?.kind}`);
const budget = (b: 'new' | 'reserved') => (d: Decision) => assert.equal(d.order?.budget, b);
/** A certificate of `lifeDays` issued `ageDays` ago, the same on both sides. */
const aged = (lifeDays: number, ageDays: number) => ({ local: local('production', { lifeDays, ageDays }), remote: remote('production', { lifeDays, ageDays }) });

const rows: Row[] = [
  // DESIGN §3 rule 1
  { name: 'foreign certificate with a wanted name is left alone', local: absent, remote: remote(undefined, { fp: 'ff' }, false), action: 'none', reason: 'Foreign', message: /does not manage/ },
  { name: 'foreign certificate is taken over with ADOPT_EXISTING', local: absent, remote: remote(undefined, { fp: 'ff' }, false), policy: { adoptExisting: true }, action: 'issue', reason: 'NoLocalCopy' },
  { name: 'foreign certificate beside a usable local copy: still left alone', local: local('production'), remote: remote('production', { fp: 'ff' }, false), action: 'none', reason: 'Foreign' },
  // rule 2
  { name: 'nothing anywhere: placeholder first', local: absent, remote: absent, action: 'placeholder', reason: 'NoCertificate', message: /placeholder first/ },
  { name: 'nothing anywhere, placeholders off: issue', local: absent, remote: absent, policy: { placeholders: false }, action: 'issue', reason: 'NoLocalCopy' },
  // rule 3, and the seed's "no local copy → create, push" (in orchestrator or not)
  { name: 'seed: no local copy, in orchestrator (due) → create, push', local: absent, remote: remote('production', { ageDays: 70 }), action: 'issue', reason: 'NoLocalCopy', message: /no local copy/ },
  { name: 'local copy unreadable', local: { state: 'unreadable', error: 'cert.pem: bad PEM', owned: true }, remote: absent, action: 'issue', reason: 'LocalUnreadable', message: /unreadable: cert.pem: bad PEM/ },
  { name: 'local key does not match its certificate', local: local('production', {}, false), remote: remote('production'), action: 'issue', reason: 'LocalKeyMismatch' },
  { name: 'names changed → reissue', local: local('production', { names: ['app.example.com'] }), remote: remote('production', { names: ['app.example.com'] }), action: 'issue', reason: 'NamesChanged', message: /www.app.example.com not covered/ },
  { name: 'seed: in orchestrator, upgrade staging → production', local: local('staging'), remote: remote('staging'), action: 'issue', reason: 'UpgradeKind', message: /upgrade staging → production/ },
  { name: 'seed: in orchestrator, upgrade self-signed → production', local: local('self-signed'), remote: remote('self-signed'), action: 'issue', reason: 'ReplacePlaceholder', message: /replace self-signed placeholder/ },
  { name: 'self-signed placeholder replaced by staging when staging is wanted', local: local('self-signed'), remote: remote('self-signed'), want: 'staging', action: 'issue', reason: 'ReplacePlaceholder' },
  { name: 'seed: orchestrator copy expired, local expired → renew, push', local: local('production', { ageDays: 100 }), remote: remote('production', { ageDays: 100 }), action: 'issue', reason: 'Expired', message: /^expired 2026-12-/ },
  { name: 'seed: local copy, not in orchestrator, expired → renew, push', local: local('production', { ageDays: 95 }), remote: absent, action: 'issue', reason: 'Expired' },
  { name: 'local copy in its renewal window (default: 1/3 of life left)', local: local('production', { ageDays: 70 }), remote: remote('production'), action: 'issue', reason: 'Renew', message: /^expires in 20 days \(renew at 30\)$/ },
  { name: 'RENEW_BEFORE_DAYS overrides the default window', local: local('production', { ageDays: 70 }), remote: remote('production'), policy: { renewBeforeDays: 10 }, action: 'none', reason: 'UpToDate' },
  { name: 'RENEW_BEFORE_DAYS reached', local: local('production', { ageDays: 85 }), remote: remote('production'), policy: { renewBeforeDays: 10 }, action: 'issue', reason: 'Renew', message: /expires in 5 days \(renew at 10\)/ },
  { name: 'an order due during a backoff waits', local: local('production', { ageDays: 95 }), remote: absent, backoffUntil: new Date(NOW.getTime() + 3600_000), action: 'wait', reason: 'BackingOff', message: /backing off .* until 2027-01-01T01:00/ },
  { name: 'a backoff that has passed no longer holds', local: local('production', { ageDays: 95 }), remote: absent, backoffUntil: new Date(NOW.getTime() - 1), action: 'issue', reason: 'Expired' },
  // rule 4, and the seed's push branches
  { name: 'seed: local copy fresh, not in orchestrator → push', local: local('production'), remote: absent, action: 'push', reason: 'NotInOrchestrator', message: /^not in orchestrator$/ },
  { name: 'seed: orchestrator copy expired, local copy fresh → push', local: local('production'), remote: remote('production', { ageDays: 100, fp: 'old' }), action: 'push', reason: 'RemoteExpired', message: /orchestrator copy expired, local copy fresh/ },
  { name: 'orchestrator holds staging, local copy is production → push', local: local('production'), remote: remote('staging', { fp: 'stg' }), action: 'push', reason: 'RemoteLowerKind', message: /orchestrator holds staging/ },
  { name: 'orchestrator holds a self-signed placeholder, local production → push', local: local('production'), remote: remote('self-signed', { fp: 'ss' }), action: 'push', reason: 'RemoteLowerKind', message: /orchestrator holds self-signed/ },
  { name: 'orchestrator copy unreadable → push', local: local('production'), remote: { state: 'unreadable', error: 'cert.pem: truncated', owned: true }, action: 'push', reason: 'RemoteUnreadable' },
  { name: 'orchestrator copy differs otherwise → push', local: local('production'), remote: remote('production', { fp: 'other' }), action: 'push', reason: 'RemoteDiffers' },
  // rule 5
  { name: 'same certificate on both sides: nothing to do', local: local('production'), remote: remote('production'), action: 'none', reason: 'UpToDate', message: /^up to date; renews 2027-02-20$/ },
  { name: 'production is never downgraded when staging is wanted', local: local('production'), remote: remote('production'), want: 'staging', action: 'none', reason: 'UpToDate' },
  { name: 'a usable staging copy satisfies STAGING=true', local: local('staging'), remote: remote('staging'), want: 'staging', action: 'none', reason: 'UpToDate' },
  // issue 16 item 2: never downgrade, whatever STAGING says (local, remote, at renewal, after expiry)
  { name: 'downgrade, local: production in the store, STAGING=true, names changed → ordered from production', local: local('production', { names: ['app.example.com'] }), remote: remote('production', { names: ['app.example.com'] }), want: 'staging', action: 'issue', reason: 'NamesChanged', message: /kept production: STAGING would downgrade/, expect: ordersFrom('production') },
  { name: 'downgrade, remote: only the orchestrator holds production (store lost a copy), STAGING=true → ordered from production', local: { state: 'unreadable', error: 'cert.pem: truncated', owned: true }, remote: remote('production', { ageDays: 70, fp: 'p' }), want: 'staging', action: 'issue', reason: 'LocalUnreadable', message: /kept production/, expect: ordersFrom('production') },
  { name: 'downgrade, remote: a staging local copy never replaces production in the orchestrator', local: local('staging', { fp: 's' }), remote: remote('production', { ageDays: 70, fp: 'p' }), want: 'staging', action: 'issue', reason: 'UpgradeKind', message: /upgrade staging → production; kept production/, expect: ordersFrom('production') },
  { name: 'downgrade, at renewal: production due, STAGING=true → renewed from production', local: local('production', { ageDays: 70 }), remote: remote('production', { ageDays: 70 }), want: 'staging', action: 'issue', reason: 'Renew', message: /kept production: STAGING would downgrade/, expect: ordersFrom('production') },
  { name: 'downgrade, after expiry: an expired production certificate is renewed from production', local: local('production', { ageDays: 95 }), remote: remote('production', { ageDays: 95 }), want: 'staging', action: 'issue', reason: 'Expired', expect: ordersFrom('production') },
  { name: 'STAGING=true with only staging in service orders from staging', local: local('staging', { ageDays: 70 }), remote: remote('staging', { ageDays: 70 }), want: 'staging', action: 'issue', reason: 'Renew', expect: (d) => (ordersFrom('staging')(d), assert.equal(d.keptKind, undefined)) },
  { name: 'STAGING=false orders from production', local: local('production', { ageDays: 70 }), remote: remote('production', { ageDays: 70 }), action: 'issue', reason: 'Renew', expect: ordersFrom('production') },
  // issue 16 item 3: the renewal time has a floor (⅓ of the lifetime passed) and a ceiling (1/10 left)
  { name: '90-day, RENEW_BEFORE_DAYS=90 clamped to the floor: not due at day 10 (no reissue loop)', ...aged(90, 10), policy: { renewBeforeDays: 90 }, action: 'none', reason: 'UpToDate', expect: (d) => assert.match(d.renewClamped ?? '', /RENEW_BEFORE_DAYS=90 is outside what a 90-day certificate allows; renewing 60 days before expiry/) },
  { name: '90-day, RENEW_BEFORE_DAYS=90 clamped: due once a third has passed', ...aged(90, 31), policy: { renewBeforeDays: 90 }, action: 'issue', reason: 'Renew' },
  { name: '90-day, RENEW_BEFORE_DAYS=1 clamped to the ceiling: due with 9 days left', ...aged(90, 81.5), policy: { renewBeforeDays: 1 }, action: 'issue', reason: 'Renew', expect: (d) => assert.match(d.renewRule ?? '', /9 days before expiry: RENEW_BEFORE_DAYS=1 clamped for a 90-day certificate/) },
  { name: '64-day, RENEW_BEFORE_DAYS=30 is inside the bounds: due at day 34, not clamped', ...aged(64, 33), policy: { renewBeforeDays: 30 }, action: 'none', reason: 'UpToDate', expect: (d) => (assert.equal(d.renewClamped, undefined), assert.equal(d.renewRule, '30 days before expiry (RENEW_BEFORE_DAYS)')) },
  { name: '64-day, RENEW_BEFORE_DAYS=60 clamped to the floor (day 21.3)', ...aged(64, 20), policy: { renewBeforeDays: 60 }, action: 'none', reason: 'UpToDate', expect: (d) => assert.match(d.renewClamped ?? '', /64-day certificate/) },
  { name: '45-day, RENEW_BEFORE_DAYS=40 clamped to the floor: not due at day 10', ...aged(45, 10), policy: { renewBeforeDays: 40 }, action: 'none', reason: 'UpToDate', expect: (d) => assert.match(d.renewClamped ?? '', /45-day certificate allows; renewing 30 days before expiry/) },
  { name: '45-day, RENEW_BEFORE_DAYS=40 clamped: due at day 16', ...aged(45, 16), policy: { renewBeforeDays: 40 }, action: 'issue', reason: 'Renew' },
  { name: '6-day (shortlived), RENEW_BEFORE_DAYS=30 clamped: not due after 1 day', ...aged(6, 1), policy: { renewBeforeDays: 30 }, action: 'none', reason: 'UpToDate', expect: (d) => assert.match(d.renewClamped ?? '', /6-day certificate allows; renewing 4 days before expiry/) },
  { name: '6-day (shortlived), RENEW_BEFORE_DAYS=30 clamped: due after 2.1 days', ...aged(6, 2.1), policy: { renewBeforeDays: 30 }, action: 'issue', reason: 'Renew' },
  { name: '6-day, default: due with 2 days left', ...aged(6, 4.1), action: 'issue', reason: 'Renew' },
  // issue 16 item 4: two managers do not fight
  { name: 'pushed elsewhere: a newer copy of ours in the orchestrator is not overwritten', local: local('production', { ageDays: 20 }), remote: remote('production', { ageDays: 5, fp: 'newer' }), action: 'none', reason: 'PushedElsewhere', message: /^a newer copy is in the orchestrator \(pushed elsewhere\)/ },
  { name: 'pushed elsewhere: even when the local copy is due for renewal', local: local('production', { ageDays: 70 }), remote: remote('production', { ageDays: 1, fp: 'newer' }), action: 'none', reason: 'PushedElsewhere' },
  { name: 'pushed elsewhere, higher kind: a newer production copy beside a local staging one', local: local('staging', { ageDays: 20 }), remote: remote('production', { ageDays: 5, fp: 'newer' }), want: 'staging', action: 'none', reason: 'PushedElsewhere' },
  { name: 'an older copy of ours in the orchestrator is overwritten', local: local('production', { ageDays: 5 }), remote: remote('production', { ageDays: 20, fp: 'older' }), action: 'push', reason: 'RemoteDiffers' },
  { name: 'a newer copy of a lower kind is overwritten', local: local('production', { ageDays: 20 }), remote: remote('staging', { ageDays: 5, fp: 'stg' }), action: 'push', reason: 'RemoteLowerKind' },
  { name: 'a newer copy that misses a wanted name is overwritten', local: local('production', { ageDays: 20 }), remote: remote('production', { ageDays: 5, fp: 'n', names: ['app.example.com'] }), action: 'push', reason: 'RemoteDiffers' },
  { name: 'a newer foreign copy is never taken for ours', local: local('production', { ageDays: 20 }), remote: remote('production', { ageDays: 5, fp: 'f' }, false), action: 'none', reason: 'Foreign' },
  { name: 'served from elsewhere: no local copy, ours valid and not due in the orchestrator → no order', local: absent, remote: remote(undefined, { ageDays: 5, fp: 'other' }), action: 'none', reason: 'ServedElsewhere', message: /served from elsewhere/ },
  { name: 'served from elsewhere no longer once that copy is due: order', local: absent, remote: remote('production', { ageDays: 70 }), action: 'issue', reason: 'NoLocalCopy' },
  { name: 'a self-signed placeholder in the orchestrator does not serve', local: absent, remote: remote('self-signed', { selfSigned: true }), action: 'issue', reason: 'NoLocalCopy' },
  { name: 'a staging copy does not serve when production is wanted', local: absent, remote: remote('staging'), action: 'issue', reason: 'NoLocalCopy' },
  // issue 16 item 6: foreign certificates are watched
  { name: 'a foreign certificate expiring in 10 days needs attention, and is never written', local: absent, remote: remote(undefined, { ageDays: 80, fp: 'ff' }, false), action: 'none', reason: 'ForeignExpiring', message: /does not manage, and it expires in 10 days/ },
  { name: 'an expired foreign certificate needs attention', local: local('production'), remote: remote(undefined, { ageDays: 95, fp: 'ff' }, false), action: 'none', reason: 'ForeignExpiring', message: /and it expired 2026-12-/ },
  { name: 'a foreign certificate with 15 days left is only reported', local: absent, remote: remote(undefined, { ageDays: 75, fp: 'ff' }, false), action: 'none', reason: 'Foreign' },
  // issue 16 item 7: the gate — backoff, the ledger, the new-order budget
  { name: 'gate: the ledger would hold the renewal → wait, saying which limit and until when', local: local('production', { ageDays: 70 }), remote: remote('production', { ageDays: 70 }), gate: { ledger: { limit: 'duplicateCertificates', message: '5 certificates for exactly these names in the last 7 days (limit 5)', retryAt: new Date(NOW.getTime() + HOUR) } }, action: 'wait', reason: 'RateLimited', message: /expires in 20 days \(renew at 30\); not ordered: 5 certificates/, expect: (d) => assert.equal(d.held?.until.getTime(), NOW.getTime() + HOUR) },
  { name: 'gate: a new certificate from a label past NEW_ORDER_BUDGET → wait', local: absent, remote: remote('production', { ageDays: 70 }), origin: 'label', gate: { ledger: { limit: 'newOrderBudget', message: 'new certificates have used 80% of the weekly limit', retryAt: new Date(NOW.getTime() + HOUR) } }, action: 'wait', reason: 'NewOrderBudget', message: /not ordered: new certificates have used 80%/ },
  { name: 'gate: the backoff is checked before the ledger', local: local('production', { ageDays: 95 }), remote: absent, gate: { backoffUntil: new Date(NOW.getTime() + HOUR), ledger: { limit: 'duplicateCertificates', message: 'x', retryAt: new Date(NOW.getTime() + 2 * HOUR) } }, action: 'wait', reason: 'BackingOff' },
  { name: 'gate: a placeholder still goes in while the ledger holds its order', local: absent, remote: absent, gate: { ledger: { limit: 'newOrdersPerAccount', message: '300 new orders', retryAt: new Date(NOW.getTime() + HOUR) } }, action: 'placeholder', reason: 'NoCertificate', expect: (d) => assert.ok(d.held) },
  { name: 'budget: a new label certificate orders under the new-order budget', local: absent, remote: remote('production', { ageDays: 70 }), origin: 'label', action: 'issue', reason: 'NoLocalCopy', expect: budget('new') },
  { name: 'budget: a new API certificate with changed names orders under the new-order budget', local: local('production', { names: ['app.example.com'] }), remote: absent, origin: 'api', action: 'issue', reason: 'NamesChanged', expect: budget('new') },
  { name: 'budget: a label certificate\'s renewal uses the reserve', local: local('production', { ageDays: 70 }), remote: remote('production', { ageDays: 70 }), origin: 'label', action: 'issue', reason: 'Renew', expect: budget('reserved') },
  { name: 'budget: a label certificate whose first order failed is still new while only its placeholder is in', local: local('self-signed'), remote: remote('self-signed'), origin: 'label', action: 'issue', reason: 'ReplacePlaceholder', expect: budget('new') },
  { name: 'budget: an API certificate with an unreadable local copy is new (nothing issued is known)', local: { state: 'unreadable', error: 'cert.pem: bad PEM', owned: true }, remote: absent, origin: 'api', action: 'issue', reason: 'LocalUnreadable', expect: budget('new') },
  { name: 'budget: a label certificate upgraded from staging is new to the production CA', local: local('staging'), remote: remote('staging'), origin: 'label', action: 'issue', reason: 'UpgradeKind', expect: budget('new') },
  { name: 'budget: a label certificate that expired (it may never validate again) is new', local: local('production', { ageDays: 95 }), remote: remote('production', { ageDays: 95 }), origin: 'label', action: 'issue', reason: 'Expired', expect: budget('new') },
  { name: 'budget: a new certificate of DOMAINS uses the reserve', local: absent, remote: absent, action: 'placeholder', reason: 'NoCertificate', expect: budget('reserved') },
  // issue 17 item 5: revoked, and no longer wanted
  { name: 'a revoked certificate is replaced at once, from the reserve', local: local('production'), remote: remote('production'), origin: 'label', extra: { revoked: { reason: 'keyCompromise', at: NOW } }, action: 'issue', reason: 'Revoked', message: /^revoked \(keyCompromise\)/, expect: budget('reserved') },
  { name: 'unwanted (DECOMMISSION=keep): served, never renewed even when due, no renewal time shown', ...aged(90, 70), extra: { unwanted: { since: NOW, usedBy: [] } }, action: 'none', reason: 'Unwanted', message: /no source asks for it any more.*\(DECOMMISSION=keep\)/, expect: (d) => assert.equal(d.renewAt, undefined) },
  { name: 'unwanted (DECOMMISSION=remove) before DECOMMISSION_AFTER: kept', ...aged(90, 10), extra: { unwanted: { since: NOW, removeAt: new Date(NOW.getTime() + HOUR), usedBy: [] } }, action: 'none', reason: 'Unwanted', message: /removed after 2027-01-01T01:00:00.000Z \(DECOMMISSION_AFTER\)/ },
  { name: 'unwanted (DECOMMISSION=remove) while a balancer references it: kept', ...aged(90, 10), extra: { unwanted: { since: NOW, removeAt: NOW, usedBy: ['edge (1s3)'] } }, action: 'none', reason: 'Unwanted', message: /kept while balancers still use it: edge \(1s3\)/ },
  { name: 'unwanted (DECOMMISSION=remove), but the orchestrator\'s copy is not certwrangler\'s: never removed', local: local('production'), remote: remote(undefined, { fp: 'ff' }, false), extra: { unwanted: { since: NOW, removeAt: NOW, usedBy: [] } }, action: 'none', reason: 'Unwanted', message: /not created by certwrangler, so it is never removed/ },
  { name: 'unwanted (DECOMMISSION=remove), due and unused: removed', ...aged(90, 10), extra: { unwanted: { since: NOW, removeAt: NOW, usedBy: [] } }, action: 'remove', reason: 'Unwanted' },
  // issue 17 item 1: the CA's renewal window (ARI, RFC 9773) wins over the lifetime rules
  { name: 'ARI: a window in the future → up to date, renewing at the moment drawn inside it', ...aged(90, 10), ari: { startDays: 40, endDays: 42, atDays: 41 }, action: 'none', reason: 'UpToDate', message: /renewal window, ARI/, expect: (d) => (assert.equal(d.renewAt?.getTime(), NOW.getTime() + 41 * DAY), assert.equal(d.renewalWindow?.early, false)) },
  { name: 'ARI: the moment has come → renew, as an ARI renewal (exempt from the rate limits)', ...aged(90, 61), ari: { startDays: -1, endDays: 1, atDays: -0.5 }, action: 'issue', reason: 'Renew', message: /inside the CA's renewal window/, expect: (d) => assert.equal(d.order?.ariRenewal, true) },
  { name: 'ARI: a window that has closed → renew now, still an ARI renewal', ...aged(90, 70), ari: { startDays: -9, endDays: -8, atDays: -8.5 }, action: 'issue', reason: 'Renew', message: /the window closed .*, so now/, expect: (d) => assert.equal(d.order?.ariRenewal, true) },
  { name: 'ARI: no window, renewed by the lifetime rule → an ordinary order for the rate limits', ...aged(90, 70), action: 'issue', reason: 'Renew', expect: (d) => assert.equal(d.order?.ariRenewal, undefined) },
  { name: 'ARI: a window later than the lifetime rule still wins (the CA spreads its load)', ...aged(90, 65), ari: { startDays: 5, endDays: 6, atDays: 5.5 }, action: 'none', reason: 'UpToDate' },
  { name: 'ARI: never later than the last tenth of the lifetime', ...aged(90, 80), ari: { startDays: 5, endDays: 6, atDays: 5.5 }, action: 'none', reason: 'UpToDate', expect: (d) => (assert.equal(d.renewAt?.getTime(), NOW.getTime() + 1 * DAY), assert.match(d.renewRule ?? '', /never later than the last tenth/)) },
  { name: 'ARI: a window before a third of the lifetime → CARequestedEarlyRenewal, with the CA\'s explanation', ...aged(90, 10), ari: { startDays: -0.1, endDays: 0.1, atDays: -0.05, explanationURL: 'https://ca.test/incident' }, action: 'issue', reason: 'CARequestedEarlyRenewal', message: /early renewal.*https:\/\/ca\.test\/incident/, expect: (d) => assert.equal(d.renewalWindow?.early, true) },
  { name: 'ARI: an early window whose moment is still ahead → up to date until then, shown as early', ...aged(90, 10), ari: { startDays: -0.1, endDays: 0.5, atDays: 0.2 }, action: 'none', reason: 'UpToDate', expect: (d) => assert.equal(d.renewalWindow?.early, true) },
  { name: 'ARI: 6-day certificate, window now → renew', ...aged(6, 3.5), ari: { startDays: -0.2, endDays: 0.2, atDays: -0.1 }, action: 'issue', reason: 'Renew' },
  // issue 17 item 2: profiles
  { name: 'profile: PROFILE changed since the certificate was ordered → reissue once', local: local('production', { profile: 'classic' }), remote: remote('production'), profile: 'tlsserver', caOffersProfiles: true, action: 'issue', reason: 'ProfileChanged', message: /ordered as classic, now tlsserver/, expect: (d) => assert.equal(d.order?.profile, 'tlsserver') },
  { name: 'profile: set where none was → reissue', local: local('production'), remote: remote('production'), profile: 'shortlived', caOffersProfiles: true, action: 'issue', reason: 'ProfileChanged' },
  { name: 'profile: the same profile → nothing', local: local('production', { profile: 'tlsserver' }), remote: remote('production'), profile: 'tlsserver', caOffersProfiles: true, action: 'none', reason: 'UpToDate' },
  { name: 'profile: none set, none recorded, the CA offers none → never a reissue', local: local('production'), remote: remote('production'), caOffersProfiles: false, action: 'none', reason: 'UpToDate' },
  { name: 'profile: unset after one was recorded, the CA offers none → no reissue', local: local('production', { profile: 'classic' }), remote: remote('production'), caOffersProfiles: false, action: 'none', reason: 'UpToDate' },
  { name: 'profile: unset after one was recorded, the CA offers profiles → back to its default', local: local('production', { profile: 'shortlived' }), remote: remote('production'), caOffersProfiles: true, action: 'issue', reason: 'ProfileChanged', message: /now the CA's default/ },
  { name: 'profile: a renewal keeps ordering the profile', ...aged(90, 70), profile: 'tlsserver', local: local('production', { ageDays: 70, profile: 'tlsserver' }), caOffersProfiles: true, action: 'issue', reason: 'Renew', expect: (d) => assert.equal(d.order?.profile, 'tlsserver') },
];

const inputOf = (row: Row): PolicyInput => ({
  wanted: { name: NAMES[0]!, names: row.names ?? NAMES, kind: row.want ?? 'production', origin: row.origin ?? 'DOMAINS', ...(row.profile ? { profile: row.profile } : {}) },
  ...(row.ari ? { ari: { start: new Date(NOW.getTime() + row.ari.startDays * DAY), end: new Date(NOW.getTime() + row.ari.endDays * DAY), at: new Date(NOW.getTime() + row.ari.atDays * DAY), ...(row.ari.explanationURL ? { explanationURL: row.ari.explanationURL } : {}) } } : {}),
  ...(row.caOffersProfiles !== undefined ? { caOffersProfiles: row.caOffersProfiles } : {}),
  local: row.local,
  remote: row.remote,
  now: NOW,
  policy: { renewBeforeDays: undefined, adoptExisting: false, placeholders: true, ...row.policy },
  gate: { ...(row.backoffUntil ? { backoffUntil: row.backoffUntil } : {}), ...row.gate },
  ...row.extra,
});

for (const row of rows) {
  test(`policy: ${row.name}`, () => {
    const d = decideAction(inputOf(row));
    assert.equal(d.action, row.action, d.message);
    assert.equal(d.reason, row.reason, d.message);
    if (row.message) assert.match(d.message, row.message);
    row.expect?.(d);
  });
}

test('policy: every check in the chain is the first to fire for some row, with that row\'s reason (none is shadowed by an earlier one)', () => {
  const firstToFire = new Map<string, string[]>();
  for (const row of rows) {
    const input = inputOf(row);
    const hit = CHAIN.find(([, check]) => check(input) !== undefined);
    assert.ok(hit, `no check fires for "${row.name}"`);
    const [name, check] = hit;
    // The gate may turn the decision into a wait; the check's own reason is the row's otherwise.
    if (!['BackingOff', 'RateLimited', 'NewOrderBudget'].includes(row.reason)) assert.equal(check(input)!.reason, row.reason, `${row.name}: decided by ${name}`);
    firstToFire.set(name, [...(firstToFire.get(name) ?? []), row.name]);
  }
  const unexercised = CHAIN.map(([n]) => n).filter((n) => !firstToFire.has(n));
  assert.deepEqual(unexercised, [], 'checks that no row reaches: each needs a row, or is dead');
  for (const r of ['BackingOff', 'RateLimited', 'NewOrderBudget'] as Reason[]) assert.ok(rows.some((row) => row.reason === r), `no row for the gate's ${r}`);
});

test('policy: renewal time is two thirds into the lifetime unless RENEW_BEFORE_DAYS is set', () => {
  const i = info({ ageDays: 0 });
  assert.equal(renewalTime(i, undefined).getTime(), i.notBefore.getTime() + 60 * DAY);
  assert.equal(renewalTime(i, 30).getTime(), i.notAfter.getTime() - 30 * DAY);
});

test('policy: RENEW_BEFORE_DAYS inside the bounds is used as given, outside it is clamped and says so', () => {
  const i = info({ ageDays: 0 });
  assert.deepEqual(renewalSchedule(i, 30), { at: new Date(i.notAfter.getTime() - 30 * DAY), rule: '30 days before expiry (RENEW_BEFORE_DAYS)' });
  const clamped = renewalSchedule(i, 365);
  assert.equal(clamped.at.getTime(), i.notBefore.getTime() + 30 * DAY);
  assert.match(clamped.rule, /clamped for a 90-day certificate/);
});
