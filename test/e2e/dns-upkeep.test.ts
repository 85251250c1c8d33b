/**
 * DNS A/AAAA upkeep (issue 21 item 4) through a real BIND (rfc2136) and the Cloudflare simulator, with the
 * public-address service served here. A pass sets the records before it orders (so HTTP-01 reaches this
 * host); when the address changes, the next run moves every managed name's records to it and touches
 * nothing else: not an unmanaged name, not a TXT or a CNAME at a managed one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { Resolver } from 'node:dns/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { assemble } from '../../src/assemble.js';
import { runPass } from '../../src/reconciler.js';
import type { CertEvent } from '../../src/events/events.js';
import type { Pebble } from '../support/pebble.js';
import { startBind, type Bind } from '../support/bind.js';
import { startCloudflareSim, type CloudflareSim } from '../support/cloudflare-sim.js';
import { acmeLab, pebbleEnv } from '../support/harness.js';

const base = mkdtempSync(join(tmpdir(), 'cw-dns-upkeep-'));
const lab = acmeLab(base);
let bind: Bind;
let pebbleOnBind: Pebble;
let cf: CloudflareSim;
let ipService: Server;
let ipUrl: string;
/** What the public-address service answers now (nothing: no such address); /down always fails, as a dead primary would. */
const address = { v4: '127.0.0.1', v6: '' };

before(async () => {
  bind = await startBind({
    dir: join(base, 'bind'),
    zones: ['example.net'],
    // www: a stale address; other: not managed; a TXT and a CNAME that upkeep must not touch.
    records: ['www IN A 10.0.0.1', 'www IN TXT "keep-me"', 'other IN A 10.9.9.9', 'alias IN CNAME www'],
  });
  pebbleOnBind = await lab.pebble('pebble-bind', { dnsServer: bind.address });
  cf = await startCloudflareSim({ zones: ['example.com'] });
  ipService = createServer((req, res) => {
    if (req.url === '/down') return res.writeHead(503).end('busy');
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`${req.url === '/v6' ? address.v6 : address.v4}\n`);
  });
  await new Promise<void>((r) => ipService.listen(0, '127.0.0.1', r));
  ipUrl = `http://127.0.0.1:${(ipService.address() as AddressInfo).port}`;
});
after(async () => {
  ipService?.close();
  await cf?.close();
  await lab.stop();
  await bind?.stop();
});

async function manager(env: Record<string, string>) {
  const events: CertEvent[] = [];
  const m = await assemble(loadConfig(env), createLogger(process.env.TEST_LOG ?? 'silent'), { retryBaseMs: 50, onEvent: (e) => events.push(e) });
  return { m, events };
}

const dnsEvents = (events: CertEvent[]) => events.filter((e) => e.type === 'dns').map((e) => `${e.name} ${e.dns!.type} ${e.dns!.from.join(',') || '-'} → ${e.dns!.to.join(',')}`).sort();

test('rfc2136 on a real BIND: a stale A record is fixed before the order (HTTP-01 then reaches this host), the address changes and every managed record follows, nothing else is touched', async () => {
  const env = {
    DATA_DIR: join(base, 'bind-case', 'data'),
    CERTS_DIR: join(base, 'bind-case', 'live'),
    WEBROOT_DIR: lab.webroot,
    LOG_LEVEL: 'silent',
    ...pebbleEnv(pebbleOnBind, 'production'),
    DOMAINS: 'www.example.net;app.example.net;alias.example.net',
    DNS_PROVIDER: 'rfc2136',
    RFC2136_NAMESERVER: bind.address,
    RFC2136_TSIG_KEY: bind.key.name,
    RFC2136_TSIG_SECRET: bind.key.secret,
    RFC2136_TSIG_ALGORITHM: bind.key.algorithm,
    DNS_UPKEEP: 'true',
    PUBLIC_IP_URL: `${ipUrl}/v4`,
    PUBLIC_IPV6_URL: `${ipUrl}/v6`,
    // Nothing here asks the Internet.
    PUBLIC_IP_FALLBACK_URL: 'off',
    PUBLIC_IPV6_FALLBACK_URL: 'off',
  };
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([bind.address]);
  const a = (name: string) => r.resolve4(name).catch(() => [] as string[]);
  const aaaa = (name: string) => r.resolve6(name).catch(() => [] as string[]);

  const { m, events } = await manager(env);
  const report = await runPass(m);
  // Pebble resolves www through this BIND: with 10.0.0.1 still there, its HTTP-01 would have failed.
  assert.equal(report.ok, true, JSON.stringify(report.results.map((x) => x.error).concat(report.errors)));
  assert.deepEqual(await a('www.example.net'), ['127.0.0.1']);
  // No IPv6 address yet: no AAAA. app had only the zone's wildcard, which already answers 127.0.0.1: no A written for it.
  assert.deepEqual(await aaaa('www.example.net'), []);
  assert.deepEqual(dnsEvents(events), ['www.example.net A 10.0.0.1 → 127.0.0.1']);
  assert.deepEqual(report.dns?.changes.length, 1);

  // The host moves and gains an IPv6 address: the next run (what DNS_UPKEEP_INTERVAL runs) follows for every managed name.
  address.v4 = '127.0.0.2';
  address.v6 = '2001:db8::2';
  events.length = 0;
  const moved = await m.dnsUpkeep!.run();
  assert.deepEqual(moved.errors, []);
  assert.deepEqual(dnsEvents(events), ['app.example.net A 127.0.0.1 → 127.0.0.2', 'app.example.net AAAA - → 2001:db8::2', 'www.example.net A 127.0.0.1 → 127.0.0.2', 'www.example.net AAAA - → 2001:db8::2']);
  for (const name of ['www.example.net', 'app.example.net']) {
    assert.deepEqual(await a(name), ['127.0.0.2']);
    assert.deepEqual(await aaaa(name), ['2001:db8::2']);
  }
  // Untouched: the unmanaged name, the TXT at a managed name, the managed name that is a CNAME.
  assert.deepEqual(await a('other.example.net'), ['10.9.9.9']);
  assert.deepEqual(await bind.txt('www.example.net'), ['keep-me']);
  assert.deepEqual(await r.resolveCname('alias.example.net'), ['www.example.net']);
  const journal = bind.journal('example.net');
  assert.deepEqual(journal.filter((l) => /other\.example\.net|alias\.example\.net| TXT /.test(l) && !l.includes('_acme-challenge')), [], journal.join('\n'));

  // Nothing differs: nothing is written.
  const again = await m.dnsUpkeep!.run();
  assert.deepEqual(again.changes, []);
  assert.equal(bind.journal('example.net').length, journal.length);
  await m.events.drain();
});

test('Cloudflare: the primary address service is down and the fallback answers; a stale A is changed in place (its proxied flag kept), a missing one created, an unmanaged record, a CNAME and a wildcard left alone, a label never takes over a name someone else keeps; an address change follows', async () => {
  const zone = cf.zones[0]!;
  const rec = (name: string, type: string, content: string, proxied = false) => {
    const now = new Date().toISOString();
    cf.records.push({ id: `${name}-${type}`, zone_id: zone.id, zone_name: zone.name, name, type, content, ttl: 1, proxiable: true, proxied, created_on: now, modified_on: now });
  };
  rec('www.example.com', 'A', '198.51.100.1', true);
  rec('www.example.com', 'TXT', 'keep-me');
  rec('other.example.com', 'A', '10.9.9.9');
  rec('alias.example.com', 'CNAME', 'other.example.com');
  address.v4 = '127.0.0.1';
  // The pass's part (upkeep before the orders) is shown on BIND above; here the upkeep alone, for the pass's names.
  const { m, events } = await manager({
    DATA_DIR: join(base, 'cf-case', 'data'),
    CERTS_DIR: join(base, 'cf-case', 'live'),
    LOG_LEVEL: 'silent',
    DNS_PROVIDER: 'cloudflare',
    CLOUDFLARE_API_URL: cf.apiUrl,
    CLOUDFLARE_DNS_API_TOKEN: cf.token,
    DNS_UPKEEP: 'true',
    PUBLIC_IP_URL: `${ipUrl}/down`,
    PUBLIC_IP_FALLBACK_URL: `${ipUrl}/v4`,
    PUBLIC_IPV6_URL: 'off',
  });
  // tenant.example.com is someone else's; a label asks for it and for fresh.example.com, which has no record.
  rec('tenant.example.com', 'A', '192.0.2.50');
  const op = (name: string) => ({ name, fromLabel: false });
  const label = (name: string) => ({ name, fromLabel: true });
  const first = await m.dnsUpkeep!.run([op('www.example.com'), op('app.example.com'), op('alias.example.com'), op('*.example.com'), label('tenant.example.com'), label('fresh.example.com')]);
  assert.deepEqual(first.errors, []);
  assert.deepEqual(dnsEvents(events), ['app.example.com A - → 127.0.0.1', 'fresh.example.com A - → 127.0.0.1', 'www.example.com A 198.51.100.1 → 127.0.0.1']);
  assert.equal(cf.records.find((r) => r.name === 'tenant.example.com')!.content, '192.0.2.50', "a label cannot point another's name at this host");
  const www = cf.records.find((r) => r.name === 'www.example.com' && r.type === 'A')!;
  assert.equal(www.id, 'www.example.com-A', 'changed in place, not deleted and created');
  assert.equal(www.proxied, true);
  assert.equal(www.content, '127.0.0.1');
  assert.equal(cf.records.filter((r) => r.type === 'AAAA').length, 0, 'PUBLIC_IPV6_URL=off: no AAAA');

  const snapshot = () => JSON.stringify(cf.records.filter((r) => !(r.type === 'A' && ['www.example.com', 'app.example.com', 'fresh.example.com'].includes(r.name))));
  const others = snapshot();
  address.v4 = '127.0.0.3';
  events.length = 0;
  const writesBefore = cf.requests.filter((q) => q.method !== 'GET').length;
  await m.dnsUpkeep!.run();
  // fresh.example.com holds what certwrangler wrote: it follows too.
  assert.deepEqual(dnsEvents(events), ['app.example.com A 127.0.0.1 → 127.0.0.3', 'fresh.example.com A 127.0.0.1 → 127.0.0.3', 'www.example.com A 127.0.0.1 → 127.0.0.3']);
  assert.equal(cf.requests.filter((q) => q.method !== 'GET').length - writesBefore, 3, 'one PATCH per changed record');
  assert.equal(snapshot(), others, 'the unmanaged A, the TXT and the CNAME are byte for byte as they were');
  await m.dnsUpkeep!.run();
  assert.equal(cf.requests.filter((q) => q.method !== 'GET').length - writesBefore, 3, 'nothing differs: nothing written');
  await m.events.drain();
});

test('no address service answers: no record is written or removed, and the run says why', async () => {
  const before = JSON.stringify(cf.records);
  const writes = cf.requests.filter((q) => q.method !== 'GET').length;
  const { m, events } = await manager({
    DATA_DIR: join(base, 'cf-down', 'data'),
    CERTS_DIR: join(base, 'cf-down', 'live'),
    LOG_LEVEL: 'silent',
    DNS_PROVIDER: 'cloudflare',
    CLOUDFLARE_API_URL: cf.apiUrl,
    CLOUDFLARE_DNS_API_TOKEN: cf.token,
    DNS_UPKEEP: 'true',
    PUBLIC_IP_URL: `${ipUrl}/down`,
    PUBLIC_IP_FALLBACK_URL: 'http://127.0.0.1:1/',
    PUBLIC_IPV6_URL: 'off',
  });
  const r = await m.dnsUpkeep!.run([{ name: 'www.example.com', fromLabel: false }, { name: 'app.example.com', fromLabel: false }]);
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]!, /no public IPv4 address: http:\/\/127\.0\.0\.1:\d+\/down answered HTTP 503; http:\/\/127\.0\.0\.1:1\/ ECONNREFUSED; A records are left as they are/);
  assert.deepEqual(r.changes, []);
  assert.equal(JSON.stringify(cf.records), before);
  assert.equal(cf.requests.filter((q) => q.method !== 'GET').length, writes);
  assert.deepEqual(dnsEvents(events), []);
});
