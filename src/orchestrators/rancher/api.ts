/**
 * HTTP to the Rancher 1.x (Cattle) API, `specs/rancher-v1-api.md` §1–§3: the v2-beta root, basic auth,
 * a timeout on every call, every status checked, transient failures retried with backoff, and every error
 * turned into one line that names the call and says what to do.
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import axios, { AxiosError, type AxiosInstance, type AxiosRequestConfig } from 'axios';
import { backoffMs, retryWithBackoff } from '../../retry.js';
import { BodyError, PageBuffer, readBody } from './page-body.js';
import type { RequestObservation } from '../../acme/transport.js';

export interface RancherApiOptions {
  /** CATTLE_URL as injected (…/v1) or already …/v2-beta. */
  url: string;
  accessKey: string;
  secretKey: string;
  timeoutMs: number;
  /** Retries after a network error, a timeout, a 5xx or an answer that is not JSON. */
  retries?: number;
  retryBaseMs?: number;
  /** Told of every call when it ends, retries included in its time (for metrics). */
  observe?: (r: RequestObservation) => void;
}

/** A page as read before: its bytes' digest and its next link. */
export interface SeenPage {
  digest: string;
  next: string | null;
}

/** An answer from Rancher that is not the one asked for, or no answer at all. */
export class RancherError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
    readonly fieldName?: string,
  ) {
    super(message);
    this.name = 'RancherError';
  }
}

/**
 * go-rancher's rule (v2/common.go NormalizeUrl): an empty path becomes /v2-beta and a leading /v1 becomes
 * /v2-beta, because agents are given the legacy …/v1 URL. Credentials in the URL are dropped from what we
 * print, never from what we send (we send basic auth from the keys instead).
 */
export function normaliseCattleUrl(raw: string): string {
  const u = new URL(raw);
  let path = u.pathname.replace(/\/+$/, '');
  if (path === '') path = '/v2-beta';
  else if (path === '/v1' || path.startsWith('/v1/')) path = `/v2-beta${path.slice(3)}`;
  u.pathname = path;
  u.username = '';
  u.password = '';
  u.search = '';
  u.hash = '';
  return u.toString().replace(/\/+$/, '');
}

const CREDENTIAL_HINT =
  'check CATTLE_ACCESS_KEY and CATTLE_SECRET_KEY; Rancher injects them into a service labelled ' +
  "io.rancher.container.create_agent: 'true' and io.rancher.container.agent.role: environment";

interface ErrorEnvelope {
  type?: unknown;
  code?: unknown;
  message?: unknown;
  detail?: unknown;
  fieldName?: unknown;
}

function describe(method: string, url: string, e: unknown, timeoutMs: number): RancherError {
  const where = `Rancher API ${method.toUpperCase()} ${url}`;
  if (!(e instanceof AxiosError)) return new RancherError(`${where}: ${(e as Error).message}`);
  const res = e.response;
  if (!res) {
    if (e.code === 'ECONNABORTED' || e.code === 'ETIMEDOUT') return new RancherError(`${where}: no answer within ${timeoutMs} ms (RANCHER_TIMEOUT)`);
    const text = e.code && !e.message.includes(e.code) ? `${e.code} ${e.message}` : e.message || e.code || 'network error';
    return new RancherError(`${where}: ${text}`);
  }
  if (res.status >= 200 && res.status < 300) return new RancherError(`${where}: answer is not JSON (${e.message})`, res.status);
  return describeRefusal(where, res.status, res.data);
}

/** An answer with an error status (not 2xx), from its status and the error envelope in its body (§3.4). */
function describeRefusal(where: string, status: number, data: unknown): RancherError {
  const res = { status, data };
  const env = (typeof res.data === 'object' && res.data !== null ? res.data : {}) as ErrorEnvelope;
  const code = typeof env.code === 'string' ? env.code : undefined;
  const field = typeof env.fieldName === 'string' ? env.fieldName : undefined;
  const text = [env.message, env.detail].filter((x) => typeof x === 'string' && x !== '').join(': ');
  if (res.status === 401) return new RancherError(`${where}: 401 Unauthorized: the API key was refused; ${CREDENTIAL_HINT}`, 401, code);
  if (res.status === 403) return new RancherError(`${where}: 403 Forbidden: the API key may not do this; it must be an environment key (${CREDENTIAL_HINT})`, 403, code);
  const parts = [`${res.status}`, code, field ? `(field ${field})` : undefined, text || undefined].filter(Boolean);
  return new RancherError(`${where}: ${parts.join(' ')}`, res.status, code, field);
}

function isTransient(e: AxiosError): boolean {
  const res = e.response;
  if (!res) return true; // refused, reset, hung up or timed out: nothing was answered
  if (res.status >= 500) return true;
  // A 2xx whose body is not JSON (a proxy's error page, a cut-off answer).
  return res.status < 300 && e.code === AxiosError.ERR_BAD_RESPONSE;
}

export class RancherApi {
  readonly root: string;
  /** scheme://host:port of CATTLE_URL: the only place the keys and certificate bodies may be sent. */
  readonly origin: string;
  private readonly http: AxiosInstance;
  /** The buffer pagesSeen reads pages into, reused from listing to listing (page-body.ts); taken while one runs. */
  private spareBuffer: PageBuffer | undefined = new PageBuffer();

  constructor(private readonly opts: RancherApiOptions) {
    this.root = normaliseCattleUrl(opts.url);
    this.origin = new URL(this.root).origin;
    const base = opts.retryBaseMs ?? 500;
    this.http = axios.create({
      timeout: opts.timeoutMs,
      auth: { username: opts.accessKey, password: opts.secretKey },
      headers: { Accept: 'application/json', 'X-API-No-Challenge': 'true', 'User-Agent': 'certwrangler' },
      responseType: 'json',
      // Fail on a body that is not JSON instead of handing back a string.
      transitional: { silentJSONParsing: false, forcedJSONParsing: true, clarifyTimeoutError: false },
      maxRedirects: 0,
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 8 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 8 }),
    });
    retryWithBackoff(this.http, { retries: opts.retries ?? 3, baseMs: base, retryCondition: isTransient });
  }

  /** An absolute URL for a collection or resource path under the root, e.g. `certificates?limit=1000`. */
  url(path: string): string {
    return `${this.root}/${path.replace(/^\/+/, '')}`;
  }

  /**
   * Links Rancher hands back (links.self, actions.update, pagination.next) are followed with the API keys
   * and certificate bodies: one that leads off CATTLE_URL's origin (a proxy's rewrite, a hostile answer)
   * is refused before anything is sent.
   */
  checkLink(url: string, link: string, method = 'GET'): void {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      throw new RancherError(`Rancher API ${method} ${link} ${JSON.stringify(url)} is not a URL; nothing was sent`);
    }
    if (origin !== this.origin) {
      throw new RancherError(
        `Rancher API ${method} ${link} ${url} points at ${origin}, not CATTLE_URL's origin ${this.origin}; nothing was sent there. ` +
          'If Rancher sits behind a proxy, set CATTLE_URL to the address Rancher uses in its own links',
      );
    }
  }

  private async call(method: 'get' | 'post' | 'put' | 'delete', url: string, body?: unknown, extra: AxiosRequestConfig = {}): Promise<Record<string, unknown>> {
    // Every URL that is not built from the root came from a resource's links or actions.
    const link = /[?&]action=/.test(url) ? `actions.${/[?&]action=([\w-]+)/.exec(url)![1]}` : 'links.self';
    this.checkLink(url, link, method.toUpperCase());
    const started = performance.now();
    let status = 'error';
    try {
      const res = await this.http.request({ method, url, ...(body !== undefined ? { data: body } : {}), ...extra });
      status = String(res.status);
      if (typeof res.data !== 'object' || res.data === null || Array.isArray(res.data)) {
        throw new RancherError(`Rancher API ${method.toUpperCase()} ${url}: answer is not a JSON object`, res.status);
      }
      return res.data as Record<string, unknown>;
    } catch (e) {
      if (e instanceof RancherError) throw e;
      const err = e as AxiosError;
      status = err.response ? String(err.response.status) : (err.code ?? 'error');
      throw describe(method, url, e, this.opts.timeoutMs);
    } finally {
      this.opts.observe?.({ method: method.toUpperCase(), url, status, seconds: (performance.now() - started) / 1000 });
    }
  }

  get(url: string): Promise<Record<string, unknown>> {
    return this.call('get', url);
  }

  post(url: string, body?: unknown): Promise<Record<string, unknown>> {
    return this.call('post', url, body);
  }

  put(url: string, body: unknown): Promise<Record<string, unknown>> {
    return this.call('put', url, body);
  }

  /** DELETE `links.self` (specs §4.6): only to decommission a certificate certwrangler created. */
  delete(url: string): Promise<Record<string, unknown>> {
    return this.call('delete', url);
  }

  /** Every item of a collection: follows `pagination.next` until it is null (§3.3). */
  async listAll(path: string): Promise<unknown[]> {
    const out: unknown[] = [];
    for await (const page of this.pages(path)) out.push(...page);
    return out;
  }

  /**
   * `pages`, for a caller that keeps what it took from each page (issue 22): a page whose bytes hash to the digest
   * `seen(url)` returns is not decoded (no text, no JSON parse; `items` undefined), and its `next` is the one
   * `seen` kept. Any other page is decoded and checked as `pages` does, with its digest and next link.
   */
  async *pagesSeen(path: string, seen: (url: string) => SeenPage | undefined): AsyncGenerator<SeenPage & { url: string; items?: unknown[] }> {
    // Two listings at once (not what a pass does) each get their own.
    const buffer = this.spareBuffer ?? new PageBuffer();
    this.spareBuffer = undefined;
    try {
      yield* this.readPages(path, seen, buffer);
    } finally {
      buffer.clear();
      this.spareBuffer = buffer;
    }
  }

  private async *readPages(path: string, seen: (url: string) => SeenPage | undefined, buffer: PageBuffer): AsyncGenerator<SeenPage & { url: string; items?: unknown[] }> {
    let url: string | null = this.url(path);
    const visited = new Set<string>();
    while (url) {
      if (visited.has(url)) throw new RancherError(`Rancher API GET ${url}: pagination loops back to a page already read`);
      visited.add(url);
      const known = seen(url);
      const { digest, page } = await this.getPage(url, known, buffer);
      if (!page && known) {
        yield { url, digest, next: known.next };
        url = known.next;
        continue;
      }
      if (!page || page.type !== 'collection' || !Array.isArray(page.data)) {
        throw new RancherError(`Rancher API GET ${url}: expected a collection, got ${JSON.stringify(page?.type ?? null)}`);
      }
      const p = page.pagination as { next?: unknown } | null | undefined;
      const next = p && typeof p.next === 'string' && p.next !== '' ? p.next : null;
      if (next) this.checkLink(next, 'pagination.next');
      yield { url, digest, next, items: page.data };
      url = next;
    }
  }

  /**
   * One page of a listing, its body read as it streams in (page-body.ts): `page` is undefined when the body's digest
   * is `known`'s (not decoded). Pages are the one call whose body is retried here rather than by axios-retry, which
   * sees only what happens before the body: a body cut short or not whole within the timeout, a 5xx, and a 2xx
   * that is not JSON are asked again with the same backoff (retries, retryBaseMs, Retry-After); a network error
   * before any answer is still axios-retry's. One observation covers the page, its retries included.
   */
  private async getPage(url: string, known: SeenPage | undefined, buffer: PageBuffer): Promise<{ digest: string; page?: Record<string, unknown> }> {
    this.checkLink(url, 'links.self', 'GET');
    const where = `Rancher API GET ${url}`;
    const started = performance.now();
    let status = 'error';
    try {
      for (let attempt = 1; ; attempt++) {
        let res;
        try {
          // Every status is read here (validateStatus), so that no answer's body is left unread on a kept-alive socket.
          res = await this.http.request({ method: 'get', url, responseType: 'stream', validateStatus: () => true });
        } catch (e) {
          const err = e as AxiosError;
          status = err.response ? String(err.response.status) : (err.code ?? 'error');
          throw describe('get', url, e, this.opts.timeoutMs);
        }
        status = String(res.status);
        let problem: RancherError;
        try {
          buffer.start(Number(res.headers['content-length']));
          const digest = await readBody(res.data as Readable, buffer, this.opts.timeoutMs);
          if (res.status >= 200 && res.status < 300) {
            if (known?.digest === digest) return { digest };
            let page: unknown;
            try {
              page = JSON.parse(buffer.text());
            } catch (e) {
              page = undefined;
              problem = new RancherError(`${where}: answer is not JSON (${(e as Error).message})`, res.status);
            }
            if (page !== undefined) {
              if (typeof page !== 'object' || page === null || Array.isArray(page)) throw new RancherError(`${where}: answer is not a JSON object`, res.status);
              return { digest, page: page as Record<string, unknown> };
            }
          } else {
            let envelope: unknown;
            try {
              envelope = JSON.parse(buffer.text());
            } catch {
              envelope = undefined;
            }
            problem = describeRefusal(where, res.status, envelope);
            if (res.status < 500) throw problem;
          }
        } catch (e) {
          if (!(e instanceof BodyError)) throw e;
          status = e.timedOut ? 'ETIMEDOUT' : 'ECONNRESET';
          problem = new RancherError(`${where}: ${e.message}`, res.status);
        }
        if (attempt > (this.opts.retries ?? 3)) throw problem!;
        await new Promise((r) => setTimeout(r, backoffMs(attempt, this.opts.retryBaseMs ?? 500, res.headers['retry-after'])));
      }
    } finally {
      this.opts.observe?.({ method: 'GET', url, status, seconds: (performance.now() - started) / 1000 });
    }
  }

  /**
   * A collection page by page (§3.3), each page's items as soon as it is read: a caller that keeps only what
   * it needs of each holds one page of raw answers at a time, not the whole list (issue 22: 100 pages of 1,000
   * certificates, PEMs included).
   */
  async *pages(path: string): AsyncGenerator<unknown[]> {
    let url: string | null = this.url(path);
    const seen = new Set<string>();
    while (url) {
      if (seen.has(url)) throw new RancherError(`Rancher API GET ${url}: pagination loops back to a page already read`);
      seen.add(url);
      const page = await this.get(url);
      if (page.type !== 'collection' || !Array.isArray(page.data)) {
        throw new RancherError(`Rancher API GET ${url}: expected a collection, got ${JSON.stringify(page.type ?? null)}`);
      }
      const p = page.pagination as { next?: unknown } | null | undefined;
      url = p && typeof p.next === 'string' && p.next !== '' ? p.next : null;
      if (url) this.checkLink(url, 'pagination.next');
      yield page.data;
    }
  }
}
