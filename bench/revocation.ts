/**
 * The revocation drill (issue 17 item 7): a fleet of certificates issued by a CA that speaks ARI (a real Pebble
 * behind the ACME front, test/support/acme-front.ts); the CA moves the renewal windows of a share of them to
 * "now", as Let's Encrypt did for about 3 million certificates in its 2026 drill. Measured: the wall time of
 * the pass that replaces them all (it runs at the next poll, one Retry-After after the last), and the ARI
 * requests of a steady-state pass (one per certificate once Retry-After has passed, none before).
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { LocalStore } from '../src/certs/store.js';
import { acmeLab, passWithOrders } from '../test/support/harness.js';
import { startAcmeFront } from '../test/support/acme-front.js';
import { median } from './lib.js';
import { FilesStore } from '../src/stores/files/files-store.js';

const HOUR = 3_600_000;

export interface RevocationResult {
  certificates: number;
  moved: number;
  /** Wall time of the pass that replaced every moved certificate. */
  replaceMs: number;
  /** Passes it took (1: all within one poll interval). */
  passes: number;
  ordersWithReplaces: number;
  /** renewalInfo requests of a pass before Retry-After, and of one after it (steady state, nothing moved). */
  ariRequestsWithinRetryAfter: number;
  ariRequestsPerPoll: number;
  /** Wall time of a steady-state pass that polls every certificate. */
  pollPassMs: number;
}

export async function benchRevocation(opts: { certificates: number; share: number; runs: number; base: string }): Promise<RevocationResult> {
  const results: RevocationResult[] = [];
  for (let run = 0; run < opts.runs; run++) results.push(await once(opts, join(opts.base, `run-${run}`)));
  const pick = (k: keyof RevocationResult) => median(results.map((r) => r[k]));
  return { ...results[0]!, replaceMs: pick('replaceMs'), pollPassMs: pick('pollPassMs') };
}

async function once(opts: { certificates: number; share: number }, dir: string): Promise<RevocationResult> {
  mkdirSync(dir, { recursive: true });
  const lab = acmeLab(dir);
  const pebble = await lab.pebble('ca');
  const front = await startAcmeFront(pebble);
  try {
    const data = existsSync('/dev/shm') ? join('/dev/shm', `certwrangler-bench-revocation-${process.pid}`) : join(dir, 'data');
    const env = { DATA_DIR: data, CERTS_DIR: join(data, 'live'), WEBROOT_DIR: lab.webroot, LOG_LEVEL: 'silent', ACME_DIRECTORY_URL: front.directoryUrl, ACME_CA_BUNDLE: pebble.caBundlePath, STAGING: 'false', ACME_CONCURRENCY: '16', KEY_TYPE: 'ecdsa-p256' };
    const t0 = new Date();
    front.setClock(() => t0);
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const store = new LocalStore(new FilesStore(data));
    await store.init();
    // Spread over many registered domains, as a hosting fleet is.
    const names = Array.from({ length: opts.certificates }, (_, i) => `www.site${i}.bench.example.com`);
    const ids = new Map<string, string>();
    const writes = pLimit(16);
    await Promise.all(
      names.map((name) => {
        const m = front.mint([name], spki);
        ids.set(name, m.certId);
        return writes(() => store.write({ name, names: [name], key, cert: m.cert, chain: m.chain, kind: 'production', directoryUrl: front.directoryUrl }));
      }),
    );
    const fleet = { ...env, DOMAINS: names.join(';') };
    const at = (h: number) => new Date(t0.getTime() + h * HOUR);
    const pass = (now: Date) => {
      front.setClock(() => now);
      return passWithOrders(fleet, { now: () => now });
    };
    await pass(at(0)); // first pass: pushes, and reads every window
    let asked = front.renewalInfoRequests();
    await pass(at(1));
    const within = front.renewalInfoRequests() - asked;
    asked = front.renewalInfoRequests();
    let started = performance.now();
    await pass(at(6.1));
    const pollPassMs = performance.now() - started;
    const perPoll = front.renewalInfoRequests() - asked;

    // The drill: windows moved to an hour ago for `share` of the fleet; the next poll is one Retry-After later.
    const moved = names.filter((_, i) => i % 100 < opts.share * 100);
    const drill = at(12.2);
    for (const n of moved) front.setWindow(ids.get(n)!, { start: new Date(drill.getTime() - HOUR), end: new Date(drill.getTime() - HOUR / 2) });
    const before = front.orders.length;
    started = performance.now();
    let passes = 0;
    let now = drill;
    while (front.orders.filter((o, i) => i >= before && o.url).length < moved.length && passes < 5) {
      await pass(now);
      passes++;
      now = new Date(now.getTime() + 6 * HOUR);
    }
    const replaceMs = performance.now() - started;
    const made = front.orders.slice(before).filter((o) => o.url);
    return {
      certificates: opts.certificates,
      moved: moved.length,
      replaceMs,
      passes,
      ordersWithReplaces: made.filter((o) => o.replaces === ids.get(o.identifiers[0]!.value)).length,
      ariRequestsWithinRetryAfter: within,
      ariRequestsPerPoll: perPoll,
      pollPassMs,
    };
  } finally {
    await front.close();
    await lab.stop();
    rmSync(join('/dev/shm', `certwrangler-bench-revocation-${process.pid}`), { recursive: true, force: true });
  }
}
