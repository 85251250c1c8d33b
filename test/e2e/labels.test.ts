/**
 * Labels are untrusted input (issue 15): against the Rancher simulator and a real Pebble whose DNS-01 goes
 * through pebble-challtestsrv (so a wildcard or dns-01 label could really be validated), a hostile tenant's
 * services try each thing the issue lists. Each is refused with a reason naming the service, what others
 * own is byte for byte unchanged in Rancher, and the orders made are exactly the legitimate ones. Then a
 * simulated week of a label that changes its names on every pass.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCert } from '../../src/certs/parse.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { LocalStore } from '../../src/certs/store.js';
import { renewalTime } from '../../src/policy.js';
import { DEFAULT_HOSTS_LABEL, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { assemble } from '../../src/assemble.js';
import type { CertEvent } from '../../src/events/events.js';
import type { LedgerData } from '../../src/limits/ledger.js';
import type { PassReport } from '../../src/reconciler.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, passWithOrders, pebbleEnv, runCli } from '../support/harness.js';
import { simPool, type RancherSim } from '../support/rancher-sim.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const base = mkdtempSync(join(tmpdir(), 'cw-labels-'));
const lab = acmeLab(base);
const sims = simPool();
const LABEL = DEFAULT_HOSTS_LABEL;
let pebble: Pebble;

before(async () => {
  pebble = await lab.pebble('pebble');
});
after(async () => {
  await sims.closeAll();
  await lab.stop();
});

function envFor(dir: string, s: RancherSim, extra: Record<string, string>): Record<string, string> {
  return {
    DATA_DIR: join(base, dir, 'data'),
    WEBROOT_DIR: lab.webroot,
    LOG_LEVEL: 'silent',
    ...s.env,
    ...pebbleEnv(pebble, 'production'),
    // The operator's DNS credentials are there: without the label policy a label could use them.
    DNS_PROVIDER: 'challtestsrv',
    CHALLTESTSRV_URL: pebble.dnsManagementUrl,
    DNS_RESOLVERS: pebble.dnsAddress,
    ...extra,
  };
}

const errorsOf = (report: PassReport) => JSON.stringify(report.results.filter((r) => r.error).map((r) => `${r.name}: ${r.error}`).concat(report.errors));
const orderedNames = (dataDir: string) => {
  const dir = join(dataDir, 'ledger');
  return readdirSync(dir).flatMap((f) => (JSON.parse(readFileSync(join(dir, f), 'utf8')) as LedgerData).orders.map((o) => [...o.names].sort().join(',')));
};

test('a hostile tenant\'s labels: each attempt is refused with a reason naming the service; victims unchanged; only legitimate orders', async () => {
  const s = await sims.start();
  // Legitimate: the operator's DOMAINS, two tenants' own names, and a certificate the ops team uploaded by hand.
  const blog = s.addService({ name: 'blog', labels: { [LABEL]: 'blog.example.com' } });
  s.addService({ name: 'api', labels: { [LABEL]: 'api.example.com' } });
  const handMade = await createSelfSigned(['legacy.example.com']);
  const legacy = s.addCertificate({ name: 'legacy.example.com', cert: handMade.cert, key: handMade.key, description: 'uploaded by the ops team' });
  const legacySnapshot = JSON.stringify(legacy);
  // Hostile, one service per attempt.
  const hundredAndOne = Array.from({ length: 101 }, (_, i) => `n${i}.example.com`).join(',');
  s.addService({ name: 'h-widen', labels: { [LABEL]: 'shop.example.com,anything.example.com' } });
  s.addService({ name: 'h-steal', labels: { [LABEL]: 'blog.example.com,evil.example.com' } });
  s.addService({ name: 'h-inside', labels: { [LABEL]: 'api.example.com;www.blog2.example.com,blog.example.com' } });
  s.addService({ name: 'h-wild', labels: { [LABEL]: '*.example.com' } });
  s.addService({ name: 'h-dns', labels: { [LABEL]: 'intranet.example.com', [`${LABEL}.challenge`]: 'dns-01' } });
  const churn = s.addService({ name: 'h-churn', labels: { [LABEL]: 'churn.example.com,v0.example.com' } });
  s.addService({ name: 'h-ca', labels: { [LABEL]: `co.uk;host.local;example.test;ab--cd.example.com;${hundredAndOne}` } });
  s.addService({ name: 'h-adopt', labels: { [LABEL]: 'legacy.example.com' } });
  s.addService({ name: 'h-stack', stack: 'sandbox', labels: { [LABEL]: 'sandbox.example.com' } });
  // A NUL byte reaches the refusal's text: a hook's environment must not carry it (spawn would throw).
  s.addService({ name: 'h-nul', labels: { [LABEL]: 'bad\u0000name.example.com' } });
  const hookLog = join(base, 'hostile-hook.log');
  const env = envFor('hostile', s, { DOMAINS: 'shop.example.com', ADOPT_EXISTING: 'true', LABEL_MAX_NEW_PER_DAY: '2', LABEL_STACKS: 'default', ON_FAILURE_COMMAND: `printf '%s|%s\\n' "$CERTWRANGLER_EVENT" "$CERTWRANGLER_MESSAGE" >> ${hookLog}` });

  // `plan` shows the refusals and changes nothing: no claim is recorded.
  const plan = await runCli(['plan'], env);
  assert.match(plan.stdout, /refused: shop\.example\.com,anything\.example\.com \(label .* on service h-widen \(1s\d+\)\): certificate shop\.example\.com belongs to DOMAINS/);
  assert.equal(existsSync(join(env.DATA_DIR!, 'label-claims.json')), false);

  const events: CertEvent[] = [];
  const first = await passWithOrders(env, { onEvent: (e) => events.push(e) });
  assert.equal(statSync(join(env.DATA_DIR!, 'label-claims.json')).mode & 0o777, 0o600);
  assert.equal(first.orders, 4, `shop (DOMAINS), blog, api and churn's first set; ${errorsOf(first.report)}`);
  assert.deepEqual(first.report.results.filter((r) => r.issued).map((r) => r.name).sort(), ['api.example.com', 'blog.example.com', 'churn.example.com', 'shop.example.com']);

  const refusedOf = (report: PassReport, service: string) => report.refused.filter((r) => r.service?.startsWith(`${service} (`)).map((r) => r.error);
  const expect: Array<[string, RegExp[]]> = [
    ['h-widen', [/certificate shop\.example\.com belongs to DOMAINS; a label cannot add anything\.example\.com to it/]],
    ['h-steal', [new RegExp(`certificate blog\\.example\\.com belongs to the label on service blog \\(${blog.id}\\); a label cannot add evil\\.example\\.com`)]],
    ['h-inside', [/certificate api\.example\.com belongs to the label on service api \(1s\d+\), which claimed it first/, /"blog\.example\.com" is already in certificate blog\.example\.com of the label on service blog/]],
    ['h-wild', [/"\*\.example\.com" is a wildcard; wildcards from labels are off/]],
    ['h-dns', [/dns-01 from labels is off/]],
    ['h-ca', [/"co\.uk" is a public suffix/, /reserved top-level domain \.local/, /reserved top-level domain \.test/, /label "ab--cd" has "--" in positions 3-4/, /101 names in one certificate; the CA takes at most 100/]],
    ['h-stack', [/service h-stack \(1s\d+\) is in stack sandbox; LABEL_STACKS lets only services of default use the label/]],
    ['h-nul', [/label "bad\u0000name" may hold only a-z, 0-9 and inner hyphens/]],
  ];
  for (const [service, reasons] of expect) {
    const got = refusedOf(first.report, service);
    assert.equal(got.length, reasons.length, `${service}: ${got.join(' | ')}`);
    reasons.forEach((re, i) => assert.match(got[i]!, re, service));
    assert.ok(events.some((e) => e.type === 'refused' && e.service?.startsWith(`${service} (`)), `${service}: a refused event names the service`);
  }
  // Each refusal went to ON_FAILURE_COMMAND once, naming the service, with no control character in it.
  const hooked = readFileSync(hookLog, 'utf8');
  assert.match(hooked, /^refused\|/m);
  assert.match(hooked, /refused for service h-widen \(1s\d+\): label .* on service h-widen .*belongs to DOMAINS/);
  assert.match(hooked, /refused for service h-nul \(1s\d+\): .*"bad\?name\.example\.com"/);
  assert.ok(!hooked.includes('\u0000'));
  // h-inside's api.example.com is exactly the api service's certificate: refused by name (another tenant's
  // certificate may hold a name that never validates, so h-inside must know it is not served), nothing ordered.
  assert.ok(!first.report.results.find((r) => r.name === 'api.example.com')!.sources.some((x) => x.includes('service h-inside')));
  // A label never adopts, ADOPT_EXISTING=true or not: the hand-made certificate is left as it was.
  const adopt = first.report.results.find((r) => r.name === 'legacy.example.com')!;
  assert.equal(adopt.outcome, 'foreign');
  assert.equal(adopt.orders, 0);
  assert.match(adopt.decision.message, /does not manage \(a label never takes one over; the operator may, through DOMAINS and ADOPT_EXISTING\)/, 'the reason says a label cannot adopt');
  assert.ok(adopt.sources.every((x) => x.includes('service h-adopt')));

  const shop = JSON.stringify(s.certByName('shop.example.com'));
  const blogCert = JSON.stringify(s.certByName('blog.example.com'));
  assert.deepEqual([...parseCert(s.certByName('shop.example.com')!.cert).names], ['shop.example.com']);
  for (const [i, name] of ['v1', 'v2', 'v3'].entries()) {
    churn.labels[LABEL] = `churn.example.com,${name}.example.com`;
    const next = await passWithOrders(env);
    assert.equal(next.orders, i === 0 ? 1 : 0, `pass ${i + 2}: churn's second set, then none (LABEL_MAX_NEW_PER_DAY=2)`);
    if (i > 0) assert.match(refusedOf(next.report, 'h-churn')[0]!, /was given 2 new name sets in the last 24 hours \(LABEL_MAX_NEW_PER_DAY=2\).*churn\.example\.com keeps its previous names \(churn\.example\.com, v1\.example\.com\)/);
    assert.equal(JSON.stringify(s.certByName('shop.example.com')), shop, 'the DOMAINS certificate is byte for byte unchanged');
    assert.equal(JSON.stringify(s.certByName('blog.example.com')), blogCert, 'the blog service\'s certificate is byte for byte unchanged');
  }
  assert.equal(JSON.stringify(s.certByName('legacy.example.com')), legacySnapshot, 'the hand-uploaded certificate is byte for byte unchanged');
  for (const name of ['anything.example.com', 'evil.example.com', '_.example.com', 'intranet.example.com', 'sandbox.example.com', 'co.uk', 'host.local']) {
    assert.equal(s.certByName(name), undefined, `${name} is not in Rancher`);
  }
  assert.deepEqual(orderedNames(env.DATA_DIR!).sort(), ['api.example.com', 'blog.example.com', 'churn.example.com,v0.example.com', 'churn.example.com,v1.example.com', 'shop.example.com'], 'the account ordered exactly these');
});

test('a simulated week of a label that changes its names on every pass: at most LABEL_MAX_NEW_PER_DAY orders a day, and the others\' renewals all happen', async () => {
  const s = await sims.start();
  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;
  const start = new Date();
  s.addService({ name: 'keep', labels: { [LABEL]: 'keep.example.com' } });
  const churn = s.addService({ name: 'churn', labels: {} });
  const env = envFor('week', s, { DOMAINS: 'steady.example.com', PLACEHOLDERS: 'false' });
  // Both legitimate certificates are in place, issued 60 days before they fall due (a third of 90 days left):
  // steady on day 2 of the week, keep on day 5.
  const store = new LocalStore(new FilesStore(env.DATA_DIR!));
  await store.init();
  const due: Record<string, Date> = {};
  for (const [name, day] of [['steady.example.com', 2], ['keep.example.com', 5]] as const) {
    const c = await createSelfSigned([name], { now: new Date(start.getTime() + day * DAY - 60 * DAY), days: 90 });
    await store.write({ name, names: [name], key: c.key, cert: c.cert, chain: '', kind: 'production', directoryUrl: pebble.directoryUrl });
    due[name] = renewalTime(parseCert(c.cert), undefined);
  }

  const churnOrders: number[] = [];
  const renewed = new Map<string, Date[]>();
  // Six passes a day (more than the cap of 5), for seven days.
  for (let k = 0; k < 42; k++) {
    const now = new Date(start.getTime() + k * 4 * HOUR);
    churn.labels[LABEL] = `churn.example.com,v${k}.example.com`;
    const { report } = await passWithOrders(env, { now: () => now });
    assert.deepEqual(report.errors, []);
    for (const r of report.results) if (r.issued && r.name !== 'churn.example.com') renewed.set(r.name, [...(renewed.get(r.name) ?? []), now]);
    const c = report.results.find((r) => r.name === 'churn.example.com');
    if (c?.orders) churnOrders.push(now.getTime());
    for (const r of report.results) if (r.name !== 'churn.example.com') assert.notEqual(r.outcome, 'failed', `${r.name}: ${r.error}`);
  }
  // At most 5 in any 24 hours, and so in each day of the week.
  for (const t of churnOrders) assert.ok(churnOrders.filter((u) => u >= t && u < t + DAY).length <= 5, `churn orders at ${churnOrders.map((u) => (u - start.getTime()) / HOUR).join(', ')} h`);
  for (let d = 0; d < 7; d++) assert.ok(churnOrders.filter((u) => u >= start.getTime() + d * DAY && u < start.getTime() + (d + 1) * DAY).length <= 5, `day ${d}`);
  assert.ok(churnOrders.length >= 7 * 4, `the label still gets its daily share: ${churnOrders.length}`);
  // Each legitimate certificate renewed once, at the first pass after it fell due.
  for (const [name, at] of Object.entries(due)) {
    const times = renewed.get(name) ?? [];
    assert.equal(times.length, 1, `${name} renewed once: ${times.map((t) => t.toISOString()).join(', ')}`);
    assert.ok(times[0]!.getTime() >= at.getTime() && times[0]!.getTime() < at.getTime() + 4 * HOUR, `${name} renewed when due`);
    assert.equal(parseCert(s.certByName(name)!.cert).selfSigned, false, `${name}: Rancher serves the renewed certificate`);
  }
});

test('labels read with neither LABEL_ALLOWED_DOMAINS nor ALLOWED_DOMAINS: one warning line at start says any tenant may order any name', async () => {
  const s = await sims.start();
  const lines = (extra: Record<string, string>) => {
    const out: string[] = [];
    const log = createLogger('info', { write: (l: string) => void out.push(l) });
    return assemble(loadConfig(envFor('warn', s, extra)), log).then(() => out.map((l) => (JSON.parse(l) as { msg: string }).msg).filter((m) => /any tenant/.test(m)));
  };
  const open = await lines({});
  assert.equal(open.length, 1);
  assert.match(open[0]!, /^labels are read and neither LABEL_ALLOWED_DOMAINS nor ALLOWED_DOMAINS is set: any tenant who may deploy a service may order any name with the com\.danieldent\.rancher-lets-encrypt\.hosts label/);
  assert.deepEqual(await lines({ ALLOWED_DOMAINS: 'example.com' }), []);
  assert.deepEqual(await lines({ LABEL_ALLOWED_DOMAINS: 'apps.example.com' }), []);
  assert.deepEqual(await lines({ DYNAMIC_CONFIG: 'false' }), [], 'labels not read: nothing to warn about');
});

test('CHALLENGE=dns-01 with labels read and LABELS_ALLOW_DNS01 unset: one warning at start says label certificates validate over HTTP-01', async () => {
  const s = await sims.start();
  const warned = async (extra: Record<string, string>) => {
    const out: string[] = [];
    const log = createLogger('info', { write: (l: string) => void out.push(l) });
    await assemble(loadConfig(envFor('warn-dns', s, { ALLOWED_DOMAINS: 'example.com', DNS_PROVIDER: 'challtestsrv', ...extra })), log);
    return out.map((l) => (JSON.parse(l) as { msg: string }).msg).filter((m) => /LABELS_ALLOW_DNS01/.test(m));
  };
  const on = await warned({ CHALLENGE: 'dns-01' });
  assert.equal(on.length, 1);
  assert.match(on[0]!, /^CHALLENGE=dns-01, but certificates asked for by a label validate over HTTP-01 .*set LABELS_ALLOW_DNS01=true/);
  assert.deepEqual(await warned({ CHALLENGE: 'dns-01', LABELS_ALLOW_DNS01: 'true' }), []);
  assert.deepEqual(await warned({}), [], 'HTTP-01 for everyone: nothing changes for labels');
});
