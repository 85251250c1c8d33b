// Manager passes from the built code in one process, as a running manager makes them: the first pass
// (cold: every file read and parsed) and the next ones (warm). Reports wall time per pass, peak RSS and
// ACME requests as one JSON line. Run by bench/steady.ts as a child so the figures are the manager's alone.
import { loadConfig } from '../dist/config.js';
import { createLogger } from '../dist/log.js';
import { assemble } from '../dist/assemble.js';
import { runPass } from '../dist/reconciler.js';
import { countAcmeRequests } from '../dist/acme/transport.js';

const passes = Number(process.env.BENCH_PASSES ?? 3);
const deps = await assemble(loadConfig(), createLogger('warn'));
const acme = countAcmeRequests();
const wallMs = [];
const reasons = {};
let ok = true;
for (let i = 0; i < passes; i++) {
  const t = performance.now();
  const report = await runPass(deps);
  wallMs.push(performance.now() - t);
  ok &&= report.ok;
  if (i === 0) for (const r of report.results) reasons[r.decision.reason] = (reasons[r.decision.reason] ?? 0) + 1;
}
acme.stop();
console.log(JSON.stringify({ wallMs, maxRssKb: process.resourceUsage().maxRSS, acmeRequests: [...acme.counts.values()].reduce((a, b) => a + b, 0), reasons, ok }));
process.exit(0);
