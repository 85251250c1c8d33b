import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAction, CHAIN, renewalTime, type Copy, type PolicyInput, type Action } from '../../src/policy.js';
import type { CertInfo } from '../../src/certs/parse.js';
import type { Kind } from '../../src/certs/kind.js';

const NOW = new Date('2027-01-01T00:00:00Z');
const DAY = 86_400_000;
const NAMES = ['app.example.com', 'www.app.example.com'];

/** A certificate issued `ageDays` ago with a 90-day life. Renewal (1/3 left) falls at day 60. */
function info(opts: { ageDays?: number; names?: string[]; fp?: string } = {}): CertInfo {
  const notBefore = new Date(NOW.getTime() - (opts.ageDays ?? 10) * DAY);
  return {
    commonName: (opts.names ?? NAMES)[0],
    names: opts.names ?? NAMES,
    notBefore,
    notAfter: new Date(notBefore.getTime() + 90 * DAY),
    fingerprint: opts.fp ?? 'aa',
    fingerprintSha1: 'aa',
    issuer: 'CN=Test CA',
    subject: 'CN=app.example.com',
    serialNumber: '1',
    selfSigned: false,
  };
}

const absent: Copy = { state: 'absent' };
const local = (kind: Kind, o: Parameters<typeof info>[0] = {}, keyMatches = true): Copy => ({ state: 'present', info: info(o), kind, keyMatches, owned: true });
const remote = (kind: Kind | undefined, o: Parameters<typeof info>[0] = {}, owned = true): Copy => ({ state: 'present', info: info(o), kind, keyMatches: true, owned });

interface Row {
  name: string;
  local: Copy;
  remote: Copy;
  want?: Kind;
  names?: string[];
  policy?: Partial<PolicyInput['policy']>;
  backoffUntil?: Date;
  action: Action;
  reason: string;
  message?: RegExp;
}

const rows: Row[] = [
  // DESIGN §3 rule 1
  { name: 'foreign certificate with a wanted name is left alone', local: absent, remote: remote(undefined, { fp: 'ff' }, false), action: 'none', reason: 'Foreign', message: /does not manage/ },
  { name: 'foreign certificate is taken over with ADOPT_EXISTING', local: absent, remote: remote(undefined, { fp: 'ff' }, false), policy: { adoptExisting: true }, action: 'issue', reason: 'NoLocalCopy' },
  { name: 'foreign certificate beside a usable local copy: still left alone', local: local('production'), remote: remote('production', { fp: 'ff' }, false), action: 'none', reason: 'Foreign' },
  // rule 2
  { name: 'nothing anywhere: placeholder first', local: absent, remote: absent, action: 'placeholder', reason: 'NoCertificate', message: /placeholder first/ },
  { name: 'nothing anywhere, placeholders off: issue', local: absent, remote: absent, policy: { placeholders: false }, action: 'issue', reason: 'NoLocalCopy' },
  // rule 3, and the seed's "no local copy → create, push" (in orchestrator or not)
  { name: 'seed: no local copy, in orchestrator → create, push', local: absent, remote: remote('production'), action: 'issue', reason: 'NoLocalCopy', message: /no local copy/ },
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
];

for (const row of rows) {
  test(`policy: ${row.name}`, () => {
    const d = decideAction({
      wanted: { name: NAMES[0]!, names: row.names ?? NAMES, kind: row.want ?? 'production' },
      local: row.local,
      remote: row.remote,
      now: NOW,
      policy: { renewBeforeDays: undefined, adoptExisting: false, placeholders: true, ...row.policy },
      ...(row.backoffUntil ? { backoffUntil: row.backoffUntil } : {}),
    });
    assert.equal(d.action, row.action, d.message);
    assert.equal(d.reason, row.reason, d.message);
    if (row.message) assert.match(d.message, row.message);
  });
}

test('policy: every check in the chain is exercised by a row', () => {
  const reasonsByCheck: Record<string, string[]> = {
    remoteIsForeign: ['Foreign'],
    nothingAnywhere: ['NoCertificate'],
    localNotUsable: ['NoLocalCopy', 'LocalUnreadable', 'LocalKeyMismatch', 'NamesChanged', 'UpgradeKind', 'ReplacePlaceholder', 'Expired', 'Renew'],
    remoteDiffers: ['NotInOrchestrator', 'RemoteUnreadable', 'RemoteExpired', 'RemoteLowerKind', 'RemoteDiffers'],
    upToDate: ['UpToDate'],
  };
  assert.deepEqual(CHAIN.map(([n]) => n), Object.keys(reasonsByCheck));
  const covered = new Set(rows.map((r) => r.reason));
  for (const reasons of Object.values(reasonsByCheck)) for (const r of reasons) assert.ok(covered.has(r), `no row for ${r}`);
});

test('policy: renewal time is two thirds into the lifetime unless RENEW_BEFORE_DAYS is set', () => {
  const i = info({ ageDays: 0 });
  assert.equal(renewalTime(i, undefined).getTime(), i.notBefore.getTime() + 60 * DAY);
  assert.equal(renewalTime(i, 30).getTime(), i.notAfter.getTime() - 30 * DAY);
});
