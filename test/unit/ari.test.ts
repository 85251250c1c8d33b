import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterFetch, ariCertId, ariInputOf, isEarlyWindow, momentInWindow, nextFetchAfter, parseRenewalInfo } from '../../src/acme/ari.js';

// RFC 9773 Appendix A: the example certificate, whose CertID §4.1 gives as "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
// (keyIdentifier 69:88:5B:6B:…:C8:D4, serial 0x00 87 65 43 21: the leading zero byte is part of the DER).
const RFC_9773_EXAMPLE = `-----BEGIN CERTIFICATE-----
MIIBQzCB66ADAgECAgUAh2VDITAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpFeGFt
cGxlIENBMCIYDzAwMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBYxFDAS
BgNVBAMTC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeBZu
7cbpAYNXZLbbh8rNIzuOoqOOtmxA1v7cRm//AwyMwWxyHz4zfwmBhcSrf47NUAFf
qzLQ2PPQxdTXREYEnKMjMCEwHwYDVR0jBBgwFoAUaYhba4dGQEHhs3uEe6CuLN4B
yNQwCgYIKoZIzj0EAwIDRwAwRAIge09+S5TZAlw5tgtiVvuERV6cT4mfutXIlwTb
+FYN/8oCIClDsqBklhB9KAelFiYt9+6FDj3z4KGVelYM5MdsO3pK
-----END CERTIFICATE-----`;

const DAY = 86_400_000;
const T0 = new Date('2027-03-01T00:00:00Z');

test('ARI CertID of RFC 9773\'s own example certificate is the one the RFC gives', () => {
  assert.equal(ariCertId(RFC_9773_EXAMPLE), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
});

test('a RenewalInfo answer: a window is read; a malformed one is an error naming what is wrong', () => {
  const w = parseRenewalInfo({ suggestedWindow: { start: '2027-03-02T00:00:00Z', end: '2027-03-03T00:00:00Z' }, explanationURL: 'https://ca.test/incident' });
  assert.equal(w.start.toISOString(), '2027-03-02T00:00:00.000Z');
  assert.equal(w.explanationURL, 'https://ca.test/incident');
  assert.throws(() => parseRenewalInfo({ suggestedWindow: { start: 'soon' } }), /suggestedWindow\.start and \.end/);
  assert.throws(() => parseRenewalInfo({ suggestedWindow: { start: '2027-03-03T00:00:00Z', end: '2027-03-02T00:00:00Z' } }), /ends .* before it starts/);
});

test('the renewal moment is uniform inside the window, and kept while the window stays', () => {
  const w = { start: T0, end: new Date(T0.getTime() + DAY) };
  assert.equal(momentInWindow(w, () => 0).toISOString(), T0.toISOString());
  assert.equal(momentInWindow(w, () => 0.5).getTime(), T0.getTime() + DAY / 2);
  const draws = Array.from({ length: 1000 }, () => momentInWindow(w).getTime());
  assert.ok(draws.every((t) => t >= w.start.getTime() && t < w.end.getTime()));
  const firstHalf = draws.filter((t) => t < T0.getTime() + DAY / 2).length;
  assert.ok(firstHalf > 400 && firstHalf < 600, `${firstHalf} of 1000 in the first half`);

  const s1 = afterFetch(undefined, 'id.1', T0, { window: w, retryAfterMs: 3_600_000 }, () => 0.25);
  const s2 = afterFetch(s1, 'id.1', new Date(T0.getTime() + 3_600_000), { window: w, retryAfterMs: 3_600_000 }, () => 0.9);
  assert.equal(s2.renewAt, s1.renewAt, 'same window, same moment');
  const moved = { start: new Date(T0.getTime() - DAY), end: new Date(T0.getTime() - DAY / 2) };
  const s3 = afterFetch(s2, 'id.1', T0, { window: moved, retryAfterMs: undefined }, () => 0.5);
  assert.notEqual(s3.renewAt, s2.renewAt, 'a moved window draws again');
  assert.equal(ariInputOf(s3, 'id.2'), undefined, 'a state is about one certificate only');
});

test('Retry-After is honoured between a minute and a day; failures back off and keep the last window', () => {
  assert.equal(nextFetchAfter(T0, 5_000).getTime() - T0.getTime(), 60_000);
  assert.equal(nextFetchAfter(T0, 3 * DAY).getTime() - T0.getTime(), DAY);
  assert.equal(nextFetchAfter(T0, 2 * 3_600_000).getTime() - T0.getTime(), 2 * 3_600_000);
  assert.equal(nextFetchAfter(T0, undefined).getTime() - T0.getTime(), 6 * 3_600_000);
  const ok = afterFetch(undefined, 'id.1', T0, { window: { start: T0, end: new Date(T0.getTime() + DAY) }, retryAfterMs: undefined });
  const f1 = afterFetch(ok, 'id.1', T0, { error: 'ECONNREFUSED' });
  const f2 = afterFetch(f1, 'id.1', T0, { error: 'ECONNREFUSED' });
  assert.equal(Date.parse(f1.nextFetch) - T0.getTime(), 15 * 60_000);
  assert.equal(Date.parse(f2.nextFetch) - T0.getTime(), 30 * 60_000);
  assert.deepEqual(f2.window, ok.window);
  let f = f2;
  for (let i = 0; i < 20; i++) f = afterFetch(f, 'id.1', T0, { error: 'x' });
  assert.equal(Date.parse(f.nextFetch) - T0.getTime(), DAY);
});

test('a window that opens before a third of the lifetime has passed is the CA asking for early renewal', () => {
  const nb = T0;
  for (const days of [6, 45, 64, 90]) {
    const na = new Date(nb.getTime() + days * DAY);
    assert.equal(isEarlyWindow({ start: new Date(nb.getTime() + (days / 3) * DAY - 1000) }, nb, na), true, `${days} days`);
    assert.equal(isEarlyWindow({ start: new Date(nb.getTime() + (days / 2) * DAY) }, nb, na), false, `${days} days`);
  }
});
