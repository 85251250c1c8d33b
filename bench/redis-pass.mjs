// Manager passes over STORE=redis from the built code, in one process as a running manager makes them, holding
// the store's lease as a manager does. Around each pass it reads Redis's INFO commandstats (on its own
// connection) so the parent gets the commands that pass sent. One JSON line, as bench/steady-pass.mjs.
import { Redis } from 'ioredis';
import { loadConfig } from '../dist/config.js';
import { createLogger } from '../dist/log.js';
import { assemble, openStore } from '../dist/assemble.js';
import { runPass } from '../dist/reconciler.js';
import { countAcmeRequests } from '../dist/acme/transport.js';

/** Calls per command from INFO commandstats ("cmdstat_get:calls=3,usec=…"). */
async function commandstats(r) {
  const out = {};
  for (const m of (await r.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}

const passes = Number(process.env.BENCH_PASSES ?? 3);
const log = createLogger('warn');
const config = loadConfig();
// As the CLI does: open the store, take its lease, then assemble over it.
const store = await openStore(config, log);
const lock = await store.lock({ waitMs: 30_000 });
const deps = await assemble(config, log, { store });
const info = new Redis(process.env.REDIS_URL);
const acme = countAcmeRequests();
const wallMs = [];
const commands = [];
const reasons = {};
let ok = true;
for (let i = 0; i < passes; i++) {
  const before = await commandstats(info);
  const t = performance.now();
  const report = await runPass(deps);
  wallMs.push(performance.now() - t);
  const after = await commandstats(info);
  // The INFO that read `before` is counted in `after`; the lease's renewals are counted as the manager's own.
  const delta = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) - (k === 'info' ? 1 : 0) > 0) delta[k] = v - (before[k] ?? 0) - (k === 'info' ? 1 : 0);
  commands.push(delta);
  ok &&= report.ok;
  if (i === 0) for (const r of report.results) reasons[r.decision.reason] = (reasons[r.decision.reason] ?? 0) + 1;
}
acme.stop();
info.disconnect();
await lock.release();
await store.close();
console.log(JSON.stringify({ wallMs, commands, maxRssKb: process.resourceUsage().maxRSS, acmeRequests: [...acme.counts.values()].reduce((a, b) => a + b, 0), reasons, ok }));
process.exit(0);
