/**
 * Issue 17 item 3: every timing rule holds for 6-day certificates (Let's Encrypt's shortlived profile) as it
 * does for 45-, 64- and 90-day ones (the classic profile's lifetimes from 2028, 2027 and today).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renewalTime } from '../../src/policy.js';
import { backoffDelay } from '../../src/act.js';
import { healthOf, StatusBook } from '../../src/status/book.js';
import type { CertInfo } from '../../src/certs/parse.js';
import type { PassReport } from '../../src/reconciler.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = new Date('2027-03-01T00:00:00Z');
const LIFETIMES = [6, 45, 64, 90];

const cert = (days: number): CertInfo => ({ commonName: undefined, names: ['a.example.com'], notBefore: T0, notAfter: new Date(T0.getTime() + days * DAY), fingerprint: 'aa', fingerprintSha1: 'aa', issuer: 'CN=CA', subject: '', serialNumber: '1', selfSigned: false });

for (const days of LIFETIMES) {
  test(`${days}-day certificate: renewed when a third of its lifetime is left`, () => {
    assert.equal(renewalTime(cert(days), undefined).getTime(), T0.getTime() + (days * DAY * 2) / 3);
  });

  test(`${days}-day certificate: a run of failed renewals keeps trying until the end, never waiting more than a quarter of the time left`, () => {
    const c = cert(days);
    const end = c.notAfter.getTime();
    let t = renewalTime(c, undefined).getTime();
    let failures = 0;
    let last = t;
    while (t < end && failures < 200) {
      last = t;
      failures++;
      const wait = backoffDelay(failures, end - t);
      assert.ok(wait <= Math.max((end - t) / 4, 15 * 60_000), `wait ${wait / HOUR} h with ${(end - t) / HOUR} h left`);
      t += wait;
    }
    assert.ok(end - last <= HOUR, `the last try is ${(end - last) / HOUR} h before expiry`);
  });

  test(`${days}-day certificate: the status banner warns in its last tenth, not before`, () => {
    const row = (at: number) => ({ name: 'a.example.com', names: ['a.example.com'], sources: ['DOMAINS'], decision: { action: 'none', reason: 'UpToDate', message: '' }, kind: 'production' as const, notBefore: T0.toISOString(), notAfter: cert(days).notAfter.toISOString(), at });
    const before = new Date(T0.getTime() + days * DAY * 0.89);
    const within = new Date(T0.getTime() + days * DAY * 0.91);
    assert.equal(healthOf(row(0), before), 'ok');
    assert.equal(healthOf(row(0), within), 'expiring');
    const book = new StatusBook('test');
    const report: PassReport = { startedAt: within.toISOString(), finishedAt: within.toISOString(), ok: true, errors: [], refused: [], results: [{ name: 'a.example.com', names: ['a.example.com'], sources: ['DOMAINS'], decision: { action: 'none', reason: 'UpToDate', message: '' }, outcome: 'ok', orders: 0, pushed: false, placeholder: false, kind: 'production', notBefore: T0.toISOString(), notAfter: cert(days).notAfter.toISOString() }] };
    book.record(report);
    const [alert] = book.snapshot(within).alerts;
    const unit = days * 0.09 < 2 ? 'hours' : 'days';
    assert.match(alert ?? '', new RegExp(`^a\\.example\\.com expires in \\d+ ${unit} .*in the last tenth of its life`));
  });
}
