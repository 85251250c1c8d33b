/**
 * Reuse of the fresh nonce that every ACME response carries (RFC 8555 §7.2). acme-client asks newNonce
 * with a HEAD before every signed request, which doubles the requests an order makes. The pool keeps the
 * newest few nonces of one client and hands each out once; when it is empty we ask newNonce with GET (204),
 * which RFC 8555 allows as well: a HEAD answer without Content-Length (Pebble's) makes Node close the
 * connection, so every HEAD cost a new TLS handshake.
 */
import type * as acme from 'acme-client';

interface Resp {
  status: number;
  headers: Record<string, unknown>;
  data?: unknown;
}

interface HttpClientInternals {
  maxBadNonceRetries: number;
  request(url: string, method: string, opts?: unknown): Promise<Resp>;
  getNonce(): Promise<string>;
  getResourceUrl(resource: string): Promise<string>;
}

/** Enough for the parallel requests of a few orders; older nonces are the likeliest to have expired. */
const MAX_POOLED = 32;

// acme-client retries a badNonce answer 5 times. A CA refusing half its nonces (Pebble's
// PEBBLE_WFE_NONCEREJECT=50) then fails about one signed request in 64, i.e. most orders of a pass
// sooner or later; 20 retries make that one in a million. Each retry is one request, with no wait.
const BAD_NONCE_RETRIES = 20;

export function poolNonces(client: acme.Client): acme.Client {
  const http = (client as unknown as { http: HttpClientInternals }).http;
  const pool: string[] = [];
  http.maxBadNonceRetries = BAD_NONCE_RETRIES;
  const request = http.request.bind(http);
  http.request = async (url, method, opts) => {
    const resp = await request(url, method, opts);
    const nonce = resp.headers['replay-nonce'];
    // A badNonce answer's nonce is the one acme-client itself retries with: pooling it would spend it twice.
    const badNonce = resp.status === 400 && (resp.data as { type?: string } | undefined)?.type === 'urn:ietf:params:acme:error:badNonce';
    if (typeof nonce === 'string' && method !== 'head' && !badNonce) {
      pool.push(nonce);
      if (pool.length > MAX_POOLED) pool.shift();
    }
    return resp;
  };
  http.getNonce = async () => {
    const pooled = pool.pop();
    if (pooled) return pooled;
    const resp = await request(await http.getResourceUrl('newNonce'), 'get');
    const nonce = resp.headers['replay-nonce'];
    if (typeof nonce !== 'string' || nonce === '') throw new Error(`newNonce answered ${resp.status} without a Replay-Nonce`);
    return nonce;
  };
  return client;
}
