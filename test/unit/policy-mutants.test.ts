/**
 * Issue 23 (mutation run of src/policy.ts): the decisions the policy table in policy.test.ts left open. Each
 * row is one edge a changed comparison or a dropped check would move: a boundary at exactly the moment, the
 * exact message an operator reads (`plan`, the status page, events), which copy a decision describes (its
 * renewal time is the one shown), and when an order counts as new or as an ARI renewal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAction, CHAIN, renewalSchedule, wantsOrder, type Copy, type Decision, type PolicyInput } from '../../src/policy.js';
import type { CertInfo } from '../../src/certs/parse.js';
import type { Kind } from '../../src/certs/kind.js';

const NOW = new Date('2027-01-01T00:00:00Z');
const DAY = 86_400_000;
const HOUR = 3_600_000;
const NAMES = ['app.example.com', 'www.app.example.com'];
const at = (days: number) => new Date(NOW.getTime() + days * DAY);

function info(o: { ageDays?: number; lifeDays?: number; names?: string[]; fp?: string; selfSigned?: boolean } = {}): CertInfo {
  const notBefore = at(-(o.ageDays ?? 10));
  return {
    commonName: (o.names ?? NAMES)[0],
    names: o.names ?? NAMES,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (o.lifeDays ?? 90) * DAY),
    fingerprint: o.fp ?? 'aa',
    fingerprintSha1: 'aa',
    issuer: 'CN=Test CA',
    subject: 'CN=app.example.com',
    serialNumber: '1',
    selfSigned: o.selfSigned ?? false,
  };
}
const absent: Copy = { state: 'absent' };
type CopyOpts = Parameters<typeof info>[0] & { keyMatches?: boolean; owned?: boolean; profile?: string };
const copy = (kind: Kind | undefined, o: CopyOpts = {}): Copy => ({ state: 'present', info: info(o), kind, keyMatches: o.keyMatches ?? true, owned: o.owned ?? true, ...(o.profile ? { profile: o.profile } : {}) });
const fresh = copy('production');

function decide(p: Partial<PolicyInput> & { want?: Kind; names?: string[]; origin?: PolicyInput['wanted']['origin']; profile?: string; renewBeforeDays?: number; adoptExisting?: boolean; placeholders?: boolean }): Decision {
  const { want, names, origin, profile, renewBeforeDays, adoptExisting, placeholders, ...rest } = p;
  return decideAction({
    wanted: { name: NAMES[0]!, names: names ?? NAMES, kind: want ?? 'production', origin: origin ?? 'DOMAINS', ...(profile ? { profile } : {}) },
    local: fresh,
    remote: fresh,
    now: NOW,
    policy: { renewBeforeDays, adoptExisting: adoptExisting ?? false, placeholders: placeholders ?? true },
    ...rest,
  });
}
const is = (d: Decision, action: string, reason: string) => (assert.equal(d.action, action, d.message), assert.equal(d.reason, reason, d.message));

test('policy chain: the checks run in the order DESIGN §3 and §10 give, under these names', () => {
  assert.deepEqual(CHAIN.map(([n]) => n), [
    'unwanted', 'foreignExpiring', 'foreign', 'nothingAnywhere', 'servedElsewhere', 'pushedElsewhere', 'noLocalCopy', 'localUnreadable', 'localKeyMismatch', 'revoked', 'namesChanged',
    'replacePlaceholder', 'upgradeKind', 'profileChanged', 'expired', 'caRequestedEarlyRenewal', 'renewalDue', 'notInOrchestrator', 'remoteUnreadable', 'remoteExpired', 'remoteLowerKind', 'remoteDiffers', 'upToDate',
  ]);
});

test('policy: wantsOrder is true only for an issue or a placeholder the gate did not hold', () => {
  const held = { why: 'x', until: NOW };
  assert.equal(wantsOrder({ action: 'issue', reason: 'Renew', message: '' }), true);
  assert.equal(wantsOrder({ action: 'placeholder', reason: 'NoCertificate', message: '' }), true);
  assert.equal(wantsOrder({ action: 'placeholder', reason: 'NoCertificate', message: '', held }), false);
  assert.equal(wantsOrder({ action: 'issue', reason: 'Renew', message: '', held }), false);
  for (const action of ['none', 'push', 'wait', 'remove'] as const) assert.equal(wantsOrder({ action, reason: 'UpToDate', message: '' }), false, action);
  // And as decided: an order due is one; the same order held by a backoff is not.
  assert.equal(wantsOrder(decide({ local: copy('production', { ageDays: 70 }) })), true);
  assert.equal(wantsOrder(decide({ local: copy('production', { ageDays: 70 }), gate: { backoffUntil: at(1) } })), false);
  assert.equal(wantsOrder(decide({})), false);
});

test('policy: a self-signed certificate asked for is ordered from staging when one is ordered', () => {
  const d = decide({ want: 'self-signed', local: absent, remote: absent, placeholders: false });
  is(d, 'issue', 'NoLocalCopy');
  assert.equal(d.order?.kind, 'staging');
});

test('policy, ARI schedule: a moment exactly at the last tenth is taken as drawn; one past it is moved to it, and the rule says which', () => {
  const i = info({ ageDays: 0 });
  const ceiling = at(81);
  const window = { start: at(80), end: at(82) };
  assert.deepEqual(renewalSchedule(i, undefined, { ...window, at: ceiling }), { at: ceiling, rule: `a random moment inside the CA's renewal window ${at(80).toISOString()} – ${at(82).toISOString()} (ARI)` });
  assert.deepEqual(renewalSchedule(i, undefined, { ...window, at: new Date(ceiling.getTime() + 1) }), { at: ceiling, rule: `the CA's renewal window ${at(80).toISOString()} – ${at(82).toISOString()} (ARI), but never later than the last tenth of its lifetime` });
});

test('policy, unwanted: removed when nothing is in the orchestrator; kept while balancers use it, naming each; the message says why', () => {
  const since = at(-3);
  const head = `no source asks for it any more (since ${since.toISOString()}): served as it is, not renewed`;
  const gone = decide({ remote: absent, unwanted: { since, removeAt: NOW, usedBy: [] } });
  is(gone, 'remove', 'Unwanted');
  assert.equal(gone.message, `${head}; removed from the orchestrator (DECOMMISSION=remove)`);
  const used = decide({ unwanted: { since, removeAt: NOW, usedBy: ['edge (1s3)', 'lb (1s4)'] } });
  is(used, 'none', 'Unwanted');
  assert.equal(used.message, `${head}; kept while balancers still use it: edge (1s3), lb (1s4)`);
  const notOurs = decide({ remote: copy(undefined, { owned: false, fp: 'ff' }), unwanted: { since, removeAt: NOW, usedBy: [] } });
  assert.equal(notOurs.message, `${head}; the orchestrator's copy was not created by certwrangler, so it is never removed`);
});

test('policy, foreign: exactly 14 days left is "expiring", and exactly at notAfter "expired"; the decision describes the orchestrator\'s copy', () => {
  const fourteen = decide({ local: absent, remote: copy(undefined, { ageDays: 76, owned: false, fp: 'ff' }) });
  is(fourteen, 'none', 'ForeignExpiring');
  assert.match(fourteen.message, /and it expires in 14 days \(2027-01-15\): renew it yourself, or list it in ADOPT_EXISTING$/);
  assert.equal(fourteen.foreign, true);
  assert.equal(fourteen.describesRemote, true);
  const zero = decide({ local: absent, remote: copy(undefined, { ageDays: 90, owned: false, fp: 'ff' }) });
  is(zero, 'none', 'ForeignExpiring');
  assert.match(zero.message, /and it expired 2027-01-01: /);
  const fifteen = decide({ local: absent, remote: copy(undefined, { ageDays: 75, owned: false, fp: 'ff' }) });
  is(fifteen, 'none', 'Foreign');
  assert.equal(fifteen.foreign, true);
  assert.equal(fifteen.describesRemote, true);
});

test('policy, foreign: what to do depends on who asks (a label never adopts); an unreadable foreign copy is not described', () => {
  const remote = copy(undefined, { owned: false, fp: 'ff' });
  assert.equal(decide({ local: absent, remote }).message, 'orchestrator holds a certificate certwrangler does not manage (list app.example.com in ADOPT_EXISTING to take it over)');
  assert.equal(decide({ local: absent, remote, origin: 'label' }).message, 'orchestrator holds a certificate certwrangler does not manage (a label never takes one over; the operator may, through DOMAINS and ADOPT_EXISTING)');
  const unreadable = decide({ local: absent, remote: { state: 'unreadable', error: 'bad', owned: false } });
  is(unreadable, 'none', 'Foreign');
  assert.equal(unreadable.describesRemote, false);
});

test('policy, served elsewhere: a self-signed copy in any form does not serve; a copy exactly at its renewal time does not either', () => {
  for (const remote of [copy(undefined, { ageDays: 5, selfSigned: true }), copy('production', { ageDays: 5, selfSigned: true }), copy('self-signed', { ageDays: 5 })]) {
    is(decide({ local: absent, remote }), 'issue', 'NoLocalCopy');
  }
  is(decide({ local: absent, remote: copy('production', { ageDays: 60 }) }), 'issue', 'NoLocalCopy');
  const served = decide({ local: absent, remote: copy('production', { ageDays: 59.9 }) });
  is(served, 'none', 'ServedElsewhere');
  assert.equal(served.renewAt?.getTime(), at(0.1).getTime(), 'the renewal time shown is the orchestrator copy\'s');
});

test('policy, pushed elsewhere: shown with the newer copy\'s renewal time; a copy from an unknown CA counts; not over a broken key or missing names', () => {
  const pushed = decide({ local: copy('production', { ageDays: 20 }), remote: copy('production', { ageDays: 5, fp: 'newer' }) });
  is(pushed, 'none', 'PushedElsewhere');
  assert.equal(pushed.renewAt?.getTime(), at(55).getTime());
  is(decide({ local: copy('production', { ageDays: 20 }), remote: copy(undefined, { ageDays: 5, fp: 'newer' }) }), 'none', 'PushedElsewhere');
  const mismatch = decide({ local: copy('production', { ageDays: 20, keyMatches: false }), remote: copy('production', { ageDays: 5, fp: 'newer' }) });
  is(mismatch, 'issue', 'LocalKeyMismatch');
  assert.equal(mismatch.message, 'local key does not match its certificate');
  // The local copy lacks a wanted name: reissued, though the newer copy has it.
  is(decide({ local: copy('production', { ageDays: 20, names: ['app.example.com'] }), remote: copy('production', { ageDays: 5, fp: 'newer' }) }), 'issue', 'NamesChanged');
  // The newer copy lacks a name the local one has: the local one is pushed over it.
  is(decide({ local: copy('production', { ageDays: 20, names: [...NAMES, 'old.example.com'] }), remote: copy('production', { ageDays: 5, fp: 'newer' }) }), 'push', 'RemoteDiffers');
});

test('policy: the messages of each reason, as plan and the status page show them', () => {
  assert.equal(decide({ local: copy('production', { names: ['other.example.com'] }) }).message, 'names changed: app.example.com, www.app.example.com not covered');
  assert.equal(decide({ local: fresh, remote: { state: 'unreadable', error: 'cert.pem: truncated', owned: true } }).message, 'orchestrator copy unreadable: cert.pem: truncated');
  assert.equal(decide({ remote: copy('production', { fp: 'other' }) }).message, 'orchestrator copy differs from the local copy');
  assert.equal(decide({ profile: 'tlsserver', caOffersProfiles: true }).message, "profile changed: ordered as the CA's default, now tlsserver is asked for");
  assert.equal(decide({ local: copy('staging'), remote: copy('staging') }).message, 'upgrade staging → production');
});

test('policy, profiles: a new profile asked for is a reissue even when the CA is not known to offer profiles', () => {
  for (const caOffersProfiles of [false, undefined]) {
    const d = decide({ local: copy('production', { profile: 'classic' }), profile: 'tlsserver', ...(caOffersProfiles === undefined ? {} : { caOffersProfiles }) });
    is(d, 'issue', 'ProfileChanged');
  }
});

test('policy, boundaries: exactly at notAfter the local copy is expired, the orchestrator\'s too; a backoff ending now no longer holds', () => {
  is(decide({ local: copy('production', { ageDays: 90 }), remote: absent }), 'issue', 'Expired');
  is(decide({ remote: copy('production', { ageDays: 90, fp: 'old' }) }), 'push', 'RemoteExpired');
  is(decide({ local: copy('production', { ageDays: 95 }), remote: absent, gate: { backoffUntil: NOW } }), 'issue', 'Expired');
  // A push is never held by the gate.
  const push = decide({ remote: absent, gate: { backoffUntil: at(1) } });
  is(push, 'push', 'NotInOrchestrator');
  assert.equal(push.held, undefined);
});

test('policy: an orchestrator copy from a CA we do not know is pushed over as different, not as a lower kind', () => {
  is(decide({ remote: copy(undefined, { fp: 'unknown' }) }), 'push', 'RemoteDiffers');
});

test('policy: a local copy from a CA we do not know is replaced like a placeholder', () => {
  is(decide({ local: copy(undefined) }), 'issue', 'ReplacePlaceholder');
});

test('policy, budget: a label certificate expiring exactly now is new (it may never validate again)', () => {
  const d = decide({ local: copy('production', { ageDays: 90 }), origin: 'label' });
  is(d, 'issue', 'Expired');
  assert.equal(d.order?.budget, 'new');
});

test('policy: only an order carries an order plan', () => {
  const none = decide({});
  is(none, 'none', 'UpToDate');
  assert.equal(none.order, undefined);
  const push = decide({ remote: absent });
  assert.equal(push.order, undefined);
});

test('policy, short lifetimes: under 30 days the renewal is shown to the second, from 30 days by the day', () => {
  const short = decide({ local: copy('production', { lifeDays: 29, ageDays: 1 }), remote: copy('production', { lifeDays: 29, ageDays: 1 }) });
  is(short, 'none', 'UpToDate');
  assert.match(short.message, /^up to date; renews 2027-01-19T08:00:00Z$/);
  const month = decide({ local: copy('production', { lifeDays: 30, ageDays: 1 }), remote: copy('production', { lifeDays: 30, ageDays: 1 }) });
  assert.equal(month.message, 'up to date; renews 2027-01-20');
});

test('policy, ARI: the early-renewal message with and without the CA\'s explanation; due exactly at the moment drawn', () => {
  const local = copy('production', { ageDays: 10 });
  const early = { start: new Date(NOW.getTime() - 2 * HOUR), end: at(1), at: NOW };
  const plain = decide({ local, ari: early });
  is(plain, 'issue', 'CARequestedEarlyRenewal');
  assert.equal(plain.message, 'the CA asks for early renewal: its renewal window opened 2026-12-31T22:00:00Z, before a third of the certificate\'s lifetime had passed (most likely it will be revoked)');
  const explained = decide({ local, ari: { ...early, explanationURL: 'https://ca.test/why' } });
  assert.match(explained.message, /\(most likely it will be revoked\); the CA explains at https:\/\/ca\.test\/why$/);
  assert.deepEqual(explained.renewalWindow, { start: early.start, end: early.end, explanationURL: 'https://ca.test/why', early: true });
  assert.equal(plain.order?.ariRenewal, true, 'the window has opened: an ARI renewal');
});

test('policy, ARI: renewal messages inside the window, exactly at its end, and after it closed', () => {
  const local = copy('production', { ageDays: 61 });
  const inside = decide({ local, ari: { start: at(-1), end: at(1), at: at(-0.5) } });
  is(inside, 'issue', 'Renew');
  assert.equal(inside.message, "expires in 29 days; inside the CA's renewal window 2026-12-31T00:00:00Z – 2027-01-02T00:00:00Z (ARI)");
  const atEnd = decide({ local, ari: { start: at(-1), end: NOW, at: at(-0.5) } });
  assert.equal(atEnd.message, "expires in 29 days; inside the CA's renewal window 2026-12-31T00:00:00Z – 2027-01-01T00:00:00Z (ARI)");
  const late = decide({ local, ari: { start: at(-2), end: at(-1), at: at(-1.5) } });
  assert.equal(late.message, "expires in 29 days; inside the CA's renewal window 2026-12-30T00:00:00Z – 2026-12-31T00:00:00Z (ARI); the window closed 2026-12-31T00:00:00Z, so now");
});

test('policy, ARI renewal: only of the kind ordered, only once the window has opened (exactly at its start counts)', () => {
  // Due by the lifetime rule, but staging is upgraded to production: a new certificate from the production CA.
  const upgrade = decide({ local: copy('staging', { ageDays: 61 }), remote: copy('staging', { ageDays: 61 }), ari: { start: at(-1), end: at(1), at: at(-0.5) } });
  is(upgrade, 'issue', 'UpgradeKind');
  assert.equal(upgrade.order?.ariRenewal, undefined);
  // Names changed before the window opens: an ordinary order.
  const names = decide({ local: copy('production', { names: ['app.example.com'] }), ari: { start: at(5), end: at(6), at: at(5.5) } });
  is(names, 'issue', 'NamesChanged');
  assert.equal(names.order?.ariRenewal, undefined);
  const start = decide({ local: copy('production', { ageDays: 61 }), ari: { start: NOW, end: at(1), at: NOW } });
  is(start, 'issue', 'Renew');
  assert.equal(start.order?.ariRenewal, true);
});
