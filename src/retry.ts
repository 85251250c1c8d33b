/**
 * Retries for the HTTP APIs certwrangler calls besides ACME (Rancher, the webhook, Cloudflare): doubling
 * waits with jitter, so that clients restarting together do not hit a recovering server in step, and the
 * server's own Retry-After when it sends one.
 */
import type { AxiosError, AxiosInstance } from 'axios';
import axiosRetry from 'axios-retry';

/** A Retry-After longer than this is cut short: a pass must not sleep for hours inside one call. */
const MAX_RETRY_AFTER_MS = 60_000;

/** Seconds or an HTTP date, as RFC 8555 §8.2 and RFC 9110 allow; undefined when absent or unreadable. */
export function retryAfterMs(header: unknown, now: number): number | undefined {
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** No answer at all, "slow down" (429) or a server error: worth sending again after a wait. */
export function isBusyOrDown(e: AxiosError): boolean {
  return !e.response || e.response.status === 429 || e.response.status >= 500;
}

export interface RetryPolicy {
  retries: number;
  /** The first wait; each further one doubles (times a jitter of 0.5–1). */
  baseMs: number;
  retryCondition: (e: AxiosError) => boolean;
}

export function retryWithBackoff(http: AxiosInstance, policy: RetryPolicy): void {
  axiosRetry(http, {
    retries: policy.retries,
    shouldResetTimeout: true,
    retryCondition: policy.retryCondition,
    retryDelay: (n, e) => backoffMs(n, policy.baseMs, e.response?.headers['retry-after']),
  });
}

/** The wait before retry `n` (1 for the first): the server's Retry-After if it sent one, else the doubling wait. */
export function backoffMs(n: number, baseMs: number, retryAfter?: unknown): number {
  const asked = retryAfterMs(retryAfter, Date.now());
  return asked !== undefined ? Math.min(asked, MAX_RETRY_AFTER_MS) : baseMs * 2 ** (n - 1) * (0.5 + Math.random() / 2);
}
