/**
 * One probe of one name, fetched the way the CA will fetch its challenge (RFC 8555 §8.3, and what Let's
 * Encrypt's validation authority does on top): resolve the name through DNS_RESOLVERS or the system's
 * resolver, IPv6 first and IPv4 when that cannot connect, GET the path on port 80 with the name as Host,
 * follow at most 10 redirects to http:80 or https:443, and expect exactly the bytes written. The answer is
 * what went wrong, in words an operator can act on, or undefined when the route works.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from '../ip.js';
import { Resolver } from 'node:dns/promises';

// Let's Encrypt follows at most 10 redirects when validating HTTP-01.
export const MAX_REDIRECTS = 10;
// The probe's body is a few dozen bytes; a page much larger than that is an application's, not ours.
const MAX_BODY_BYTES = 64 * 1024;
// Let's Encrypt follows redirects only to these ports.
const HTTP_PORT = 80;
const HTTPS_PORT = 443;

export interface ProbeOptions {
  /** The port the first request goes to, and an http redirect without a port (80 except for a test CA). */
  httpPort: number;
  /** "ip" or "ip:port" servers; undefined: the system resolver. */
  resolvers: string[] | undefined;
  timeoutMs: number;
  /** Tests: where a name points, instead of DNS. */
  resolve?: (host: string) => Promise<string[]>;
}

class ProbeFailure extends Error {}

function resolverFor(opts: ProbeOptions): Resolver {
  const r = new Resolver({ timeout: Math.min(opts.timeoutMs, 5000), tries: 2 });
  if (opts.resolvers) r.setServers(opts.resolvers);
  return r;
}

const asked = (opts: ProbeOptions) => (opts.resolvers ? `asked ${opts.resolvers.join(', ')}` : 'asked the system resolver');

/** IPv6 addresses first, then IPv4, as the CA tries them. */
async function addresses(host: string, opts: ProbeOptions): Promise<string[]> {
  if (isIP(host)) return [host];
  if (opts.resolve) return opts.resolve(host);
  const r = resolverFor(opts);
  const [v6, v4] = await Promise.allSettled([r.resolve6(host), r.resolve4(host)]);
  const got = [...(v6.status === 'fulfilled' ? v6.value : []), ...(v4.status === 'fulfilled' ? v4.value : [])];
  if (got.length > 0) return got;
  const codes = [v6, v4].map((s) => (s.status === 'rejected' ? ((s.reason as NodeJS.ErrnoException).code ?? (s.reason as Error).message) : 'ENODATA'));
  if (codes.includes('ENOTFOUND')) throw new ProbeFailure(`NXDOMAIN: ${host} does not exist in DNS (${asked(opts)})`);
  if (codes.every((c) => c === 'ENODATA')) throw new ProbeFailure(`${host} has no A or AAAA record (${asked(opts)})`);
  throw new ProbeFailure(`${host} cannot be resolved: ${[...new Set(codes)].join(', ')} (${asked(opts)})`);
}

interface Answer {
  status: number;
  server: string | undefined;
  location: string | undefined;
  body: Buffer;
}

/** One GET to one address; a connection-level failure rejects with the socket's error. */
function get(url: URL, address: string, port: number, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const options: https.RequestOptions = {
      host: address,
      port,
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      headers: { Host: url.host, 'User-Agent': 'certwrangler-preflight', Accept: '*/*', Connection: 'close' },
      timeout: timeoutMs,
      ...(secure ? { servername: isIP(url.hostname) ? '' : url.hostname, rejectUnauthorized: false } : {}),
    };
    const req = (secure ? https : http).request(options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY_BYTES) chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, server: [res.headers.server].flat()[0], location: res.headers.location, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    // The whole exchange, not only the socket's idle time: a server trickling bytes must not hold a pass.
    const timer = setTimeout(() => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.on('close', () => clearTimeout(timer));
    req.end();
  });
}

const NET_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

const hostPort = (address: string, port: number) => (isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`);

/** The port a URL is fetched on: PREFLIGHT_HTTP_PORT stands in for 80, as the test CA validates there. */
function portOf(url: URL, opts: ProbeOptions): number {
  if (url.protocol === 'https:') return HTTPS_PORT;
  return url.port === '' || Number(url.port) === HTTP_PORT ? opts.httpPort : Number(url.port);
}

/** Fetches `url`, trying each address until one connects (IPv6, then IPv4). */
async function fetchOnce(url: URL, opts: ProbeOptions): Promise<{ answer: Answer; at: string }> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const all = await addresses(host, opts);
  const candidates = [all.find((a) => isIP(a) === 6), all.find((a) => isIP(a) === 4)].filter((a): a is string => a !== undefined);
  const port = portOf(url, opts);
  let last = '';
  for (const address of candidates) {
    try {
      return { answer: await get(url, address, port, opts.timeoutMs), at: `${host} resolved to ${address}, ${hostPort(address, port)}` };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      last = `${host} resolved to ${address}: ${NET_WORDS[code] ?? (e as Error).message} on port ${port}`;
    }
  }
  throw new ProbeFailure(last || `${host} resolved to no usable address`);
}

function shown(body: Buffer): string {
  const text = body.subarray(0, 40).toString('utf8').replace(/[^\x20-\x7e]/g, '.');
  return `"${text}${body.length > 40 ? '…' : ''}"`;
}

/**
 * Fetches http://<name>/<path> as the CA would and compares the body with `expected`. Undefined when it
 * matches; otherwise what went wrong.
 */
export async function probeRoute(name: string, path: string, expected: Buffer, opts: ProbeOptions): Promise<string | undefined> {
  let url = new URL(`http://${name}${path}`);
  const seen = [url.href];
  try {
    for (let hops = 0; ; hops++) {
      const { answer, at } = await fetchOnce(url, opts);
      const via = hops > 0 ? ` after ${hops} redirect${hops === 1 ? '' : 's'}` : '';
      if (answer.status >= 300 && answer.status < 400 && answer.location) {
        const next = new URL(answer.location, url);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') return `${at}: redirect to ${next.protocol} (the CA follows only http and https)`;
        if (next.port !== '' && Number(next.port) !== HTTP_PORT && Number(next.port) !== HTTPS_PORT) return `${at}: redirect to port ${next.port} at ${next.href} (the CA follows redirects only to ports 80 and 443)`;
        if (seen.includes(next.href)) return `redirect loop: ${[...seen, next.href].join(' → ')}`;
        if (hops + 1 > MAX_REDIRECTS) return `more than ${MAX_REDIRECTS} redirects (the CA stops there): ${seen.slice(0, 3).join(' → ')} → …`;
        seen.push(next.href);
        url = next;
        continue;
      }
      const server = answer.server ? ` (Server: ${answer.server})` : '';
      if (answer.status !== 200) return `${at}: HTTP ${answer.status}${server}${via} for ${url.href}`;
      if (!answer.body.equals(expected)) return `${at}: wrong body${via}: got ${answer.body.length} bytes ${shown(answer.body)}${server}, expected the ${expected.length} bytes of the probe file (is the challenge path routed to the webroot?)`;
      return undefined;
    }
  } catch (e) {
    if (e instanceof ProbeFailure) return e.message;
    return `${name}: ${(e as Error).message}`;
  }
}
