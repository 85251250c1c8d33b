/**
 * HTTP to the Docker Engine API (over the unix socket, or tcp:// with TLS as the docker CLI does it): a timeout on
 * every call, every status checked, reads retried with backoff (never an action: a signal sent twice is two
 * reloads), and every error turned into one line naming the call and what to do.
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import axios, { AxiosError, type AxiosInstance, type AxiosRequestConfig } from 'axios';
import { retryWithBackoff, isBusyOrDown } from '../../retry.js';
import type { RequestObservation } from '../../acme/transport.js';
import type { DockerEndpoint } from './env.js';

export interface DockerApiOptions {
  endpoint: DockerEndpoint;
  /** DOCKER_HOST as given, for messages. */
  hostText: string;
  timeoutMs: number;
  retries?: number;
  retryBaseMs?: number;
  observe?: (r: RequestObservation) => void;
}

export class DockerError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'DockerError';
  }
}

export class DockerApi {
  private readonly http: AxiosInstance;
  readonly base: string;

  constructor(private readonly opts: DockerApiOptions) {
    const e = opts.endpoint;
    this.base = e.kind === 'unix' ? 'http://docker' : `${e.tls ? 'https' : 'http'}://${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
    this.http = axios.create({
      baseURL: this.base,
      timeout: opts.timeoutMs,
      ...(e.kind === 'unix' ? { socketPath: e.socketPath } : {}),
      headers: { 'User-Agent': 'certwrangler' },
      maxRedirects: 0,
      transitional: { silentJSONParsing: false, forcedJSONParsing: true, clarifyTimeoutError: false },
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 8 }),
      ...(e.kind === 'tcp' && e.tls ? { httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 8, ca: e.tls.ca, cert: e.tls.cert, key: e.tls.key }) } : {}),
    });
    retryWithBackoff(this.http, { retries: opts.retries ?? 3, baseMs: opts.retryBaseMs ?? 500, retryCondition: (err) => err.config?.method === 'get' && isBusyOrDown(err) });
  }

  private describe(method: string, path: string, e: unknown, timeoutMs: number): DockerError {
    const where = `Docker API ${method.toUpperCase()} ${path} on ${this.opts.hostText}`;
    if (!(e instanceof AxiosError)) return new DockerError(`${where}: ${(e as Error).message}`);
    const res = e.response;
    if (!res) {
      if (e.code === 'ECONNABORTED' || e.code === 'ETIMEDOUT') return new DockerError(`${where}: no answer within ${timeoutMs} ms (DOCKER_TIMEOUT)`);
      const hint = e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'ECONNREFUSED' ? ': is the daemon running, and is its socket mounted into this container (-v /var/run/docker.sock:/var/run/docker.sock) and readable by this user?' : '';
      return new DockerError(`${where}: ${e.code ?? ''} ${e.message}${hint}`.replace(/\s+/g, ' '));
    }
    const body = res.data as { message?: unknown } | undefined;
    const text = typeof body?.message === 'string' ? body.message : Buffer.isBuffer(res.data) ? res.data.toString('utf8').slice(0, 300) : '';
    return new DockerError(`${where}: ${res.status}${text ? ` ${text}` : ''}`, res.status);
  }

  async request<T>(method: 'get' | 'post' | 'delete', path: string, body?: unknown, extra: AxiosRequestConfig = {}): Promise<T> {
    const started = performance.now();
    let status = 'error';
    try {
      const res = await this.http.request({ method, url: path, ...(body !== undefined ? { data: body } : {}), ...extra });
      status = String(res.status);
      return res.data as T;
    } catch (e) {
      const err = e as AxiosError;
      status = err.response ? String(err.response.status) : (err.code ?? 'error');
      throw this.describe(method, path, e, typeof extra.timeout === 'number' ? extra.timeout : this.opts.timeoutMs);
    } finally {
      this.opts.observe?.({ method: method.toUpperCase(), url: `${this.opts.hostText}${path.replace(/\?.*/, '')}`, status, seconds: (performance.now() - started) / 1000 });
    }
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('get', path);
  }

  post<T>(path: string, body?: unknown, extra?: AxiosRequestConfig): Promise<T> {
    return this.request<T>('post', path, body, extra);
  }

  delete(path: string): Promise<unknown> {
    return this.request('delete', path);
  }

  /**
   * A streamed answer (/events): no overall timeout, since the stream is idle while nothing happens; the
   * answer's headers must come within DOCKER_TIMEOUT all the same. `signal` ends it.
   */
  async stream(path: string, signal: AbortSignal): Promise<Readable> {
    const headers = new AbortController();
    const timer = setTimeout(() => headers.abort(), this.opts.timeoutMs);
    const both = AbortSignal.any([signal, headers.signal]);
    try {
      const res = await this.http.request<Readable>({ method: 'get', url: path, responseType: 'stream', timeout: 0, signal: both, 'axios-retry': { retries: 0 } } as AxiosRequestConfig);
      return res.data;
    } catch (e) {
      if (headers.signal.aborted && !signal.aborted) throw new DockerError(`Docker API GET ${path} on ${this.opts.hostText}: no answer within ${this.opts.timeoutMs} ms (DOCKER_TIMEOUT)`);
      throw this.describe('get', path, e, this.opts.timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }
}
