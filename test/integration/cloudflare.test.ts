/**
 * The cloudflare provider against a loopback server that answers like Cloudflare's API v4: the zone found
 * in a paged list by walking up the name, records created and deleted, and the errors an operator meets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloudflareProvider } from '../../src/acme/dns01/cloudflare/cloudflare.js';
import { loadConfig } from '../../src/config.js';
import { startCloudflareSim, type CloudflareSim } from '../support/cloudflare-sim.js';

function provider(sim: CloudflareSim, token = sim.token): CloudflareProvider {
  return new CloudflareProvider({ apiUrl: sim.apiUrl, token, ttl: 120, timeoutMs: 3000, retryBaseMs: 20 });
}

async function withSim(zones: string[], body: (sim: CloudflareSim) => Promise<void>): Promise<void> {
  const sim = await startCloudflareSim({ zones });
  try {
    await body(sim);
  } finally {
    await sim.close();
  }
}

/** 120 zones: three pages of 50, with the ones under test on the last page. */
const manyZones = [...Array.from({ length: 117 }, (_, i) => `zone${i}.example.net`), 'example.com', 'sub.example.com', 'example.org'];

test('the zone is found on the third page of the zone list, the closest one to the name; the record is created and deleted', async () => {
  await withSim(manyZones, async (sim) => {
    const p = provider(sim);
    await p.present('_acme-challenge.www.sub.example.com', 'value-1');
    assert.deepEqual(
      sim.requests.map((r) => `${r.method} ${r.path} ${r.status}`),
      ['GET /zones?page=1&per_page=50 200', 'GET /zones?page=2&per_page=50 200', 'GET /zones?page=3&per_page=50 200', `POST /zones/${sim.zones[118]!.id}/dns_records 200`],
    );
    assert.deepEqual(
      sim.records.map((r) => [r.zone_name, r.name, r.type, r.content, r.ttl]),
      [['sub.example.com', '_acme-challenge.www.sub.example.com', 'TXT', 'value-1', 120]],
    );
    // The list is kept: the next name costs one request.
    await p.present('_acme-challenge.example.com', 'value-2');
    assert.equal(sim.requests.length, 5);
    assert.equal(sim.records[1]!.zone_name, 'example.com');
    await p.cleanup('_acme-challenge.www.sub.example.com', 'value-1');
    await p.cleanup('_acme-challenge.example.com', 'value-2');
    assert.deepEqual(sim.records, []);
    assert.deepEqual(sim.requests.slice(5).map((r) => `${r.method} ${r.status}`), ['DELETE 200', 'DELETE 200']);
  });
});

test('a wrong token is reported with Cloudflare\'s words and what the token needs, and never shown', async () => {
  await withSim(['example.com'], async (sim) => {
    const wrong = 'wrong-token-abcdef';
    await assert.rejects(provider(sim, wrong).present('_acme-challenge.example.com', 'v'), (e: Error) => {
      assert.match(e.message, /Cloudflare GET \/zones\?page=1&per_page=50: HTTP 403: 10000 Authentication error \(check CLOUDFLARE_DNS_API_TOKEN: it needs Zone:Read and DNS:Edit/);
      assert.ok(!e.message.includes(wrong));
      return true;
    });
  });
});

test('a name in no zone the token can see: the list is read again once, then a clear error', async () => {
  await withSim(['example.com'], async (sim) => {
    await assert.rejects(provider(sim).present('_acme-challenge.example.org', 'v'), /no zone that CLOUDFLARE_DNS_API_TOKEN can read holds _acme-challenge\.example\.org/);
    assert.equal(sim.requests.filter((r) => r.path.startsWith('/zones?')).length, 2);
  });
});

test('429 with Retry-After and 5xx answers are retried after a wait; an API that keeps failing gives up with its error', async () => {
  await withSim(['example.com'], async (sim) => {
    sim.faults.push({ status: 429, code: 971, message: 'Please wait and consider throttling your request speed', retryAfter: 1 }, { status: 502 });
    const started = Date.now();
    await provider(sim).present('_acme-challenge.example.com', 'v');
    assert.ok(Date.now() - started >= 1000, 'Retry-After: 1 is honoured');
    assert.deepEqual(sim.requests.map((r) => r.status), [429, 502, 200, 200]);
    assert.equal(sim.records.length, 1);
    sim.faults.push(...Array.from({ length: 5 }, () => ({ status: 503 })));
    await assert.rejects(provider(sim).cleanup('_acme-challenge.example.com', 'v'), /HTTP 503: 10001 service unavailable/);
    assert.equal(sim.records.length, 1, 'nothing deleted by a failing API');
  });
});

test('a record that already exists (a retried create) is adopted; one deleted by someone else is not an error', async () => {
  await withSim(['example.com'], async (sim) => {
    const first = provider(sim);
    await first.present('_acme-challenge.example.com', 'same');
    // A second process (or a retry whose first answer was lost) creates the identical record.
    const second = provider(sim);
    await second.present('_acme-challenge.example.com', 'same');
    assert.equal(sim.records.length, 1);
    assert.ok(sim.requests.some((r) => r.method === 'POST' && r.status === 400), 'Cloudflare refused the duplicate');
    await second.cleanup('_acme-challenge.example.com', 'same');
    assert.deepEqual(sim.records, []);
    await first.cleanup('_acme-challenge.example.com', 'same');
    assert.deepEqual(sim.requests.at(-1), { method: 'DELETE', path: sim.requests.at(-1)!.path, status: 404 }, 'already gone (81044): cleanup succeeds');
  });
});

test('configuration: CLOUDFLARE_* variables, with the token hidden in errors', () => {
  const base = { DNS_PROVIDER: 'cloudflare', DATA_DIR: '/tmp/x' };
  const dns = loadConfig({ ...base, CLOUDFLARE_DNS_API_TOKEN: 't0ken' }).dns;
  assert(dns?.provider === 'cloudflare');
  assert.deepEqual(dns.options, { apiUrl: 'https://api.cloudflare.com/client/v4', token: 't0ken', ttl: 120 });
  assert.throws(() => loadConfig(base), /CLOUDFLARE_DNS_API_TOKEN=\(hidden\) is not valid; accepted: an API token with Zone:Read and DNS:Edit/);
  assert.throws(() => loadConfig({ ...base, CLOUDFLARE_DNS_API_TOKEN: 't', CLOUDFLARE_TTL: '10' }), /CLOUDFLARE_TTL="10" is not valid; accepted: 1 \(automatic\) or 60 to 86400/);
  assert.throws(() => loadConfig({ ...base, CLOUDFLARE_DNS_API_TOKEN: 't', CLOUDFLARE_API_URL: 'api.cloudflare.com' }), /CLOUDFLARE_API_URL="api\.cloudflare\.com" is not valid/);
});
