/**
 * The Rancher client and orchestrator against the simulator, without a CA: URL rules, errors an operator
 * reads, the POST/PUT choice and its races, balancers of both API generations, and label discovery.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { parseCert } from '../../src/certs/parse.js';
import { normaliseCattleUrl, RancherApi } from '../../src/orchestrators/rancher/api.js';
import { RancherOrchestrator, type RancherOptions } from '../../src/orchestrators/rancher/rancher.js';
import { parseService } from '../../src/orchestrators/rancher/resources.js';
import { computedFields, javaDate, startRancherSim, type RancherSim } from '../support/rancher-sim.js';
import { selfSignedBundle, simClientOptions } from '../support/rancher-client.js';
import { Metrics } from '../../src/status/metrics.js';
import { parseMetrics } from '../support/receiver.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const LABEL = 'com.danieldent.rancher-lets-encrypt.hosts';
let s: RancherSim;
let pems: { cert: string; key: string }[];

before(async () => {
  s = await startRancherSim();
  pems = await Promise.all([createSelfSigned(['a.example.com']), createSelfSigned(['a.example.com']), createSelfSigned(['b.example.com'])]);
});
after(() => s.close());

const options = (extra: Partial<RancherOptions> = {}, sim: RancherSim = s): RancherOptions => simClientOptions(sim, extra);

const orchestrator = (extra: Partial<RancherOptions> = {}) => new RancherOrchestrator(options(extra));

const bundle = selfSignedBundle;

test('CATTLE_URL is normalised as go-rancher does: /v1 and an empty path become /v2-beta', () => {
  const rows: [string, string][] = [
    ['http://rancher:8080/v1', 'http://rancher:8080/v2-beta'],
    ['http://rancher:8080/v1/', 'http://rancher:8080/v2-beta'],
    ['http://rancher:8080', 'http://rancher:8080/v2-beta'],
    ['http://rancher:8080/', 'http://rancher:8080/v2-beta'],
    ['http://rancher:8080/v1/projects/1a5', 'http://rancher:8080/v2-beta/projects/1a5'],
    ['https://r.example.com/v2-beta', 'https://r.example.com/v2-beta'],
    ['https://user:pw@r.example.com/v1', 'https://r.example.com/v2-beta'],
    ['http://rancher:8080/v1beta', 'http://rancher:8080/v1beta'],
  ];
  for (const [raw, want] of rows) assert.equal(normaliseCattleUrl(raw), want, raw);
});

test('the simulator computes certificate fields as Cattle does, and they agree with our own parser', async () => {
  const info = parseCert(pems[0]!.cert);
  const f = computedFields(pems[0]!.cert);
  assert.equal(f.certFingerprint, info.fingerprintSha1);
  assert.equal(f.serialNumber, info.serialNumber);
  assert.equal(f.CN, 'a.example.com');
  assert.equal(f.keySize, 2048);
  assert.deepEqual(f.subjectAlternativeNames, ['a.example.com']);
  assert.equal(f.expiresAt, javaDate(info.notAfter));
  assert.match(String(f.expiresAt), /^[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} UTC \d{4}$/);
});

test('a wrong key gets one line naming the variables and the agent labels, and no secret', async () => {
  const o = orchestrator({ secretKey: 'not-the-secret' });
  await assert.rejects(o.list(['a.example.com']), (e: Error) => {
    assert.match(e.message, /^Rancher API GET http:\/\/127\.0\.0\.1:\d+\/v2-beta\/certificates\?limit=1000&removed_null=1: 401 Unauthorized/);
    assert.match(e.message, /CATTLE_ACCESS_KEY and CATTLE_SECRET_KEY/);
    assert.match(e.message, /io\.rancher\.container\.create_agent/);
    assert.ok(!e.message.includes('not-the-secret'));
    return true;
  });
});

test('a 422 from Rancher names its code and field', async () => {
  const api = new RancherApi({ url: s.url, accessKey: s.accessKey, secretKey: s.secretKey, timeoutMs: 2000 });
  await assert.rejects(api.post(api.url('certificates'), { name: 'x.example.com', cert: 'not a pem', key: 'k' }), /422 InvalidFormat/);
  await assert.rejects(api.post(api.url('certificates'), { cert: pems[0]!.cert, key: 'k' }), /422 MissingRequired \(field name\)/);
});

test('lists follow pagination.next, and unknown filters are ignored by the server', async () => {
  const local = await startRancherSim({ maxLimit: 100 });
  try {
    for (let i = 0; i < 250; i++) local.addCertificate({ name: `n${i}.example.org`, cert: pems[2]!.cert, key: 'k' });
    const api = new RancherApi({ url: local.url, accessKey: local.accessKey, secretKey: local.secretKey, timeoutMs: 2000 });
    const all = await api.listAll('certificates?limit=1000');
    assert.equal(all.length, 250);
    assert.deepEqual(local.log.map((r) => r.query), ['limit=1000', 'limit=1000&marker=m100', 'limit=1000&marker=m200']);
    assert.equal((await api.listAll('certificates?CN=n1.example.org')).length, 250, 'CN is not a filter: everything comes back');
    assert.equal((await api.listAll('certificates?name=n1.example.org')).length, 1);
    assert.equal((await api.listAll('certificates?name_prefix=n1')).length, 111);
  } finally {
    await local.close();
  }
});

test('every Rancher call is reported for the orchestrator metrics, page by page, with its status', async () => {
  const local = await startRancherSim({ maxLimit: 100 });
  try {
    for (let i = 0; i < 150; i++) local.addCertificate({ name: `m${i}.example.org`, cert: pems[2]!.cert, key: 'k' });
    const metrics = new Metrics();
    const api = new RancherApi({
      url: local.url,
      accessKey: local.accessKey,
      secretKey: local.secretKey,
      timeoutMs: 2000,
      observe: (r) => metrics.orchestratorRequest('rancher', r),
    });
    await api.listAll('certificates?limit=1000');
    await assert.rejects(api.get(api.url('certificates/1c999999')));
    const samples = parseMetrics(await metrics.text()).filter((m) => m.name === 'certwrangler_orchestrator_request_count');
    const count = (path: string, status: string) => samples.find((m) => m.labels.path === path && m.labels.status === status && m.labels.method === 'GET')?.value;
    assert.equal(count('/v2-beta/certificates', '200'), 2, 'two pages, one series');
    assert.equal(count('/v2-beta/certificates/:id', '404'), 1);
  } finally {
    await local.close();
  }
});

test('a partial page whose next link fails is retried; a page that keeps failing fails the list, never half of it', async () => {
  const local = await startRancherSim({ maxLimit: 10 });
  try {
    for (let i = 0; i < 15; i++) local.addCertificate({ name: `n${i}.example.org`, cert: pems[2]!.cert, key: 'k' });
    const api = new RancherApi({ url: local.url, accessKey: local.accessKey, secretKey: local.secretKey, timeoutMs: 2000, retryBaseMs: 10, retries: 2 });
    local.fault({ kind: 500, url: /marker=m10/ });
    assert.equal((await api.listAll('certificates')).length, 15);
    local.fault({ kind: 500, url: /marker=m10/, times: 10 });
    await assert.rejects(api.listAll('certificates'), /500 Internal Server Error/);
    local.clearFaults();
    local.fault({ kind: 'malformed', url: /certificates/ });
    assert.equal((await api.listAll('certificates')).length, 15, 'a body that is not JSON is retried');
  } finally {
    await local.close();
  }
});

test('a listing decodes only the pages whose bytes changed: an unchanged page gives what it gave, a certificate changed on a page is seen, and one wanted now on an unchanged page gets its PEM looked at', async () => {
  const local = await startRancherSim({ maxLimit: 10 });
  const parse = JSON.parse;
  let pagesParsed = 0;
  // Counts the pages decoded (a page of this listing is a few kilobytes; nothing else parsed here is).
  JSON.parse = (text: string, ...rest: never[]) => {
    if (typeof text === 'string' && text.includes('"type":"collection"')) pagesParsed++;
    return parse(text, ...rest);
  };
  try {
    const names = Array.from({ length: 25 }, (_, i) => `n${i}.example.org`);
    const certs = await Promise.all(names.map((n) => createSelfSigned([n], { sharedKey: true })));
    names.forEach((name, i) => local.addCertificate({ name, cert: certs[i]!.cert, key: certs[i]!.key }));
    const o = new RancherOrchestrator(options({}, local));
    const wanted = names.filter((n) => n !== 'n5.example.org');
    const first = await o.list(wanted);
    assert.equal(pagesParsed, 3);
    assert.ok(wanted.every((n) => first.get(n)?.state === 'present'));
    pagesParsed = 0;
    const second = await o.list(wanted);
    assert.equal(pagesParsed, 0, 'no page changed: none decoded');
    assert.deepEqual(second, first);
    assert.equal(local.log.filter((r) => r.path.endsWith('/certificates')).length, 6, 'each listing still reads every page');
    // n12 (the second page) replaced in Rancher by another certificate.
    const api = new RancherApi({ url: local.url, accessKey: local.accessKey, secretKey: local.secretKey, timeoutMs: 2000 });
    const n12 = (await api.listAll('certificates?name=n12.example.org'))[0] as { links: { self: string } };
    const renewed = await createSelfSigned(['n12.example.org'], { sharedKey: true, days: 10 });
    await api.put(n12.links.self, { cert: renewed.cert, key: renewed.key });
    pagesParsed = 0;
    const third = await o.list(wanted);
    assert.equal(pagesParsed, 1, 'only the changed page is decoded');
    const r12 = third.get('n12.example.org');
    assert.equal(r12?.state === 'present' && r12.info.notAfter.toISOString(), parseCert(renewed.cert).notAfter.toISOString());
    // n5, on the unchanged first page, is wanted now: that page is decoded again for its PEM.
    pagesParsed = 0;
    const fourth = await o.list(names);
    assert.equal(pagesParsed, 1);
    const r5 = fourth.get('n5.example.org');
    assert.equal(r5?.state === 'present' && r5.info.fingerprintSha1, parseCert(certs[5]!.cert).fingerprintSha1);
    pagesParsed = 0;
    assert.deepEqual(await o.list(names), fourth);
    assert.equal(pagesParsed, 0);
    // A body that is not JSON is retried, as every other call's is.
    local.fault({ kind: 'malformed', url: /certificates/ });
    assert.deepEqual(await o.list(names), fourth);
    assert.equal(local.log.filter((r) => r.path.endsWith('/certificates')).length, 20, 'the malformed page was asked again');
  } finally {
    JSON.parse = parse;
    await local.close();
  }
});

test('a listing page whose body is cut short or stalls is asked again and the listing sees every certificate; one that keeps being cut fails the list with a line that says so', async () => {
  const local = await startRancherSim({ maxLimit: 10 });
  try {
    const names = Array.from({ length: 25 }, (_, i) => `c${i}.example.org`);
    const certs = await Promise.all(names.map((n) => createSelfSigned([n], { sharedKey: true })));
    names.forEach((name, i) => local.addCertificate({ name, cert: certs[i]!.cert, key: certs[i]!.key }));
    const statuses: string[] = [];
    const o = new RancherOrchestrator(options({ retryBaseMs: 10, retries: 2, timeoutMs: 1000, observe: (r) => statuses.push(r.status) }, local));
    const pages = () => local.log.filter((r) => r.path.endsWith('/certificates')).length;
    const whole = await o.list(names);
    assert.ok(names.every((n) => whole.get(n)?.state === 'present'));
    // The second page's body is cut after 100 bytes, then the third's after half of it, on a listing where nothing
    // changed (the digests are compared only once a body is whole), then on one that must decode every page.
    local.clearLog();
    local.fault({ kind: 'cut', url: /marker=m10/, cutAt: 100 });
    local.fault({ kind: 'cut', url: /marker=m20/ });
    assert.deepEqual(await o.list(names), whole);
    assert.equal(pages(), 5, 'three pages and two asked again');
    local.clearLog();
    local.fault({ kind: 'cut', url: /marker=m10/ });
    const fresh = await new RancherOrchestrator(options({ retryBaseMs: 10, retries: 2, timeoutMs: 1000 }, local)).list(names);
    assert.deepEqual(fresh, whole, 'a fresh listing decodes the page asked again, not the part of it that came first');
    assert.equal(pages(), 4);
    // A body that stops coming is given up after the timeout and asked again.
    local.clearLog();
    local.fault({ kind: 'stall', url: /marker=m20/ });
    const t = performance.now();
    assert.deepEqual(await o.list(names), whole);
    assert.ok(performance.now() - t >= 1000, 'the stalled body was waited for up to the timeout');
    assert.equal(pages(), 4);
    // Cut every time: the list fails (never half of it), after the retries, in one call's observation.
    local.clearLog();
    statuses.length = 0;
    local.fault({ kind: 'cut', url: /marker=m10/, times: 10 });
    await assert.rejects(o.list(names), /^RancherError: Rancher API GET http:\/\/127\.0\.0\.1:\d+\/v2-beta\/certificates\?limit=1000&removed_null=1&marker=m10: the answer's body was cut short after \d+ bytes/);
    assert.equal(pages(), 4, 'the first page, then the second three times (retries: 2)');
    assert.deepEqual(statuses, ['200', 'ECONNRESET']);
  } finally {
    await local.close();
  }
});

test('a listing page answered 5xx is asked again; a 4xx page is not, and its error envelope is read', async () => {
  const local = await startRancherSim({ maxLimit: 10 });
  try {
    for (let i = 0; i < 15; i++) local.addCertificate({ name: `e${i}.example.org`, cert: pems[2]!.cert, key: 'k' });
    const o = new RancherOrchestrator(options({ retryBaseMs: 10, retries: 2 }, local));
    local.fault({ kind: 503, url: /marker=m10/ });
    assert.equal([...(await o.list(['e12.example.org'])).values()][0]!.state, 'present');
    assert.equal(local.log.filter((r) => r.path.endsWith('/certificates')).length, 3);
    local.clearLog();
    local.fault({ kind: 403, url: /marker=m10/ });
    await assert.rejects(o.list(['e12.example.org']), /marker=m10: 403 Forbidden: the API key may not do this/);
    assert.equal(local.log.filter((r) => r.path.endsWith('/certificates')).length, 2);
  } finally {
    await local.close();
  }
});

test('the simulator serves listing pages it kept only while they are what it would render: each item is the certificate\'s own GET, also after a write and an edit in place', async () => {
  const local = await startRancherSim({ maxLimit: 5 });
  try {
    const certs = await Promise.all(Array.from({ length: 12 }, (_, i) => createSelfSigned([`q${i}.example.org`], { sharedKey: true })));
    certs.forEach((c, i) => local.addCertificate({ name: `q${i}.example.org`, cert: c.cert, key: c.key }));
    const auth = `Basic ${Buffer.from(`${local.accessKey}:${local.secretKey}`).toString('base64')}`;
    const get = async (u: string) => (await fetch(u, { headers: { authorization: auth } })).text();
    const listing = async () => {
      const items: Record<string, unknown>[] = [];
      for (let url: string | null = `${local.url.replace('/v1', '/v2-beta')}/certificates?limit=5`; url; ) {
        const text = await get(url);
        const page = JSON.parse(text) as { data: Record<string, unknown>[]; pagination: { next: string | null } };
        assert.equal(JSON.stringify(page), text);
        for (const item of page.data) assert.equal(JSON.stringify(item), await get((item.links as { self: string }).self));
        items.push(...page.data);
        url = page.pagination.next;
      }
      return items;
    };
    assert.equal((await listing()).length, 12);
    assert.equal((await listing()).length, 12, 'served again from what was kept');
    const api = new RancherApi({ url: local.url, accessKey: local.accessKey, secretKey: local.secretKey, timeoutMs: 2000 });
    const renewed = await createSelfSigned(['q7.example.org'], { sharedKey: true, days: 5 });
    await api.put(api.url(`certificates/${local.certByName('q7.example.org')!.id}`), { cert: renewed.cert, key: renewed.key });
    local.certByName('q2.example.org')!.description = 'edited in place';
    const after = await listing();
    assert.equal(after.find((c) => c.name === 'q7.example.org')!.cert, renewed.cert);
    assert.equal(after.find((c) => c.name === 'q2.example.org')!.description, 'edited in place');
  } finally {
    await local.close();
  }
});

test('push creates with POST, renews with PUT to links.self keeping the id, and sends no empty chain', async () => {
  const o = orchestrator();
  await o.list(['a.example.com']);
  s.clearLog();
  const first = await o.push(bundle('a.example.com', pems[0]!), { adopt: false });
  const c = s.certByName('a.example.com')!;
  assert.match(first.target, new RegExp(`\\(${c.id}\\)`));
  assert.equal(c.certChain, null);
  assert.deepEqual(s.log.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.status}`), ['POST 201']);
  await o.list(['a.example.com']);
  s.clearLog();
  await o.push(bundle('a.example.com', pems[1]!), { adopt: false });
  const after = s.certByName('a.example.com')!;
  assert.equal(after.id, c.id);
  assert.equal(after.cert, pems[1]!.cert);
  const put = s.log.find((r) => r.method === 'PUT')!;
  assert.equal(put.path, `/v2-beta/projects/${s.projectId}/certificates/${c.id}`, 'the PUT goes to links.self');
  assert.deepEqual(Object.keys(put.body as object).sort(), ['cert', 'certChain', 'description', 'key', 'name']);
});

test('NotUnique after POST: our own earlier create is updated in place; another writer\'s is left alone', async () => {
  const o = orchestrator();
  await o.list(['race.example.com', 'theirs.example.com']);
  // Our POST timed out after Rancher stored it: the retry is refused NotUnique, the manager re-lists and PUTs.
  s.fault({ kind: 'race', method: 'POST', url: /certificates/, raceDescription: 'managed by certwrangler; an earlier attempt' });
  s.clearLog();
  await o.push(bundle('race.example.com', pems[2]!), { adopt: false });
  assert.deepEqual(s.log.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.status}`), ['POST 422', 'PUT 200'], 'refused as NotUnique, then updated in place');
  assert.equal([...s.certificates.values()].filter((c) => c.name === 'race.example.com').length, 1, 'not created twice');

  s.fault({ kind: 'race', method: 'POST', url: /certificates/, raceDescription: 'uploaded by hand' });
  await assert.rejects(o.push(bundle('theirs.example.com', pems[2]!), { adopt: false }), /was not pushed by certwrangler; left alone/);
  const theirs = s.certByName('theirs.example.com')!;
  assert.equal(theirs.description, 'uploaded by hand');
  assert.equal(theirs.writes, 0);
});

test('a PUT refused with 409 while Rancher is still busy waits for the resource to settle and succeeds', async () => {
  const slow = await startRancherSim({ settleMs: 400 });
  try {
    const o = new RancherOrchestrator(options({}, slow));
    await o.list(['busy.example.com']);
    await o.push(bundle('busy.example.com', pems[0]!), { adopt: false });
    const c = slow.certByName('busy.example.com')!;
    // Someone else starts an update just before ours.
    c.state = 'updating-active';
    c.transitioning = 'yes';
    c.settleAt = Date.now() + 300;
    await o.push(bundle('busy.example.com', pems[1]!), { adopt: false });
    assert.equal(slow.certByName('busy.example.com')!.cert, pems[1]!.cert);
    assert.equal(slow.certByName('busy.example.com')!.state, 'active');
  } finally {
    await slow.close();
  }
});

test('balancers name their certificates in lbConfig (v2-beta) or at the top level (v1 legacy balancers)', () => {
  const v2 = parseService({ id: '1s1', type: 'loadBalancerService', name: 'lb', state: 'active', links: { self: 'x' }, actions: { update: 'x/?action=update' }, lbConfig: { defaultCertificateId: '1c1', certificateIds: ['1c2'] } });
  const v1 = parseService({ id: '1s2', type: 'loadBalancerService', name: 'old', state: 'active', links: { self: 'y' }, defaultCertificateId: '1c3', certificateIds: ['1c1'] });
  assert.deepEqual(v2.certificateIds.sort(), ['1c1', '1c2']);
  assert.deepEqual(v1.certificateIds.sort(), ['1c1', '1c3']);
  assert.equal(v1.updateAction, undefined);
});

test('discovery reads the label on every service and sidekick, with the DOMAINS grammar; bad names are reported, system and removed services skipped', async () => {
  const local = await startRancherSim();
  try {
    local.addService({ name: 'web', labels: { [LABEL]: ' Shop.Example.com , www.shop.example.com ; blog.example.com' } });
    local.addService({ name: 'db', labels: {}, sidekicks: [{ name: 'admin', labels: { [LABEL]: 'admin.example.com' } }] });
    local.addService({ name: 'twice', labels: { [LABEL]: 'blog.example.com,www.blog.example.com' } });
    local.addService({ name: 'bad', labels: { [LABEL]: '10.0.0.1;ok.example.com' } });
    local.addService({ name: 'sys', system: true, labels: { [LABEL]: 'sys.example.com' } });
    local.addService({ name: 'gone', state: 'removed', labels: { [LABEL]: 'gone.example.com' } });
    local.addBalancer({ name: 'lb' });
    const o = new RancherOrchestrator(options({}, local));
    const found = await o.discover();
    const by = new Map(found.certs.map((c) => [c.name, c]));
    assert.deepEqual([...by.keys()].sort(), ['admin.example.com', 'blog.example.com', 'ok.example.com', 'shop.example.com']);
    assert.deepEqual(by.get('shop.example.com')!.names, ['shop.example.com', 'www.shop.example.com']);
    // Two services asking for one name are two requests, each with its service: ownership decides (never a union).
    const blogs = found.certs.filter((c) => c.name === 'blog.example.com');
    assert.deepEqual(blogs.map((c) => [c.service!.name, c.names]), [['web', ['blog.example.com']], ['twice', ['blog.example.com', 'www.blog.example.com']]]);
    assert.equal(blogs[0]!.service!.stackId, '1st1');
    assert.match(by.get('admin.example.com')!.sources[0]!, /sidekick admin/);
    assert.equal(found.refused.length, 1);
    assert.match(found.refused[0]!.source, /service bad/);
    assert.equal(local.log.filter((r) => r.path.endsWith('/services')).length, 1);
    assert.match(local.log[0]!.query, /system=false/);

    const off = new RancherOrchestrator(options({ readLabels: false }, local));
    assert.deepEqual(await off.discover(), { certs: [], refused: [] });
  } finally {
    await local.close();
  }
});

const MINUTE = 60_000;
const collectionGets = (sim: RancherSim) => sim.log.filter((r) => r.method === 'GET' && /\/loadbalancerservices$/i.test(r.path));
const updateActions = (sim: RancherSim) => sim.log.filter((r) => r.method === 'POST' && r.query === 'action=update');

test('a pending balancer reload survives a restart: a new orchestrator on the same DATA_DIR retries it with one GET of the balancer', async () => {
  const local = await startRancherSim();
  try {
    const dataDir = mkdtempSync(join(tmpdir(), 'cw-reloads-'));
    const first = new RancherOrchestrator(options({ store: new FilesStore(dataDir) }, local));
    const lb = local.addBalancer({ name: 'web-lb', defaultCertificateName: 'r.example.com' });
    local.failUpdate(lb.id, 1, 'error');
    await first.list(['r.example.com']);
    const pushed = await first.push(bundle('r.example.com', pems[0]!), { adopt: false });
    assert.deepEqual(pushed.pendingReloads, [`balancer web-lb (${lb.id}): reload pending, update action failed: Rancher balancer web-lb (${lb.id}) is in error: Failed to reload haproxy: config check failed`]);
    assert.match(pushed.target, /reload pending/);
    assert.equal(lb.reloadCount, 0);
    const file = join(dataDir, 'rancher-reloads.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);

    // Restarted: a new instance knows nothing but DATA_DIR. Reading (list, discover) retries nothing.
    const second = new RancherOrchestrator(options({ store: new FilesStore(dataDir) }, local));
    local.clearLog();
    await second.list(['r.example.com']);
    await second.discover();
    assert.deepEqual(updateActions(local), [], 'list and discover (plan) change nothing');
    const results = await second.retryReloads(new Date(Date.now() + MINUTE));
    assert.deepEqual(results, [{ cert: 'r.example.com', balancer: `web-lb (${lb.id})`, ok: true, message: `balancer web-lb (${lb.id}) updated: it serves the new certificate` }]);
    assert.equal(lb.reloadCount, 1);
    assert.equal(lb.served.get(local.certByName('r.example.com')!.id), `${pems[0]!.cert}\n`);
    assert.deepEqual(collectionGets(local), [], 'the balancer is read by its link, never by listing them all');
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).pending, []);
  } finally {
    await local.close();
  }
});

test('balancers that cannot be listed: the push still succeeds, and one listing at the retry serves every certificate', async () => {
  const local = await startRancherSim();
  try {
    const o = new RancherOrchestrator(options({}, local));
    const lb = local.addBalancer({ name: 'both-lb', defaultCertificateName: 'x.example.com', certificateNames: ['y.example.com'] });
    // The first try and its 3 retries.
    local.fault({ kind: 500, method: 'GET', url: /loadbalancerservices/, times: 4 });
    await o.list(['x.example.com', 'y.example.com']);
    const pushes = await Promise.all(['x.example.com', 'y.example.com'].map((n) => o.push(bundle(n, pems[2]!), { adopt: false })));
    for (const p of pushes) assert.match(p.pendingReloads?.[0] ?? '', /^every balancer that serves it: reload pending, balancers could not be listed: .*500/);
    assert.equal(lb.updateCalls, 0);
    local.clearLog();
    const results = await o.retryReloads(new Date(Date.now() + MINUTE));
    assert.deepEqual(results.map((r) => [r.cert, r.ok]).sort(), [['x.example.com', true], ['y.example.com', true]]);
    assert.equal(collectionGets(local).length, 1, 'one listing for both certificates');
    assert.equal(lb.reloadCount, 2);
    assert.deepEqual(await o.retryReloads(new Date(Date.now() + 120 * MINUTE)), []);
  } finally {
    await local.close();
  }
});

test('a pending reload is dropped when the certificate is pushed again, when the balancer stops serving it, or is removed', async () => {
  const local = await startRancherSim();
  try {
    const o = new RancherOrchestrator(options({}, local));
    const names = ['again.example.com', 'moved.example.com', 'gone.example.com'];
    const lbs = names.map((n) => local.addBalancer({ name: `lb-${n.split('.')[0]}`, defaultCertificateName: n }));
    for (const lb of lbs) local.failUpdate(lb.id, 1);
    for (const n of names) {
      await o.list(names); // a pass each: balancers are listed once a pass, and bind to a certificate when it is created
      assert.equal((await o.push(bundle(n, pems[0]!), { adopt: false })).pendingReloads?.length, 1);
    }

    // Pushed again: that push reloads the balancer, so nothing is left pending for it.
    await o.list(names);
    assert.equal((await o.push(bundle('again.example.com', pems[1]!), { adopt: false })).pendingReloads, undefined);
    assert.equal(lbs[0]!.reloadCount, 1);
    lbs[1]!.lbConfig!.defaultCertificateId = null;
    lbs[2]!.state = 'removed';
    const results = await o.retryReloads(new Date(Date.now() + MINUTE));
    assert.deepEqual(results.map((r) => [r.cert, r.ok, r.message]), [
      ['moved.example.com', true, `balancer lb-moved (${lbs[1]!.id}) no longer serves moved.example.com; nothing to reload`],
      ['gone.example.com', true, `balancer lb-gone (${lbs[2]!.id}) is removed; nothing to reload`],
    ]);
    assert.equal(lbs[1]!.updateCalls, 1, 'only the refused first call');
    assert.equal(lbs[2]!.updateCalls, 1);
    assert.deepEqual(await o.retryReloads(new Date(Date.now() + 120 * MINUTE)), []);
  } finally {
    await local.close();
  }
});

test('two certificates of one balancer pushed at once: its update actions run one after the other, so neither is refused', async () => {
  const slow = await startRancherSim({ settleMs: 300 });
  try {
    const o = new RancherOrchestrator(options({}, slow));
    const lb = slow.addBalancer({ name: 'shared-lb', defaultCertificateName: 'p.example.com', certificateNames: ['q.example.com'] });
    await o.list(['p.example.com', 'q.example.com']);
    const pushes = await Promise.all(['p.example.com', 'q.example.com'].map((n) => o.push(bundle(n, pems[2]!), { adopt: false })));
    assert.deepEqual(pushes.map((p) => p.pendingReloads), [undefined, undefined]);
    assert.equal(lb.updateCalls, 2);
    assert.equal(lb.reloadCount, 2);
    assert.ok(!slow.log.some((r) => r.status === 409), 'no update was refused');
  } finally {
    await slow.close();
  }
});

test('new certificates pushed at once are all written while the first still settles: a settle wait holds no write slot', async () => {
  // Rancher settles each certificate 1.5 s after its write here. Before, a push held one of 4 write slots through
  // its settle polling, so the 5th and later POSTs waited for the first certificate to settle.
  const slow = await startRancherSim({ settleMs: 1500 });
  try {
    const o = new RancherOrchestrator(options({ settleTimeoutMs: 30_000 }, slow));
    const names = Array.from({ length: 12 }, (_, i) => `settle${i}.example.com`);
    await o.list(names);
    let settled = 0;
    const pushes = Promise.all(names.map((n) => o.push(bundle(n, pems[2]!), { adopt: false }).then(() => (settled += 1))));
    const posts = () => slow.log.filter((r) => r.method === 'POST' && r.path.endsWith('/certificates')).length;
    for (let i = 0; i < 250 && posts() < names.length && settled === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(posts(), names.length, 'every certificate was written before any push finished');
    assert.equal(settled, 0);
    await pushes;
    assert.equal(settled, names.length);
    for (const n of names) assert.equal(slow.certByName(n)?.state, 'active', n);
  } finally {
    await slow.close();
  }
});

test('an unreadable pending-reload file: the retry fails naming the file and what to do; a push still succeeds', async () => {
  const local = await startRancherSim();
  try {
    const dataDir = mkdtempSync(join(tmpdir(), 'cw-reloads-'));
    const file = join(dataDir, 'rancher-reloads.json');
    writeFileSync(file, '{"version":1,"pending":[{"cert":"c.example.com"', { mode: 0o600 });
    const o = new RancherOrchestrator(options({ store: new FilesStore(dataDir) }, local));
    await assert.rejects(o.retryReloads(new Date()), (e: Error) => e.message.startsWith(`${file} is not valid (`) && /move it aside to forget the pending balancer reloads/.test(e.message));
    const lb = local.addBalancer({ name: 'c-lb', defaultCertificateName: 'c.example.com' });
    await o.list(['c.example.com']);
    const pushed = await o.push(bundle('c.example.com', pems[0]!), { adopt: false });
    assert.equal(pushed.pendingReloads, undefined);
    assert.equal(lb.reloadCount, 1);
    assert.equal(readFileSync(file, 'utf8'), '{"version":1,"pending":[{"cert":"c.example.com"', 'never replaced by an empty book');
  } finally {
    await local.close();
  }
});
