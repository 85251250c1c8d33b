/**
 * VERIFY (issue 19 item 2, DESIGN §10 "Proof"): after the pass has pushed, ask each balancer with a TLS
 * handshake and SNI, for every name, which certificate it serves, and compare it with the one pushed.
 * Retried with backoff up to VERIFY_TIMEOUT; a balancer still serving the old one gets one more reload
 * (its `update` action, or ON_CHANGE_COMMAND), then the same wait. A certificate still not served is
 * reported as NotServed (status, event, webhook, metric) and is never ordered again for it: the next
 * passes check it again and say when it is served.
 */
import pLimit from 'p-limit';
import { runHook } from '../hooks.js';
import { hookPaths } from '../hook-paths.js';
import type { CertResult, PassDeps } from '../reconciler.js';
import { servedAt } from './handshake.js';
import { readVerifyBook, writeVerifyBook } from './verify-book.js';

/** One name at one balancer address, as checked. */
export interface ServingCheck {
  balancer: string;
  address: string;
  name: string;
  /** What the balancer presented (SHA-256, colon hex), or why nothing could be read. */
  fingerprint?: string;
  subject?: string;
  notAfter?: string;
  error?: string;
  /** It is the certificate certwrangler holds (and pushed). */
  matches: boolean;
}

export interface Endpoint {
  balancer: string;
  address: string;
}

// Checks of certificates at once; each is a handful of TLS handshakes.
const VERIFY_CONCURRENCY = 8;
// One handshake's own timeout, within VERIFY_TIMEOUT.
const HANDSHAKE_TIMEOUT_MS = 10_000;
// Waits between checks: soon at first (a reload takes a second), then at most every 5 s, as a Rancher
// balancer's controller polls its metadata.
const FIRST_WAIT_MS = 250;
const MAX_WAIT_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const allMatch = (checks: ServingCheck[]) => checks.length > 0 && checks.every((c) => c.matches);

/** Where the balancers serving `name` listen: VERIFY_ADDRS, or what the orchestrator knows (Rancher publicEndpoints). */
export async function endpointsFor(deps: PassDeps, name: string): Promise<Endpoint[]> {
  const { addrs } = deps.config.verify;
  if (addrs) return addrs.map((address) => ({ balancer: 'VERIFY_ADDRS', address }));
  return (await deps.orchestrator.servingEndpoints?.(name)) ?? [];
}

/** Every name at every endpoint, once. */
export async function checkServing(endpoints: Endpoint[], names: string[], fingerprint: string | undefined, timeoutMs: number): Promise<ServingCheck[]> {
  const each = endpoints.flatMap((e) => names.map((name) => ({ ...e, name })));
  return Promise.all(
    each.map(async (e) => {
      const got = await servedAt(e.address, e.name, Math.min(timeoutMs, HANDSHAKE_TIMEOUT_MS));
      if ('error' in got) return { ...e, error: got.error, matches: false };
      return { ...e, ...got, matches: got.fingerprint === fingerprint };
    }),
  );
}

async function untilServed(endpoints: Endpoint[], names: string[], fingerprint: string, timeoutMs: number): Promise<ServingCheck[]> {
  const started = Date.now();
  let wait = FIRST_WAIT_MS;
  for (;;) {
    const checks = await checkServing(endpoints, names, fingerprint, timeoutMs);
    if (allMatch(checks) || Date.now() - started >= timeoutMs) return checks;
    await sleep(Math.min(wait, Math.max(0, timeoutMs - (Date.now() - started))));
    wait = Math.min(wait * 2, MAX_WAIT_MS);
  }
}

/** One line per check that failed: where, for which name, and what it serves instead. */
export function describeChecks(checks: ServingCheck[]): string {
  return checks
    .filter((c) => !c.matches)
    .map((c) => `${c.balancer} at ${c.address} for ${c.name}: ${c.error ?? `serves sha256 ${c.fingerprint!.slice(0, 23)}… (${c.subject}, until ${c.notAfter})`}`)
    .join('; ');
}

/** The one extra reload: the orchestrator's (Rancher: each balancer's update action), else ON_CHANGE_COMMAND. */
async function reloadAgain(deps: PassDeps, r: CertResult): Promise<string> {
  const { orchestrator, config } = deps;
  if (orchestrator.reloadAgain) return orchestrator.reloadAgain(r.name);
  if (!config.onChangeCommand) return 'no reload to run (set ON_CHANGE_COMMAND to reload the balancer)';
  // The paths every hook gets: the files target's (files, docker), else the files store's, else none.
  const paths = hookPaths(deps.store, orchestrator.files, r.name);
  const vars = { CERTWRANGLER_EVENT: 'reload', CERTWRANGLER_NAME: r.name, CERTWRANGLER_NAMES: r.names.join(','), CERTWRANGLER_REASON: 'NotServed', ...paths };
  const run = await runHook(config.onChangeCommand, vars, config.hookTimeoutMs);
  return run.timedOut ? `ON_CHANGE_COMMAND killed after ${config.hookTimeoutMs} ms` : `ON_CHANGE_COMMAND ran again (exit ${run.code})`;
}

/**
 * After act: every certificate pushed this pass is checked (with one more reload when needed), and every one
 * last found not served is checked once again. Sets `served` and `serving` on the results; a certificate
 * not served is a failure of the pass (`--once` exits 1) but starts no backoff and no order.
 */
export async function verifyDeploys(deps: PassDeps, results: CertResult[]): Promise<void> {
  const { config, log } = deps;
  if (!config.verify.enabled) return;
  const book = await readVerifyBook(deps.store.backend);
  let changed = false;
  const limit = pLimit(VERIFY_CONCURRENCY);
  // What was neither pushed nor found not served keeps the last verdict, at once: no check, no promise.
  const toCheck = results.filter((r) => {
    const last = book[r.name];
    if (r.pushed || last?.served === false) return true;
    if (last && r.outcome !== 'foreign') r.served = last.served;
    return false;
  });
  await Promise.all(
    toCheck.map((r) =>
      limit(async () => {
        const last = book[r.name];
        const local = await deps.store.read(r.name, { recover: false });
        if (local.state !== 'present') return;
        const fingerprint = local.info.fingerprint;
        let endpoints: Endpoint[];
        try {
          endpoints = await endpointsFor(deps, r.name);
        } catch (e) {
          log.warn({ cert: r.name, error: (e as Error).message }, `${r.name}: VERIFY cannot find the balancers' addresses: ${(e as Error).message}`);
          return;
        }
        if (endpoints.length === 0) {
          if (last) (delete book[r.name], (changed = true));
          return;
        }
        let checks = r.pushed ? await untilServed(endpoints, r.names, fingerprint, config.verify.timeoutMs) : await checkServing(endpoints, r.names, fingerprint, config.verify.timeoutMs);
        if (r.pushed && !allMatch(checks)) {
          log.warn({ cert: r.name, reason: 'NotServedYet', checks: describeChecks(checks) }, `${r.name}: pushed, but not served after ${config.verify.timeoutMs} ms (${describeChecks(checks)}); reloading once more`);
          const how = await reloadAgain(deps, r).catch((e: Error) => `the reload failed: ${e.message}`);
          log.info({ cert: r.name, action: 'reload' }, `${r.name}: ${how}`);
          checks = await untilServed(endpoints, r.names, fingerprint, config.verify.timeoutMs);
        }
        const served = allMatch(checks);
        r.served = served;
        r.serving = checks;
        const detail = served ? undefined : describeChecks(checks);
        book[r.name] = { fingerprint, served, checkedAt: new Date().toISOString(), ...(detail ? { detail } : {}) };
        changed = true;
        if (served) {
          const where = [...new Set(checks.map((c) => `${c.balancer} at ${c.address}`))].join(', ');
          log.info({ cert: r.name, reason: 'Served' }, `${r.name}: served by ${where}${last?.served === false ? ' (it was not before)' : ''}`);
          return;
        }
        r.outcome = 'failed';
        r.error = `NotServed: ${detail}; the certificate is in place but the balancer does not serve it: reload it, or fix ON_CHANGE_COMMAND / the balancer; it is not ordered again`;
        log.error({ cert: r.name, reason: 'NotServed', checks: detail }, `${r.name}: ${r.error}`);
        // Once per certificate that stops being served, not every pass it stays so.
        if (last?.served !== false || last.fingerprint !== fingerprint) {
          deps.events?.emit({ type: 'not-served', name: r.name, names: r.names, at: new Date().toISOString(), reason: 'NotServed', error: r.error });
        }
      }),
    ),
  );
  if (changed) await writeVerifyBook(deps.store.backend, book).catch((e: Error) => log.error({ error: e.message }, `VERIFY: cannot record what the balancers serve: ${e.message}`));
}

/** `plan`: what each balancer serves now for each certificate's name, compared with the local copy. */
export async function servingNow(deps: PassDeps, results: CertResult[]): Promise<void> {
  if (!deps.config.verify.enabled) return;
  const limit = pLimit(VERIFY_CONCURRENCY);
  await Promise.all(
    results.map((r) =>
      limit(async () => {
        const endpoints = await endpointsFor(deps, r.name).catch(() => [] as Endpoint[]);
        if (endpoints.length === 0) return;
        const local = await deps.store.read(r.name, { recover: false });
        r.serving = await checkServing(endpoints, [r.names[0]!], local.state === 'present' ? local.info.fingerprint : undefined, HANDSHAKE_TIMEOUT_MS);
      }),
    ),
  );
}
