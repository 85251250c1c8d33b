/**
 * Decommission against the Rancher simulator (issue 17 item 5, specs §4.6 and §9 item 3): the simulator
 * refuses to DELETE a certificate a balancer references (default or SNI), and the client never sends a
 * DELETE for one in use, nor for one it did not push.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { RancherOrchestrator } from '../../src/orchestrators/rancher/rancher.js';
import { startRancherSim, type RancherSim } from '../support/rancher-sim.js';
import { selfSignedBundle, simClientOptions } from '../support/rancher-client.js';

let s: RancherSim;
let pem: { cert: string; key: string };

before(async () => {
  s = await startRancherSim();
  pem = await createSelfSigned(['x.example.com']);
});
after(() => s.close());

async function rawDelete(id: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${s.port}/v2-beta/projects/${s.projectId}/certificates/${id}`, {
    method: 'DELETE',
    headers: { Authorization: `Basic ${Buffer.from(`${s.accessKey}:${s.secretKey}`).toString('base64')}`, Accept: 'application/json' },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('simulator: DELETE is refused (405 InvalidAction, naming the balancers) while a balancer references the certificate, as default or by SNI', async () => {
  const byDefault = s.addCertificate({ name: 'default.example.com', ...pem });
  const bySni = s.addCertificate({ name: 'sni.example.com', ...pem });
  const lb = s.addBalancer({ name: 'edge', defaultCertificateId: byDefault.id, certificateIds: [bySni.id] });
  for (const c of [byDefault, bySni]) {
    const r = await rawDelete(c.id);
    assert.equal(r.status, 405);
    assert.equal(r.body.code, 'InvalidAction');
    assert.equal(r.body.message, 'Certificate is in use by load balancer services: edge');
  }
  // A removed balancer references nothing.
  lb.state = 'removed';
  const r = await rawDelete(bySni.id);
  assert.equal(r.status, 200);
  assert.equal(r.body.state, 'removed');
  assert.equal(s.certByName('sni.example.com'), undefined, 'hidden from lists');
});

test('client: remove sends no DELETE for a certificate in use by SNI, nor for one it did not push; removes its own once unused', async () => {
  const rancher = new RancherOrchestrator(simClientOptions(s));
  await rancher.list(['ours.example.com']);
  await rancher.push(selfSignedBundle('ours.example.com', pem), { adopt: false });
  const ours = s.certByName('ours.example.com')!;
  s.addCertificate({ name: 'theirs.example.com', ...pem, description: 'uploaded by hand' });
  const lb = s.addBalancer({ name: 'web-lb', certificateIds: [ours.id] });
  await rancher.list(['ours.example.com', 'theirs.example.com']);
  assert.deepEqual(await rancher.usedBy(['ours.example.com', 'theirs.example.com']), new Map([['ours.example.com', [`web-lb (${lb.id})`]]]));
  s.clearLog();

  assert.deepEqual(await rancher.remove('ours.example.com'), { removed: false, why: `balancers still use Rancher certificate ours.example.com (${ours.id}): web-lb (${lb.id}); it is removed once none references it` });
  const theirs = await rancher.remove('theirs.example.com');
  assert.equal(theirs.removed, false);
  assert.match((theirs as { why: string }).why, /was not pushed by certwrangler: never removed/);
  assert.deepEqual(s.log.filter((r) => r.method === 'DELETE'), []);

  // A balancer on its way out (removing) is not a user to the client, but Cattle may still refuse: kept, said why.
  lb.state = 'removing';
  const refused = await rancher.remove('ours.example.com');
  assert.equal(refused.removed, false);
  assert.match((refused as { why: string }).why, /Rancher refused to remove certificate ours\.example\.com .*405 InvalidAction.*in use by load balancer services: web-lb/);

  lb.state = 'removed';
  assert.deepEqual(await rancher.remove('ours.example.com'), { removed: true, target: `Rancher certificate ours.example.com (${ours.id})` });
  assert.equal(s.certificates.get(ours.id)!.state, 'removed');
  assert.ok(s.certByName('theirs.example.com'), 'the foreign one stays');
});
