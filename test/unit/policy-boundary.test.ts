/**
 * Issue 23: the renewal boundary to the millisecond. At exactly `renewAt` a certificate is due (Renew), one
 * millisecond before it is not (UpToDate): for the default window, for RENEW_BEFORE_DAYS inside the bounds,
 * and for each clamp. A renewal half a day (or one millisecond) late or early fails a row here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAction, renewalSchedule, type Copy } from '../../src/policy.js';
import type { CertInfo } from '../../src/certs/parse.js';

const DAY = 86_400_000;
const ISSUED = new Date('2027-01-01T00:00:00Z');
const NAMES = ['edge.example.com'];

function cert(lifeDays: number): CertInfo {
  return {
    commonName: NAMES[0],
    names: NAMES,
    notBefore: ISSUED,
    notAfter: new Date(ISSUED.getTime() + lifeDays * DAY),
    fingerprint: 'aa',
    fingerprintSha1: 'aa',
    issuer: 'CN=Test CA',
    subject: `CN=${NAMES[0]}`,
    serialNumber: '1',
    selfSigned: false,
  };
}

function decideAt(info: CertInfo, now: Date, renewBeforeDays: number | undefined) {
  const copy: Copy = { state: 'present', info, kind: 'production', keyMatches: true, owned: true };
  return decideAction({
    wanted: { name: NAMES[0]!, names: NAMES, kind: 'production', origin: 'DOMAINS' },
    local: copy,
    remote: copy,
    now,
    policy: { renewBeforeDays, adoptExisting: false, placeholders: true },
  });
}

// [what, lifetime in days, RENEW_BEFORE_DAYS, days after issue at which it falls due]
const EDGES: [string, number, number | undefined, number][] = [
  ['90-day, default window (a third of the life left)', 90, undefined, 60],
  ['6-day, default window', 6, undefined, 4],
  ['90-day, RENEW_BEFORE_DAYS=30 (inside the bounds)', 90, 30, 60],
  ['90-day, RENEW_BEFORE_DAYS=45 (inside the bounds)', 90, 45, 45],
  ['90-day, RENEW_BEFORE_DAYS=60 (exactly at the floor: not clamped)', 90, 60, 30],
  ['90-day, RENEW_BEFORE_DAYS=9 (exactly at the ceiling: not clamped)', 90, 9, 81],
  ['90-day, RENEW_BEFORE_DAYS=80 (clamped to the floor: a third of the life passed)', 90, 80, 30],
  ['90-day, RENEW_BEFORE_DAYS=2 (clamped to the ceiling: a tenth of the life left)', 90, 2, 81],
  ['30-day, RENEW_BEFORE_DAYS=25 (clamped to the floor)', 30, 25, 10],
  ['30-day, RENEW_BEFORE_DAYS=1 (clamped to the ceiling)', 30, 1, 27],
];

for (const [what, lifeDays, before, dueDay] of EDGES) {
  test(`policy boundary: ${what}: due at exactly day ${dueDay}, up to date 1 ms before`, () => {
    const info = cert(lifeDays);
    const renewAt = new Date(ISSUED.getTime() + dueDay * DAY);
    const early = decideAt(info, new Date(renewAt.getTime() - 1), before);
    assert.equal(early.reason, 'UpToDate', `1 ms before: ${early.message}`);
    assert.equal(early.action, 'none');
    assert.equal(early.renewAt?.toISOString(), renewAt.toISOString(), 'the status page shows the same time');
    const due = decideAt(info, renewAt, before);
    assert.equal(due.reason, 'Renew', `at renewAt: ${due.message}`);
    assert.equal(due.action, 'issue');
    const left = lifeDays - dueDay;
    assert.equal(due.message, `expires in ${left} days (renew at ${left})`);
  });
}

test('policy boundary: the clamp is said only outside the bounds, and names the certificate\'s lifetime and the rule that applied', () => {
  const info = cert(90);
  assert.equal(renewalSchedule(info, 60).clamped, undefined, 'at the floor');
  assert.equal(renewalSchedule(info, 9).clamped, undefined, 'at the ceiling');
  assert.equal(renewalSchedule(info, 60.5).clamped, 'RENEW_BEFORE_DAYS=60.5 is outside what a 90-day certificate allows; renewing 60 days before expiry instead (a third of its lifetime must pass first)');
  assert.equal(renewalSchedule(info, 8.5).clamped, 'RENEW_BEFORE_DAYS=8.5 is outside what a 90-day certificate allows; renewing 9 days before expiry instead (never later than its last tenth)');
  assert.equal(renewalSchedule(info, 8.5).rule, '9 days before expiry: RENEW_BEFORE_DAYS=8.5 clamped for a 90-day certificate (never later than its last tenth)');
  assert.equal(renewalSchedule(info, undefined).rule, 'when a third of its lifetime is left');
  // A lifetime that is not a whole number of days is shown to a tenth of a day.
  const odd = { ...info, notAfter: new Date(ISSUED.getTime() + 47.25 * DAY) };
  assert.match(renewalSchedule(odd, 1).rule, /^4\.7 days before expiry: RENEW_BEFORE_DAYS=1 clamped for a 47\.3-day certificate/);
});
