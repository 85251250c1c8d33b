/**
 * The challenge server (DESIGN §1). It answers exactly two things: GET/HEAD of
 * /.well-known/acme-challenge/<token> with the file's bytes, and /healthz. Everything else is 404.
 * The raw request path is matched before any decoding, so no percent-encoding, backslash, dot segment or
 * dotfile can reach the file system: a token is [A-Za-z0-9_-]{1,255} and nothing else.
 */
import express from 'express';
import serveStatic from 'serve-static';
import { constants as fsConstants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import http, { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { CHALLENGE_PATH, TOKEN_PATTERN } from '../acme/http01.js';

export const TOKEN_URL_RE = new RegExp(`^/${CHALLENGE_PATH.replace(/\./g, '\\.')}/(${TOKEN_PATTERN})$`);

// A token served once is then answered from memory: express and serve-static cost about 0.4 ms of
// CPU per request here (a fifth of nginx's rate), memory a tenth of that. An entry older than this is
// re-read from disk in the background while the request is answered, so a deleted token is served at
// most this long plus one request after it is gone, which harms nothing: it is a public value.
const HOT_TOKEN_MS = 1000;
const HOT_TOKEN_LIMIT = 10_000;

export type WebrootHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface WebrootOptions {
  /** Told of a request that failed inside (an unreadable token file): the message names the file; the client is not told. */
  onError?: (err: Error) => void;
}

interface HotToken {
  body: Buffer;
  readAt: number;
  refreshing: boolean;
}

/**
 * The request handler. Tokens served before come from memory, and every 404 is answered here with one
 * lstat at most: express and serve-static see only /healthz and the first request for a token that is
 * on disk. A scanner's flood of unknown paths then costs what nginx's 404 costs, not express's routing.
 */
export function createWebroot(webrootDir: string, opts: WebrootOptions = {}): WebrootHandler {
  const app = expressWebroot(webrootDir, opts);
  const dir = join(webrootDir, CHALLENGE_PATH);
  const hot = new Map<string, HotToken>();
  const refresh = (token: string, entry?: HotToken) => {
    if (entry) entry.refreshing = true;
    readRegularFile(join(dir, token)).then(
      (body) => {
        if (!hot.has(token) && hot.size >= HOT_TOKEN_LIMIT) hot.clear();
        hot.set(token, { body, readAt: Date.now(), refreshing: false });
      },
      () => hot.delete(token),
    );
  };
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return notFound(res);
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path === '/healthz') return app(req, res);
    const token = TOKEN_URL_RE.exec(path)?.[1];
    if (token === undefined) return notFound(res);
    const entry = hot.get(token);
    if (entry) {
      if (!entry.refreshing && Date.now() - entry.readAt > HOT_TOKEN_MS) refresh(token, entry);
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store', 'Content-Length': entry.body.length });
      res.end(req.method === 'HEAD' ? undefined : entry.body);
      return;
    }
    // Misses are never remembered, so a token written just after a probe for it is served at once.
    fs.lstat(join(dir, token)).then(
      (st) => {
        if (!st.isFile()) return notFound(res);
        // Only a token serve-static found is worth keeping: a flood of unknown tokens costs no extra read.
        res.once('finish', () => {
          if (res.statusCode === 200 && !hot.has(token)) refresh(token);
        });
        app(req, res);
      },
      // Not there is a 404; anything else (EACCES) goes to express, which reports it.
      (e: NodeJS.ErrnoException) => (isMissing(e) ? notFound(res) : app(req, res)),
    );
  };
}

/** Errors that mean "no such token", as opposed to a token we cannot read. */
function isMissing(e: NodeJS.ErrnoException): boolean {
  return e.code === 'ENOENT' || e.code === 'ENOTDIR' || e.code === 'ENAMETOOLONG';
}

/** The file's bytes, refusing a symlink (O_NOFOLLOW) or anything but a regular file. */
async function readRegularFile(path: string): Promise<Buffer> {
  const fh = await fs.open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    if (!(await fh.stat()).isFile()) throw new Error(`${path} is not a regular file`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

function expressWebroot(webrootDir: string, opts: WebrootOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const challengeDir = join(webrootDir, CHALLENGE_PATH);
  const files = serveStatic(challengeDir, {
    dotfiles: 'deny',
    index: false,
    redirect: false,
    fallthrough: true,
    etag: false,
    lastModified: false,
    cacheControl: false,
    setHeaders: (res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.setHeader('Cache-Control', 'no-store');
    },
  });

  app.use((req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return notFound(res);
    const raw = req.url.split('?')[0]!;
    if (raw === '/healthz') {
      res.setHeader('Cache-Control', 'no-store');
      return void res.type('text/plain').send('ok\n');
    }
    const m = TOKEN_URL_RE.exec(raw);
    if (!m) return notFound(res);
    // serve-static sees only "/<token>", already known to be safe. A token is always answered whole:
    // conditional and range headers could only turn the CA's fetch into a 304 or a 206.
    req.url = `/${m[1]}`;
    for (const h of ['range', 'if-range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since']) delete req.headers[h];
    // Only a regular file we (or a peer ACME client) wrote: a symlink could point at a key outside the webroot.
    // A token we cannot read (the manager wrote it 0600, or its folder 0700) is an error the operator must
    // see, not a 404 that looks like a missing file.
    fs.lstat(join(challengeDir, m[1]!)).then(
      (st) => (st.isFile() ? files(req, res, (err?: unknown) => (err ? next(err) : notFound(res))) : notFound(res)),
      (e: NodeJS.ErrnoException) => (isMissing(e) ? notFound(res) : next(e)),
    );
  });
  // Express's own handler answers with the stack trace and file paths unless NODE_ENV=production; the
  // challenge port is public, so an error is a status line and nothing more, in every environment.
  app.use((err: Error & { status?: number; statusCode?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const status = err.status ?? err.statusCode ?? 500;
    const code = status >= 400 && status < 600 ? status : 500;
    if (code >= 500) opts.onError?.(err);
    if (res.headersSent) return void res.destroy();
    const body = Buffer.from(`${(STATUS_CODES[code] ?? 'error').toLowerCase()}\n`);
    res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': body.length });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  });
  return app;
}

const NOT_FOUND = Buffer.from('not found\n');

function notFound(res: ServerResponse): void {
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': NOT_FOUND.length });
  res.end(res.req.method === 'HEAD' ? undefined : NOT_FOUND);
}

export function listenWebroot(handler: WebrootHandler, port: number, host?: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handler);
    server.once('error', reject);
    if (host) server.listen(port, host, () => resolve(server));
    else server.listen(port, () => resolve(server));
  });
}
