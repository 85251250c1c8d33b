import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pollUntilSettled, PollTimeout, type Fetch } from '../../src/acme/poll.js';
import { retryAfterMs } from '../../src/retry.js';

/** A CA that answers `statuses` in turn, with an optional Retry-After per answer, on a simulated clock. */
function ca(statuses: string[], retryAfter: (string | undefined)[] = []) {
  let clock = 0;
  const waits: number[] = [];
  let i = 0;
  const fetch: Fetch = async () => {
    const status = statuses[Math.min(i, statuses.length - 1)]!;
    const ra = retryAfter[i];
    i++;
    return { status: 200, data: { status }, headers: ra === undefined ? {} : { 'retry-after': ra } };
  };
  const sleep = async (ms: number) => {
    waits.push(ms);
    clock += ms;
  };
  return { fetch, waits, sleep, now: () => clock, calls: () => i };
}

test('polling asks soon after the answer, then backs off to its ceiling', async () => {
  const c = ca(['pending', 'pending', 'pending', 'pending', 'pending', 'pending', 'pending', 'valid']);
  const got = await pollUntilSettled(c.fetch, 'https://ca/authz/1', { firstMs: 50, maxMs: 1000, deadlineMs: 60_000, sleep: c.sleep, now: c.now });
  assert.equal(got.status, 'valid');
  assert.equal(c.calls(), 8);
  assert.equal(c.waits[0], 50, 'the first look is 50 ms after the challenge was answered');
  for (let k = 1; k < c.waits.length; k++) {
    const ours = Math.min(1000, 50 * 2 ** k);
    assert.ok(c.waits[k]! >= ours * 0.75 && c.waits[k]! <= ours, `wait ${k} is ${c.waits[k]} ms, within the jitter of ${ours}`);
  }
});

test("the CA's Retry-After wins over our own backoff, in seconds or as a date", async () => {
  const c = ca(['processing', 'processing', 'valid'], ['3', new Date(1000 + 50 + 3000 + 7000).toUTCString()]);
  // The date form is read against the simulated clock, which starts at 0 = 1970-01-01T00:00:00Z.
  await pollUntilSettled(c.fetch, 'https://ca/order/1', { firstMs: 50, maxMs: 400, deadlineMs: 60_000, sleep: c.sleep, now: () => c.now() });
  assert.equal(c.waits[1], 3000, 'Retry-After: 3 → 3 s, past our 400 ms ceiling');
  assert.ok(Math.abs(c.waits[2]! - 8000) <= 1000, `Retry-After as a date → the time until it (${c.waits[2]} ms)`);
});

test('a final status other than valid is returned for the caller to judge; pending past the deadline is an error naming the URL', async () => {
  const bad = ca(['pending', 'invalid']);
  assert.equal((await pollUntilSettled(bad.fetch, 'u', { firstMs: 10, maxMs: 100, deadlineMs: 1000, sleep: bad.sleep, now: bad.now })).status, 'invalid');

  const stuck = ca(['pending']);
  await assert.rejects(
    pollUntilSettled(stuck.fetch, 'https://ca/authz/9', { firstMs: 100, maxMs: 1000, deadlineMs: 5000, sleep: stuck.sleep, now: stuck.now }),
    (e: Error) => e instanceof PollTimeout && /still pending after 5 s \(https:\/\/ca\/authz\/9\)/.test(e.message),
  );
  assert.ok(stuck.now() <= 5000 + 100, 'it stops at the deadline, not a backoff step later');
});

test('Retry-After parsing', () => {
  assert.equal(retryAfterMs('120', 0), 120_000);
  assert.equal(retryAfterMs(' 5 ', 0), 5000);
  assert.equal(retryAfterMs('Thu, 01 Jan 1970 00:00:10 GMT', 4000), 6000);
  assert.equal(retryAfterMs('Thu, 01 Jan 1970 00:00:01 GMT', 4000), 0, 'a date in the past means now');
  assert.equal(retryAfterMs('soon', 0), undefined);
  assert.equal(retryAfterMs(undefined, 0), undefined);
  assert.equal(retryAfterMs('', 0), undefined);
});
