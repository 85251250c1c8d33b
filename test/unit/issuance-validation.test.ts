/**
 * src/acme/issue.ts validations(): the answered authorizations' validation waited for on the order (RFC 8555
 * §7.1.6), and the cases that fall back to each authorization's own polling. A CA of canned answers, on a
 * simulated clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AcmeError, validations, type Answered } from '../../src/acme/issue.js';
import type { Fetch, PollOptions } from '../../src/acme/poll.js';

/** Answers each URL with its statuses in turn (the last one repeated); an Error in the list is thrown. */
function ca(answers: Record<string, (string | Error | object)[]>) {
  const asked: string[] = [];
  const seen = new Map<string, number>();
  const fetch: Fetch = async (url) => {
    asked.push(url);
    const list = answers[url];
    if (!list) throw new Error(`unexpected ${url}`);
    const i = seen.get(url) ?? 0;
    seen.set(url, i + 1);
    const a = list[Math.min(i, list.length - 1)]!;
    if (a instanceof Error) throw a;
    return { status: 200, data: typeof a === 'string' ? { status: a } : a, headers: {} };
  };
  let clock = 0;
  const poll: PollOptions = { firstMs: 20, maxMs: 4000, deadlineMs: 10_000, sleep: async (ms) => void (clock += ms), now: () => clock };
  return { fetch, asked, poll };
}

const A: Answered = { name: 'a.example.com', url: 'authz/a' };
const B: Answered = { name: 'b.example.com', url: 'authz/b' };
const ok = <T>(value: T): PromiseSettledResult<T> => ({ status: 'fulfilled', value });

test('every challenge answered: the order is polled until ready, and no authorization is read', async () => {
  const c = ca({ order: ['pending', 'pending', 'ready'] });
  const r = await validations(c.fetch, 'order', [ok(A), ok(undefined), ok(B)], c.poll);
  assert.deepEqual(r.map((x) => x.status), ['fulfilled', 'fulfilled', 'fulfilled']);
  assert.deepEqual(c.asked, ['order', 'order', 'order']);
});

test('the order invalid: each answered authorization is read once; the failed one carries the CA reason, at the step "validation"', async () => {
  const c = ca({
    order: ['invalid'],
    'authz/a': ['valid'],
    'authz/b': [{ status: 'invalid', challenges: [{ type: 'http-01', error: { type: 'urn:ietf:params:acme:error:connection', detail: 'refused' } }] }],
  });
  const r = await validations(c.fetch, 'order', [ok(A), ok(B)], c.poll);
  assert.equal(r[0]!.status, 'fulfilled');
  assert.equal(r[1]!.status, 'rejected');
  const e = (r[1] as PromiseRejectedResult).reason as AcmeError;
  assert.ok(e instanceof AcmeError);
  assert.equal(e.step, 'validation');
  assert.equal(e.message, 'b.example.com: authorization invalid: urn:ietf:params:acme:error:connection refused');
  assert.deepEqual(c.asked, ['order', 'authz/a', 'authz/b']);
});

test('the order invalid while an authorization is still pending: that one is polled until it settles', async () => {
  const c = ca({ order: ['invalid'], 'authz/a': ['pending', 'pending', 'valid'], 'authz/b': ['invalid'] });
  const r = await validations(c.fetch, 'order', [ok(A), ok(B)], c.poll);
  assert.deepEqual(r.map((x) => x.status), ['fulfilled', 'rejected']);
  assert.equal(c.asked.filter((u) => u === 'authz/a').length, 3);
});

test('a challenge that could not be answered: the others are polled on their own, the order is not asked', async () => {
  const c = ca({ 'authz/a': ['pending', 'valid'] });
  const r = await validations(c.fetch, 'order', [ok(A), { status: 'rejected', reason: new Error('no solver') }], c.poll);
  assert.deepEqual(r.map((x) => x.status), ['fulfilled', 'fulfilled']);
  assert.ok(!c.asked.includes('order'));
});

test('the order cannot be read: each authorization is polled on its own instead', async () => {
  const c = ca({ order: [new Error('socket hang up')], 'authz/a': ['valid'], 'authz/b': ['valid'] });
  const r = await validations(c.fetch, 'order', [ok(A), ok(B)], c.poll);
  assert.deepEqual(r.map((x) => x.status), ['fulfilled', 'fulfilled']);
  assert.deepEqual(c.asked, ['order', 'authz/a', 'authz/b']);
});

test('the order still pending at the deadline: each answered name fails with that timeout, not at "validation" (no failed validation is counted)', async () => {
  const c = ca({ order: ['pending'] });
  const r = await validations(c.fetch, 'order', [ok(A), ok(undefined), ok(B)], c.poll);
  assert.deepEqual(r.map((x) => x.status), ['rejected', 'fulfilled', 'rejected']);
  const e = (r[0] as PromiseRejectedResult).reason as AcmeError;
  assert.equal(e.step, 'a.example.com: validation');
  assert.match(e.message, /^a\.example\.com: validation: still pending after 10 s \(order\)$/);
  assert.ok(c.asked.every((u) => u === 'order'), 'no second wait per authorization');
});
