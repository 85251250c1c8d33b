/**
 * How acme-client talks to the CA: a timeout on every request (acme-client sets none), the extra CA
 * bundle for a private directory's TLS, and our own retry rule in place of acme-client's, which retries a
 * 429 after its Retry-After inside the call (that can be hours) and waits a fixed 5 s otherwise.
 */
import https from 'node:https';
import { createSecureContext, rootCertificates } from 'node:tls';
import * as acme from 'acme-client';
import type { AxiosError, InternalAxiosRequestConfig } from 'axios';
import { retryAfterMs } from '../retry.js';

export interface TransportOptions {
  timeoutMs: number;
  /** Trusted for every CA's TLS (ACME_CA_BUNDLE). */
  caBundle?: string;
  /**
   * A CA's own bundle (ACME_CA_BUNDLE_<n>), by its directory's origin: trusted for that CA's TLS only, so one
   * CA's private root never vouches for another CA's host.
   */
  bundlesByOrigin?: Record<string, string>;
  /** Retries after a network error or a 5xx answer. */
  retries?: number;
  retryBaseMs?: number;
}

type RetryConfig = InternalAxiosRequestConfig & {
  retryAttempt?: number;
  retryValidateStatus?: ((status: number) => boolean) | null;
};

/** Network failures that mean "the request never reached a server that answered": safe to send again. */
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Problems the CA answers that the manager acts on beyond the one failed request. acme-client keeps only
 * the problem's detail in the error it throws, so the type is read here, on the way past.
 */
export type AcmeProblem =
  /** A 429 or a rateLimited problem; `retryAfterMs` from Retry-After, undefined when the CA sent none. */
  | { kind: 'rateLimited'; url: string; retryAfterMs: number | undefined; detail: string }
  /** The CA lost or deactivated the account (e.g. Pebble restarted). */
  | { kind: 'accountDoesNotExist'; url: string }
  /** The CA refused the identifiers of a new order (issue 15 item 4): no order exists. */
  | { kind: 'refused'; url: string; type: string; detail: string }
  /** The CA refused a new order's ARI `replaces` (RFC 9773 §5: alreadyReplaced): no order exists. */
  | { kind: 'replacesRefused'; url: string; detail: string };

/** RFC 8555 §6.7 problems that refuse an order's identifiers at creation. */
const REFUSED_TYPES = new Set(['rejectedIdentifier', 'unsupportedIdentifier', 'malformed'].map((t) => `urn:ietf:params:acme:error:${t}`));

const problemListeners = new Set<(p: AcmeProblem) => void>();

/** Tells `cb` of every such problem; returns a function that stops it. */
export function onAcmeProblem(cb: (p: AcmeProblem) => void): () => void {
  problemListeners.add(cb);
  return () => problemListeners.delete(cb);
}

function classifyProblem(status: number, data: unknown, headers: Record<string, unknown>, url: string): AcmeProblem | undefined {
  const problem = (data ?? {}) as { type?: string; detail?: string };
  if (problem.type === 'urn:ietf:params:acme:error:accountDoesNotExist') return { kind: 'accountDoesNotExist', url };
  if (problem.type === 'urn:ietf:params:acme:error:alreadyReplaced') return { kind: 'replacesRefused', url, detail: problem.detail ?? `HTTP ${status}` };
  if (problem.type && REFUSED_TYPES.has(problem.type)) return { kind: 'refused', url, type: problem.type.slice('urn:ietf:params:acme:error:'.length), detail: problem.detail ?? `HTTP ${status}` };
  if (status !== 429 && problem.type !== 'urn:ietf:params:acme:error:rateLimited') return undefined;
  return { kind: 'rateLimited', url, retryAfterMs: retryAfterMs(headers['retry-after'], Date.now()), detail: problem.detail ?? `HTTP ${status}` };
}

// acme-client's own retry rule goes as soon as this module loads, before any observer is registered.
acme.axios.interceptors.response.clear();
let retryInterceptor: number | undefined;
let agentInterceptor: number | undefined;

function originOf(url: string | undefined): string {
  try {
    return new URL(url ?? '').origin;
  } catch {
    return '';
  }
}

export function configureAcmeTransport(opts: TransportOptions): void {
  const ax = acme.axios;
  const retries = opts.retries ?? 3;
  const base = opts.retryBaseMs ?? 1000;
  ax.defaults.timeout = opts.timeoutMs;
  // One secure context per agent: with a `ca` option Node otherwise parses the whole root store again for
  // each new socket (about 0.3 s of CPU each, most of an issuance's CPU time).
  const agentFor = (extra: string[]) =>
    new https.Agent({ keepAlive: true, ...(extra.length > 0 ? { secureContext: createSecureContext({ ca: [...rootCertificates, ...extra] }) } : {}) });
  const shared = opts.caBundle ? [opts.caBundle] : [];
  ax.defaults.httpsAgent = agentFor(shared);
  const byOrigin = new Map(Object.entries(opts.bundlesByOrigin ?? {}).map(([origin, bundle]) => [origin, agentFor([...shared, bundle])]));
  if (agentInterceptor !== undefined) ax.interceptors.request.eject(agentInterceptor);
  agentInterceptor =
    byOrigin.size === 0
      ? undefined
      : ax.interceptors.request.use((config) => {
          const agent = byOrigin.get(originOf(config.url));
          if (agent) config.httpsAgent = agent;
          return config;
        });
  // Replaces only our own rule from an earlier call, not the observers registered meanwhile.
  if (retryInterceptor !== undefined) ax.interceptors.response.eject(retryInterceptor);
  retryInterceptor = ax.interceptors.response.use(undefined, async (error: AxiosError) => {
    const config = error.config as RetryConfig | undefined;
    if (!config) throw error;
    const { response } = error;
    const transient = response ? response.status >= 500 : TRANSIENT_CODES.has(error.code ?? '');
    const attempt = (config.retryAttempt ?? 0) + 1;
    if (transient && attempt <= retries) {
      config.retryAttempt = attempt;
      // Exponential backoff with full jitter, so parallel orders do not retry in step.
      const delay = base * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, delay));
      return ax.request(config);
    }
    if (!response) throw error;
    const problem = classifyProblem(response.status, response.data, response.headers as Record<string, unknown>, config.url ?? '');
    if (problem) for (const cb of problemListeners) cb(problem);
    // acme-client inspects status codes itself (its request path passes validateStatus: null).
    const validate = config.retryValidateStatus;
    if (!validate || validate(response.status)) return response;
    throw error;
  });
}

/**
 * Counts answered requests as "<status> <METHOD> <path>", for tests and benchmarks that assert "no new
 * order": a created order is "201 POST <newOrder path>", a retried bad nonce is not.
 */
export function countAcmeRequests(): { counts: Map<string, number>; stop: () => void } {
  const counts = new Map<string, number>();
  const stop = observeAcmeRequests((r) => {
    const key = `${r.status} ${r.method} ${new URL(r.url, 'http://x').pathname}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  });
  return { counts, stop };
}

/** One finished HTTP call, for metrics and tests; the orchestrators report theirs in the same shape. */
export interface RequestObservation {
  method: string;
  url: string;
  /** HTTP status, or the network error's code when there was no answer. */
  status: string;
  seconds: number;
}

type Timed = InternalAxiosRequestConfig & { certwranglerStart?: number };

/** Tells `cb` of every ACME request when it ends (for metrics); returns a function that stops it. */
export function observeAcmeRequests(cb: (r: RequestObservation) => void): () => void {
  const ax = acme.axios;
  const req = ax.interceptors.request.use((config: Timed) => {
    config.certwranglerStart = performance.now();
    return config;
  });
  const report = (config: Timed | undefined, status: string) => {
    if (!config) return;
    const seconds = config.certwranglerStart === undefined ? 0 : (performance.now() - config.certwranglerStart) / 1000;
    cb({ method: (config.method ?? 'get').toUpperCase(), url: config.url ?? '', status, seconds });
  };
  const res = ax.interceptors.response.use(
    (r) => {
      report(r.config, String(r.status));
      return r;
    },
    (e: AxiosError) => {
      report(e.config, e.response ? String(e.response.status) : (e.code ?? 'error'));
      throw e;
    },
  );
  return () => {
    ax.interceptors.request.eject(req);
    ax.interceptors.response.eject(res);
  };
}
