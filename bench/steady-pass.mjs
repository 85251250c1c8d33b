// One manager pass from the built code, reporting its own wall time, peak RSS and ACME requests as JSON.
// Run by bench/steady.ts as a child process so the figures are the manager's alone.
import { loadConfig } from '../dist/config.js';
import { createLogger } from '../dist/log.js';
import { assemble } from '../dist/assemble.js';
import { runPass } from '../dist/reconciler.js';
import { countAcmeRequests } from '../dist/acme/transport.js';

const started = performance.now();
const deps = await assemble(loadConfig(), createLogger('warn'));
const acme = countAcmeRequests();
const report = await runPass(deps);
const wallMs = performance.now() - started;
acme.stop();
const reasons = {};
for (const r of report.results) reasons[r.decision.reason] = (reasons[r.decision.reason] ?? 0) + 1;
console.log(JSON.stringify({ wallMs, maxRssKb: process.resourceUsage().maxRSS, acmeRequests: [...acme.counts.values()].reduce((a, b) => a + b, 0), certificates: report.results.length, reasons, ok: report.ok }));
process.exit(0);
