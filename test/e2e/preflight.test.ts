/**
 * PREFLIGHT end to end (issue 19 item 1): Pebble, the shipped nginx/traffic-manager.conf in front of the
 * webroot, and a real BIND that every lookup (Pebble's and the probe's) goes through. Three names: one
 * routed, one whose vhost lacks the challenge route (404 from the app), one NXDOMAIN. Only the routed one
 * is ordered; the others are reported with what went wrong and cost nothing. Once the route is fixed, the
 * next pass (after the 5-minute backoff) orders it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { checkDnsCredentials } from '../../src/preflight/dns-credentials.js';
import { createWebroot, listenWebroot } from '../../src/webroot/server.js';
import type { LedgerData } from '../../src/limits/ledger.js';
import { startBind, type Bind } from '../support/bind.js';
import { startNginx, siteFile, type Nginx } from '../support/nginx.js';
import { startPebble, type Pebble } from '../support/pebble.js';
import { freePort } from '../support/ports.js';
import { rawRequest } from '../support/http.js';
import { passWithOrders, pebbleEnv, runCli } from '../support/harness.js';

const base = mkdtempSync(join(tmpdir(), 'cw-preflight-'));
const webrootDir = join(base, 'www');
let bind: Bind;
let pebble: Pebble;
let nginx: Nginx;
let webroot: Server;
let app: Server;
let port: number;

const routedSite = () =>
  siteFile('traffic-manager.conf', [
    ['server webroot:8080;', `server 127.0.0.1:${(webroot.address() as { port: number }).port};`],
    ['server app:8080;', `server 127.0.0.1:${(app.address() as { port: number }).port};`],
    ['listen 80;', `listen 127.0.0.1:${port};`],
  ]);
// The usual mistake: a vhost added for a new application without the challenge location.
const brokenVhost = () => `\nserver {\n    listen 127.0.0.1:${port};\n    server_name unrouted.example.net;\n    location / { proxy_pass http://app; }\n}\n`;

before(async () => {
  port = await freePort();
  bind = await startBind({ dir: join(base, 'bind'), zones: ['example.net'], wildcard: false, records: ['routed IN A 127.0.0.1', 'unrouted IN A 127.0.0.1'] });
  webroot = await listenWebroot(createWebroot(webrootDir), 0, '127.0.0.1');
  app = createServer((_req, res) => res.writeHead(404).end('no such page')).listen(0, '127.0.0.1');
  await new Promise((r) => app.once('listening', r));
  nginx = await startNginx(join(base, 'nginx'), routedSite() + brokenVhost(), port);
  // Pebble validates on the balancer's port, resolving through the same BIND.
  pebble = await startPebble({ dir: join(base, 'pebble'), httpPort: port, dnsServer: bind.address, nonceReject: 0 });
});

after(async () => {
  await Promise.all([pebble?.stop(), nginx?.stop(), bind?.stop()]);
  webroot?.close();
  app?.close();
});

const env = (dir: string, extra: Record<string, string> = {}): Record<string, string> => ({
  DATA_DIR: join(base, dir, 'data'),
  CERTS_DIR: join(base, dir, 'live'),
  WEBROOT_DIR: webrootDir,
  LOG_LEVEL: 'silent',
  ...pebbleEnv(pebble, 'production'),
  PREFLIGHT: 'true',
  PREFLIGHT_HTTP_PORT: String(port),
  DNS_RESOLVERS: bind.address,
  ...extra,
});

function ledgerOf(dataDir: string): LedgerData {
  const dir = join(dataDir, 'ledger');
  const [file] = readdirSync(dir);
  return JSON.parse(readFileSync(join(dir, file!), 'utf8')) as LedgerData;
}

async function passAt(e: Record<string, string>, now: Date) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const run = await passWithOrders(e, { now: () => now }, log);
  const routeReports = lines.filter((l) => l.reason === 'RouteFailed').map((l) => l.cert);
  return { ...run, routeReports };
}

test('a name whose challenge path does not reach the webroot, or that does not exist, is not ordered; once the route is fixed, the next pass orders it', async () => {
  const e = env('three', { DOMAINS: 'routed.example.net;unrouted.example.net;gone.example.net' });
  const t0 = new Date();
  const first = await passAt(e, t0);
  const byName = new Map(first.report.results.map((r) => [r.name, r]));
  assert.equal(first.orders, 1, 'exactly one order: the routed name');
  assert.equal(byName.get('routed.example.net')!.issued, true, byName.get('routed.example.net')!.error);
  const unrouted = byName.get('unrouted.example.net')!;
  assert.equal(unrouted.outcome, 'waiting');
  assert.match(unrouted.error ?? '', /unrouted\.example\.net resolved to 127\.0\.0\.1, 127\.0\.0\.1:\d+: HTTP 404 \(Server: nginx/);
  const gone = byName.get('gone.example.net')!;
  assert.equal(gone.outcome, 'waiting');
  assert.match(gone.error ?? '', /NXDOMAIN: gone\.example\.net does not exist/);
  assert.deepEqual([...first.routeReports].sort(), ['gone.example.net', 'unrouted.example.net'], 'one failed-route report each');
  // Nothing was spent on them: one order in the ledger, no failed validation.
  const ledger = ledgerOf(e.DATA_DIR!);
  assert.deepEqual(ledger.orders.map((o) => o.names), [['routed.example.net']]);
  assert.deepEqual(ledger.failedAuthorizations, []);
  // The next try waits the backoff (5 minutes): a pass now probes nothing and orders nothing.
  assert.equal(unrouted.nextAttempt, new Date(t0.getTime() + 5 * 60_000).toISOString());
  const early = await passAt(e, new Date(t0.getTime() + 60_000));
  assert.equal(early.orders, 0);
  assert.deepEqual(early.routeReports, [], 'no probe during the backoff');

  // Fix the vhost and reload nginx; wait until it answers the challenge path from the webroot.
  nginx.reload(routedSite());
  // Three answers in a row from the webroot: a loaded machine may still have the old worker answering.
  for (let i = 0, good = 0; i < 400 && good < 3; i++) {
    const r = await rawRequest(port, '/.well-known/acme-challenge/none', { host: 'unrouted.example.net' }).catch(() => undefined);
    good = r && r.body.toString() !== 'no such page' ? good + 1 : 0;
    await new Promise((r) => setTimeout(r, 50));
  }
  const second = await passAt(e, new Date(t0.getTime() + 6 * 60_000));
  const after = new Map(second.report.results.map((r) => [r.name, r]));
  assert.equal(second.orders, 1, `the fixed name is ordered, nothing else: ${JSON.stringify(second.report.results.map((r) => [r.name, r.decision.reason, r.outcome, r.error]))}`);
  assert.equal(after.get('unrouted.example.net')!.issued, true, after.get('unrouted.example.net')!.error);
  assert.equal(after.get('routed.example.net')!.decision.action, 'none');
  assert.match(after.get('gone.example.net')!.error ?? '', /NXDOMAIN/);
  assert.deepEqual(second.routeReports, ['gone.example.net']);
  // The second failure doubles the backoff.
  assert.equal(after.get('gone.example.net')!.nextAttempt, new Date(t0.getTime() + 6 * 60_000 + 10 * 60_000).toISOString());
  assert.deepEqual(ledgerOf(e.DATA_DIR!).orders.map((o) => o.names), [['routed.example.net'], ['unrouted.example.net']]);
});

test("PREFLIGHT defaults: on against Let's Encrypt production, off against staging and a test CA on this machine", () => {
  const c = loadConfig({ ...env('default'), PREFLIGHT: '' });
  assert.equal(c.preflight.enabled, false);
  assert.equal(loadConfig({ STAGING: 'false' }).preflight.enabled, true, 'on against Let\'s Encrypt production');
  assert.equal(loadConfig({ STAGING: 'true' }).preflight.enabled, false, 'off against staging');
});

test('DNS-01 credentials: a wrong TSIG secret stops the manager at start naming the variables; right ones write and delete a test record', async () => {
  const dns = { DOMAINS: '*.example.net', CHALLENGE: 'dns-01', DNS_PROVIDER: 'rfc2136', RFC2136_NAMESERVER: bind.address, RFC2136_TSIG_KEY: bind.key.name, RFC2136_TSIG_ALGORITHM: bind.key.algorithm };
  const wrong = await runCli(['manager', '--once'], { ...env('dns-wrong', dns), RFC2136_TSIG_SECRET: Buffer.alloc(32, 7).toString('base64'), STATUS_ADDR: 'off' });
  assert.equal(wrong.code, 1, wrong.stderr);
  assert.match(wrong.stderr, /DNS-01 preflight: rfc2136 could not create a test TXT record at _acme-challenge\.example\.net: .*BADSIG/);
  assert.match(wrong.stderr, /RFC2136_TSIG_SECRET/);
  assert.ok(!wrong.stderr.includes(bind.key.secret));
  const before = bind.journal('example.net').length;
  await checkDnsCredentials(loadConfig({ ...env('dns-right', dns), RFC2136_TSIG_SECRET: bind.key.secret }), createLogger('silent'));
  const changes = bind.journal('example.net').slice(before).filter((l) => l.includes('_acme-challenge.example.net.'));
  assert.deepEqual(changes.map((l) => l.split(' ')[0]), ['add', 'del'], changes.join('\n'));
  assert.deepEqual(await bind.txt('_acme-challenge.example.net'), []);
});
