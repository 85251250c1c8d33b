/**
 * Links Rancher hands back (pagination.next, links.self, actions.update) are followed with the API keys and
 * certificate bodies: one that leads to another origin is refused before anything is sent there.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { RancherApi, RancherError } from '../../src/orchestrators/rancher/api.js';
import { RancherOrchestrator } from '../../src/orchestrators/rancher/rancher.js';
import { startRancherSim, type RancherSim } from '../support/rancher-sim.js';
import { selfSignedBundle, simClientOptions } from '../support/rancher-client.js';

let sim: RancherSim;
let elsewhere: Server;
let elsewhereOrigin: string;
/** Everything the foreign server was sent: it must stay empty. */
const received: { method: string; url: string; authorization: string | undefined }[] = [];
let pems: { cert: string; key: string }[];

before(async () => {
  sim = await startRancherSim({ maxLimit: 1 });
  elsewhere = createServer((req: IncomingMessage, res) => {
    received.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ type: 'collection', data: [], pagination: null }));
  }).listen(0, '127.0.0.1');
  await new Promise((r) => elsewhere.once('listening', r));
  // Same host, another port: a different origin all the same.
  elsewhereOrigin = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
  pems = await Promise.all([createSelfSigned(['a.example.com']), createSelfSigned(['a.example.com'])]);
});
after(async () => {
  await sim.close();
  elsewhere.close();
});

const orchestrator = () => new RancherOrchestrator(simClientOptions(sim));

const bundle = selfSignedBundle;

const refused = (link: string) => (e: unknown) =>
  e instanceof RancherError && e.message.includes(link) && e.message.includes(elsewhereOrigin) && e.message.includes(`CATTLE_URL's origin http://127.0.0.1:${sim.port}`) && !e.message.includes(sim.secretKey);

test('rancher links: a pagination.next on another origin is refused, naming the link and the expected origin; nothing reaches it', async () => {
  sim.addCertificate({ name: 'one.example.com', ...pems[0]! });
  sim.addCertificate({ name: 'two.example.com', ...pems[1]! });
  const api = new RancherApi({ url: sim.url, accessKey: sim.accessKey, secretKey: sim.secretKey, timeoutMs: 2000, retryBaseMs: 10 });
  assert.equal((await api.listAll('certificates?limit=1')).length, 2, 'same-origin pages are followed');
  sim.foreignLinks(elsewhereOrigin, ['next']);
  try {
    await assert.rejects(api.listAll('certificates?limit=1'), refused('pagination.next'));
  } finally {
    sim.foreignLinks(undefined);
  }
  assert.deepEqual(received, []);
});

test('rancher links: a links.self or actions.update on another origin gets neither the keys nor the key body', async () => {
  const o = orchestrator();
  await o.list(['a.example.com']);
  await o.push(bundle('a.example.com', pems[0]!), { adopt: false });
  sim.addBalancer({ name: 'lb', certificateNames: ['a.example.com'] });

  // The certificate now exists: the next push PUTs to its links.self, with the private key in the body.
  sim.foreignLinks(elsewhereOrigin, ['self']);
  try {
    await o.list(['a.example.com']);
    await assert.rejects(o.push(bundle('a.example.com', pems[1]!), { adopt: false }), refused('links.self'));
  } finally {
    sim.foreignLinks(undefined);
  }
  assert.equal(sim.certByName('a.example.com')!.cert, pems[0]!.cert, 'unchanged');

  // The balancer's update action is POSTed with the keys. The certificate itself is written by then, so the
  // refusal leaves the reload pending (retried later) instead of failing the push.
  sim.foreignLinks(elsewhereOrigin, ['update']);
  try {
    await o.list(['a.example.com']);
    const pushed = await o.push(bundle('a.example.com', pems[1]!), { adopt: false });
    const pending = (pushed.pendingReloads ?? []).join('; ');
    assert.ok(refused('actions.update')(new RancherError(pending)), `the pending reload says why: ${pending}`);
  } finally {
    sim.foreignLinks(undefined);
  }
  assert.deepEqual(received, [], 'the foreign server received no request at all');
});
