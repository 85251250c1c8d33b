import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log.js';
import { decideAction, type PolicyInput } from '../../src/policy.js';
import { finish, logDecisions, nextWake } from '../../src/report.js';
import type { PassDeps } from '../../src/reconciler.js';
import type { Decided } from '../../src/observe.js';
import type { CertInfo } from '../../src/certs/parse.js';

const NOW = new Date('2027-01-01T00:00:00Z');
const DAY = 86_400_000;

function lines(run: (log: ReturnType<typeof createLogger>) => void): { level: string; msg: string }[] {
  const out: string[] = [];
  run(createLogger('info', { write: (s: string) => void out.push(s) }));
  return out.map((l) => JSON.parse(l) as { level: string; msg: string });
}

function decided(name: string, opts: { staging?: boolean; ageDays?: number; renewBeforeDays?: number }): Decided {
  const notBefore = new Date(NOW.getTime() - (opts.ageDays ?? 10) * DAY);
  const info: CertInfo = { commonName: name, names: [name], notBefore, notAfter: new Date(notBefore.getTime() + 90 * DAY), fingerprint: 'aa', fingerprintSha1: 'aa', issuer: 'CN=CA', subject: `CN=${name}`, serialNumber: '1', selfSigned: false };
  const copy = { state: 'present' as const, info, kind: 'production' as const, keyMatches: true, owned: true };
  const input: PolicyInput = { wanted: { name, names: [name], kind: opts.staging ? 'staging' : 'production', origin: 'DOMAINS' }, local: copy, remote: copy, now: NOW, policy: { renewBeforeDays: opts.renewBeforeDays, adoptExisting: false, placeholders: true } };
  return { wanted: { name, names: [name], sources: ['DOMAINS'], origin: 'DOMAINS' }, local: { state: 'absent' }, status: { failures: 0 }, localCopy: copy, remoteCopy: copy, adopt: false, input, decision: decideAction(input) };
}

test('a clamped RENEW_BEFORE_DAYS is warned about once per certificate, not on every pass', () => {
  const pass = () => [decided('a.example.com', { renewBeforeDays: 90 }), decided('b.example.com', { renewBeforeDays: 90 })];
  const warns = lines((log) => {
    for (let i = 0; i < 5; i++) logDecisions(log, pass());
  }).filter((l) => l.level === 'warn');
  assert.deepEqual(warns.map((w) => w.msg), [
    'a.example.com: RENEW_BEFORE_DAYS=90 is outside what a 90-day certificate allows; renewing 60 days before expiry instead (a third of its lifetime must pass first)',
    'b.example.com: RENEW_BEFORE_DAYS=90 is outside what a 90-day certificate allows; renewing 60 days before expiry instead (a third of its lifetime must pass first)',
  ]);
});

test('STAGING=true with production in service: one warning a pass, however many certificates are kept', () => {
  const warns = lines((log) => {
    logDecisions(log, [decided('c.example.com', { staging: true, ageDays: 70 }), decided('d.example.com', { staging: true, ageDays: 70 })]);
    logDecisions(log, [decided('c.example.com', { staging: true, ageDays: 70 })]);
  }).filter((l) => l.level === 'warn');
  assert.equal(warns.length, 2);
  assert.match(warns[0]!.msg, /^STAGING=true, but 2 certificates with a production certificate in service are ordered from the production directory: STAGING would downgrade them/);
});

test('a refused label is the tenant\'s: shown, but the pass is still ok; a refusal in DOMAINS or the API is the operator\'s and is not', () => {
  const label = { spec: 'evil.example.org', source: 'label com.danieldent.rancher-lets-encrypt.hosts on service intruder (1s9)', error: 'outside LABEL_ALLOWED_DOMAINS' };
  const started = new Date();
  const byLabel = finish(undefined, started, [], [label], []);
  assert.equal(byLabel.ok, true, '`manager --once` exits 0 and `reconcile --wait` answers 200');
  assert.deepEqual(byLabel.refused, [label], 'the refusal is still in the report, for the status page');
  assert.equal(finish(undefined, started, [], [label, { spec: 'co.uk', source: 'DOMAINS', error: 'a public suffix' }], []).ok, false);
  assert.equal(finish(undefined, started, [], [{ spec: 'co.uk', source: 'api', error: 'a public suffix' }], []).ok, false);
});

test('the manager wakes for the earliest retry; one already past (a reload whose retry just failed) a minute on, never forgotten', async () => {
  const now = new Date('2027-03-01T00:00:00Z');
  const deps = (reload: Date | undefined) => ({ orchestrator: { nextReloadAt: async () => reload }, log: createLogger('silent') }) as unknown as PassDeps;
  const result = (nextAttempt?: string) => ({ nextAttempt }) as unknown as Parameters<typeof nextWake>[1][number];
  assert.equal(await nextWake(deps(new Date('2027-03-01T00:02:00Z')), [result('2027-03-01T01:00:00Z'), result()], now), '2027-03-01T00:02:00.000Z');
  assert.equal(await nextWake(deps(new Date('2027-02-28T23:00:00Z')), [result('2027-03-01T01:00:00Z')], now), '2027-03-01T00:01:00.000Z');
  assert.equal(await nextWake(deps(undefined), [result()], now), undefined, 'nothing waits: the schedule is enough');
});
