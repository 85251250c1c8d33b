/**
 * Waiting for an authorization or an order to leave `pending`/`processing`. acme-client's own wait starts
 * at its backoff minimum and ignores Retry-After; a CA that validates in milliseconds (Pebble, or Let's
 * Encrypt on a warm path) then costs most of an issuance in sleeping. We ask soon, honour the CA's
 * Retry-After when it sends one, and otherwise back off to a ceiling, within a deadline.
 */
import type * as acme from 'acme-client';
import { setTimeout as delay } from 'node:timers/promises';
import { retryAfterMs } from '../retry.js';

export interface PollOptions {
  /** First wait after the challenge was answered or the order finalized. */
  firstMs: number;
  /** Ceiling of our own backoff (a Retry-After from the CA may be longer, up to the deadline). */
  maxMs: number;
  /** Give up after this long in total. */
  deadlineMs: number;
  /** Each of our own waits is this many times the last (2 when not given), up to `maxMs`. */
  factor?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** Shutdown: stop waiting at once and throw the signal's reason. */
  signal?: AbortSignal;
}

// Pebble (PEBBLE_VA_NOSLEEP) settles an authorization 10–50 ms after its challenge is answered, and a finalized
// order within about 10 ms: a first look at 20 ms, then 40, 80, … finds most at the first or second look, where
// 50 then 100 ms cost a pass of 10 names about 0.1 s of waiting. A slow CA costs one request more per object.
export const DEFAULT_POLL: PollOptions = { firstMs: 20, maxMs: 4000, deadlineMs: 120_000 };

/**
 * The order, polled for the validation of all its authorizations at once (src/acme/issue.ts): one request a look
 * where each authorization took one, so the looks may come closer (20, 30, 45, … ms): ten authorizations that
 * Pebble validated in 50–100 ms under load were found by a third look at about 120 ms.
 */
export const ORDER_VALIDATION_POLL: Pick<PollOptions, 'factor'> = { factor: 1.5 };

export interface Polled {
  status: string;
  [k: string]: unknown;
}

interface Response {
  status: number;
  data: unknown;
  headers: Record<string, unknown>;
}

/** POST-as-GET of one URL; the only part of acme-client below its public API that we use. */
export type Fetch = (url: string) => Promise<Response>;

export function fetchWith(client: acme.Client): Fetch {
  const api = (client as unknown as { api: { apiRequest(url: string, payload: null, codes: number[]): Promise<Response> } }).api;
  return (url) => api.apiRequest(url, null, [200]);
}

const PENDING = new Set(['pending', 'processing']);

export class PollTimeout extends Error {
  constructor(url: string, status: string, ms: number) {
    super(`still ${status} after ${Math.round(ms / 1000)} s (${url})`);
    this.name = 'PollTimeout';
  }
}

/** Returns the object once its status is anything but pending/processing; the caller judges that status. */
export async function pollUntilSettled(fetch: Fetch, url: string, opts: PollOptions = DEFAULT_POLL): Promise<Polled> {
  const { signal } = opts;
  const sleep = opts.sleep ?? ((ms: number) => delay(ms, undefined, signal ? { signal } : {}).catch(() => signal?.throwIfAborted()));
  const now = opts.now ?? Date.now;
  const started = now();
  let ours = opts.firstMs;
  let wait = opts.firstMs;
  for (;;) {
    await sleep(wait);
    signal?.throwIfAborted();
    const res = await fetch(url);
    const data = res.data as Polled;
    if (!data || typeof data.status !== 'string') throw new Error(`${url}: the CA's answer has no status`);
    if (!PENDING.has(data.status)) return data;
    const elapsed = now() - started;
    if (elapsed >= opts.deadlineMs) throw new PollTimeout(url, data.status, elapsed);
    ours = Math.min(opts.maxMs, ours * (opts.factor ?? 2));
    const asked = retryAfterMs(res.headers['retry-after'], now());
    // Jitter keeps parallel orders from polling in step.
    wait = Math.min(asked ?? ours * (0.75 + Math.random() / 4), opts.deadlineMs - elapsed);
  }
}
