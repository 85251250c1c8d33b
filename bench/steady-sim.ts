/**
 * The Rancher simulator alone (issue 22 item 3): how long it takes to serve the whole certificate list of the
 * steady fixtures to the manager's own client, page by page, with no manager and no store.
 *   node --import tsx bench/steady-sim.ts [sizes…]
 */
import { X509Certificate } from 'node:crypto';
import { loadavg } from 'node:os';
import { RancherApi } from '../src/orchestrators/rancher/api.js';
import { ownerDescription } from '../src/orchestrators/rancher/rancher.js';
import { startRancherSim } from '../test/support/rancher-sim.js';
import { steadyCertificates } from './steady-fixtures.js';

for (const n of process.argv.slice(2).map(Number)) {
  const f = await steadyCertificates(n);
  const sim = await startRancherSim();
  f.certs.forEach((cert, i) => sim.addCertificate({ name: f.names[i]!, cert, key: f.key, description: ownerDescription(new X509Certificate(cert).fingerprint.toLowerCase()) }));
  const api = new RancherApi({ url: sim.url, accessKey: sim.accessKey, secretKey: sim.secretKey, timeoutMs: 300_000 });
  const times: number[] = [];
  for (let i = 0; i < 4; i++) {
    const t = performance.now();
    let pages = 0;
    for await (const page of api.pages('certificates?limit=1000&removed_null=1')) pages += page.length > 0 ? 1 : 0;
    times.push(performance.now() - t);
    if (i === 0) console.log(`${n}: ${pages} pages`);
  }
  console.log(`${n}: the whole list in ${times.map((t) => Math.round(t)).join(', ')} ms (the first fills the simulator's computed fields); load ${loadavg()[0]!.toFixed(1)}`);
  await sim.close();
}
