/**
 * The manager's own HTTP endpoint (STATUS_ADDR, loopback by default; never the public webroot): the
 * status page, its JSON, health and readiness, Prometheus metrics, and a small API to run a pass and to
 * ask for or drop a certificate at run time.
 *
 * The caller is judged, never the address we are bound to: on a loopback address a request must name this
 * endpoint in its Host (a page that rebinds its own name to 127.0.0.1 does not), a change must not come
 * from another site (Origin, Sec-Fetch-Site), and every change needs the token (STATUS_TOKEN, or the one
 * generated into DATA_DIR/status-token), since a same-host reverse proxy or a container port makes
 * "loopback" mean nothing about who is asking.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import { isIP } from '../ip.js';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../log.js';
import type { CertResult, PassReport } from '../reconciler.js';
import { API_SOURCE, RequestError, type RequestBook } from '../requests.js';
import type { StatusBook } from './book.js';
import type { Metrics } from './metrics.js';
import { renderPage } from './page.js';

export interface StatusServerOptions {
  host: string;
  port: number;
  /** Bearer token every change needs; undefined turns changes off. */
  token: string | undefined;
  book: StatusBook;
  metrics: Metrics;
  requests: RequestBook;
  /** Runs a pass that starts after the call and resolves with its report. */
  reconcile: (why: string) => Promise<PassReport>;
  log: Logger;
  /** Longest `?wait=` accepted, in seconds. */
  maxWaitSec?: number;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The name a Host header gives, lower-cased, without brackets or port; undefined when it is not a host. */
function hostName(header: string): string | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/i.exec(header.trim());
  return m ? (m[1] ?? m[2]!).toLowerCase().replace(/\.$/, '') : undefined;
}

const unmapped = (a: string | undefined) => (a ?? '').replace(/^::ffff:/, '').toLowerCase();

/**
 * On a loopback binding, the Host must name this endpoint: the bound address, the address the connection
 * arrived on, or localhost. Any other name reached us by DNS rebinding or a misdirected proxy. The port is not
 * checked: rebinding needs a name of the attacker's, and an SSH tunnel (-L 8000:127.0.0.1:9180) changes the port.
 */
function hostGuard(opts: StatusServerOptions) {
  const bound = opts.host.toLowerCase().replace(/^\[|\]$/g, '');
  const names = new Set(['localhost', bound, ...(bound === 'localhost' ? ['127.0.0.1', '::1'] : [])]);
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('host') ?? '';
    const name = hostName(header);
    const port = req.socket.localPort;
    if (name !== undefined && (names.has(name) || name === unmapped(req.socket.localAddress))) return next();
    const shown = header.length > 100 ? `${header.slice(0, 100)}…` : header;
    res
      .status(421)
      .json({ error: `Host ${JSON.stringify(shown)} is not this endpoint: on a loopback STATUS_ADDR only http://${bound.includes(':') ? `[${bound}]` : bound}:${port}/ or http://localhost:${port}/ is answered (another name pointing here is how a web page reaches it: DNS rebinding)` });
  };
}

/** Browsers say where a request comes from; a change from another site (a form, a fetch) is refused. */
function sameOriginOnly(req: Request, res: Response, next: NextFunction) {
  const site = req.get('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return void res.status(403).json({ error: `refused: a ${site} request (Sec-Fetch-Site) may not change anything here; use the API from a script or \`certwrangler request\`/\`certwrangler reconcile\`` });
  }
  const origin = req.get('origin');
  if (origin !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host === undefined || host.toLowerCase() !== (req.get('host') ?? '').toLowerCase()) {
      const shown = origin.length > 100 ? `${origin.slice(0, 100)}…` : origin;
      return void res.status(403).json({ error: `refused: a cross-site request (Origin ${JSON.stringify(shown)}) may not change anything here` });
    }
  }
  next();
}

/** Bearer token check in constant time; without a token, changes are off. */
function tokenGuard(opts: StatusServerOptions) {
  const want = opts.token === undefined ? undefined : digest(opts.token);
  return (req: Request, res: Response, next: NextFunction) => {
    if (!want) return void res.status(403).json({ error: 'changes through this API are off: the manager has no token (set STATUS_TOKEN)' });
    const m = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
    if (!m || !timingSafeEqual(digest(m[1]!), want)) {
      res
        .status(401)
        .set('WWW-Authenticate', 'Bearer')
        .json({ error: 'missing or wrong token: send "Authorization: Bearer <token>" with STATUS_TOKEN, or the one in DATA_DIR/status-token (certwrangler request and certwrangler reconcile read it)' });
      return;
    }
    next();
  };
}

function parseWait(raw: unknown, max: number): number | Error {
  if (raw === undefined) return 0;
  const n = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || n > max) return new Error(`wait=${JSON.stringify(raw)} is not valid: whole seconds from 0 to ${max}`);
  return n;
}

/** The HTTP status that tells a deploy pipeline how a waited-for certificate ended. */
function statusFor(r: CertResult | undefined): number {
  if (!r) return 500;
  switch (r.outcome) {
    case 'ok':
      return r.kind === 'self-signed' ? 202 : 200;
    case 'failed':
      return 502;
    case 'foreign':
      return 409;
    default:
      return 202;
  }
}

export function createStatusApp(opts: StatusServerOptions): express.Express {
  const { book, metrics, requests, log } = opts;
  const maxWait = opts.maxWaitSec ?? 600;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (isLoopback(opts.host)) app.use(hostGuard(opts));
  const token = tokenGuard(opts);
  // Where a change comes from is checked first, so a cross-site page learns nothing about the token.
  const changes = (req: Request, res: Response, next: NextFunction) => sameOriginOnly(req, res, () => token(req, res, next));

  app.get('/', (_req, res) => {
    res.set('Cache-Control', 'no-store').type('html').send(renderPage(book.snapshot()));
  });
  app.get('/api/status', (_req, res) => {
    res.set('Cache-Control', 'no-store').json(book.snapshot());
  });
  app.get('/healthz', (_req, res) => {
    res.type('text').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    // The role too (issue 20): this endpoint belongs to the leader; a standby answers from status/standby.ts.
    res.status(book.ready ? 200 : 503).type('text').send(book.ready ? 'ready (leader)\n' : 'the first pass has not finished (leader)\n');
  });
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.contentType).send(await metrics.text());
  });

  app.post('/api/reconcile', changes, async (req, res) => {
    const wait = parseWait(req.query.wait, maxWait);
    if (wait instanceof Error) return void res.status(400).json({ error: wait.message });
    const pass = opts.reconcile('requested through the API');
    pass.catch(() => undefined);
    if (wait === 0) return void res.status(202).json({ accepted: true, message: 'a pass will start now, or right after the one running' });
    const report = await within(pass, wait * 1000);
    if (!report) return void res.status(202).json({ accepted: true, message: `the pass did not finish within ${wait} s; see /api/status` });
    res.status(report.ok ? 200 : 502).json(report);
  });

  const body = express.json({ limit: '16kb' });
  app.put('/api/certificates/:name', changes, body, async (req, res) => {
    const wait = parseWait(req.query.wait, maxWait);
    if (wait instanceof Error) return void res.status(400).json({ error: wait.message });
    const name = String(req.params.name).toLowerCase();
    let put;
    try {
      put = await requests.put(name, (req.body as { names?: unknown } | undefined)?.names);
    } catch (e) {
      if (e instanceof RequestError) return void res.status(e.status).json({ error: e.message });
      throw e;
    }
    log.info({ cert: put.name, names: put.names, source: API_SOURCE }, `${put.name}: ${put.created ? 'requested' : 'request updated'} through the API`);
    const pass = opts.reconcile(`certificate ${put.name} requested through the API`);
    pass.catch(() => undefined);
    if (wait === 0) return void res.status(202).json({ certificate: put.name, names: put.names, message: 'requested; a pass will start now' });
    const report = await within(pass, wait * 1000);
    if (!report) return void res.status(202).json({ certificate: put.name, names: put.names, message: `not finished within ${wait} s; see /api/status` });
    const result = report.results.find((r) => r.name === put.name);
    res.status(statusFor(result)).json({ certificate: put.name, names: put.names, result: result ?? null, status: book.row(put.name) ?? null });
  });

  app.delete('/api/certificates/:name', changes, async (req, res) => {
    const name = String(req.params.name).toLowerCase();
    if (await requests.delete(name)) {
      log.info({ cert: name, source: API_SOURCE }, `${name}: no longer requested through the API; its certificate and files are kept`);
      opts.reconcile(`certificate ${name} dropped through the API`).catch(() => undefined);
      return void res.status(204).end();
    }
    const others = book.row(name)?.sources.filter((s) => s !== API_SOURCE) ?? [];
    if (others.length > 0) return void res.status(409).json({ error: `${name} comes from ${others.join(', ')}, not from this API: remove it there` });
    res.status(404).json({ error: `${name} was not requested through this API` });
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found: GET /, /api/status, /healthz, /readyz, /metrics; POST /api/reconcile; PUT or DELETE /api/certificates/<name>' });
  });
  app.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    if (err.type === 'entity.parse.failed') return void res.status(400).json({ error: `the body is not valid JSON: ${err.message}` });
    if (err.status && err.status < 500) return void res.status(err.status).json({ error: err.message });
    log.error({ error: err.message }, `status API: ${err.message}`);
    res.status(500).json({ error: err.message });
  });
  return app;
}

function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      () => (clearTimeout(t), resolve(undefined)),
    );
  });
}

export function listenStatus(opts: StatusServerOptions): Promise<Server> {
  const app = createStatusApp(opts);
  return new Promise((resolve, reject) => {
    const server = app.listen(opts.port, opts.host, (err?: Error) => (err ? reject(err) : resolve(server)));
    server.once('error', reject);
  });
}
