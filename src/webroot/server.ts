/**
 * The challenge server (DESIGN §1). It answers exactly two things: GET/HEAD of
 * /.well-known/acme-challenge/<token> with the file's bytes, and /healthz. Everything else is 404.
 * The raw request path is matched before any decoding, so no percent-encoding, backslash, dot segment or
 * dotfile can reach the file system: a token is [A-Za-z0-9_-]{1,255} and nothing else.
 */
import express from 'express';
import serveStatic from 'serve-static';
import { constants as fsConstants, lstatSync, promises as fs, type Stats } from 'node:fs';
import { join } from 'node:path';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
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
  /** How many tokens memory holds before it starts again empty (default 10,000): a bound, not a cache policy. */
  memoryLimit?: number;
}

interface HotToken {
  body: Buffer;
  readAt: number;
  refreshing: boolean;
}

const TEXT = 'text/plain; charset=utf-8';
const NOT_FOUND = Buffer.from('not found\n');
const OK = Buffer.from('ok\n');
const INTERNAL_ERROR = Buffer.from('internal server error\n');

/**
 * The request handler. It routes every request itself: tokens served before come from memory, /healthz and
 * every 404 are answered here with one lstat at most, and express with serve-static sees only the first
 * request for a token that is on disk. A scanner's flood of unknown paths then costs what nginx's 404 costs,
 * not express's routing. (Node sends no body with a HEAD answer, whatever `end()` is given.)
 */
export function createWebroot(webrootDir: string, opts: WebrootOptions = {}): WebrootHandler {
  const dir = join(webrootDir, CHALLENGE_PATH);
  const serveFile = expressWebroot(dir, opts);
  const limit = opts.memoryLimit ?? HOT_TOKEN_LIMIT;
  const hot = new Map<string, HotToken>();
  const refresh = (token: string, entry?: HotToken) => {
    // Stryker disable next-line BooleanLiteral: without the flag, a token asked for during its re-read is read once more; the answers are the same
    if (entry) entry.refreshing = true;
    readRegularFile(join(dir, token)).then(
      (body) => {
        if (!hot.has(token) && hot.size >= limit) hot.clear();
        hot.set(token, { body, readAt: Date.now(), refreshing: false });
      },
      () => hot.delete(token),
    );
  };
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 404, NOT_FOUND);
    const url = req.url!; // always set on a server's request
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path === '/healthz') return answer(res, 200, OK);
    const token = TOKEN_URL_RE.exec(path)?.[1];
    if (token === undefined) return answer(res, 404, NOT_FOUND);
    const entry = hot.get(token);
    if (entry) {
      if (!entry.refreshing && Date.now() - entry.readAt > HOT_TOKEN_MS) refresh(token, entry);
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store', 'Content-Length': entry.body.length });
      res.end(entry.body);
      return;
    }
    // Misses are never remembered, so a token written just after a probe for it is served at once. The
    // look is synchronous: a 404 through the thread pool's lstat and a rejected promise cost 3× a token
    // served from memory in CPU (100 µs against 35), most of it the round trip and the error's stack
    // trace; lstatSync of an absent name in a local folder takes microseconds and makes no error object.
    let st: Stats | undefined;
    try {
      st = lstatSync(`${dir}/${token}`, { throwIfNoEntry: false });
    } catch (e) {
      // A token we cannot look at (the manager made its folder 0700) is an error the operator must see, not
      // a 404 that looks like a missing file. (An absent name is no error here: throwIfNoEntry.)
      if (isMissing(e as NodeJS.ErrnoException)) return answer(res, 404, NOT_FOUND);
      opts.onError?.(e as Error);
      return answer(res, 500, INTERNAL_ERROR);
    }
    // Only a regular file we (or a peer ACME client) wrote: a symlink could point at a key outside the webroot.
    if (!st?.isFile()) return answer(res, 404, NOT_FOUND);
    // Only a token serve-static found is worth keeping: a flood of unknown tokens costs no extra read.
    // (Whatever serve-static answered: a file it could not serve cannot be read here either.)
    res.once('finish', () => refresh(token));
    req.url = `/${token}`;
    serveFile(req, res);
  };
}

/** Errors of a look at a well-formed token's name that mean "no such token" (ENOENT is not thrown: throwIfNoEntry). */
function isMissing(e: NodeJS.ErrnoException): boolean {
  return e.code === 'ENOTDIR' || e.code === 'ENAMETOOLONG';
}

/** The file's bytes, refusing a symlink (O_NOFOLLOW) or anything but a regular file. */
async function readRegularFile(path: string): Promise<Buffer> {
  const fh = await fs.open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    // Stryker disable next-line StringLiteral: the message is never shown (a failed read only drops the token from memory)
    if (!(await fh.stat()).isFile()) throw new Error(`${path} is not a regular file`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/**
 * A token's first answer, from its file: express with serve-static, given `/<token>` of a regular file the
 * handler has just looked at. A token is always answered whole: conditional and range headers could only turn
 * the CA's fetch into a 304 or a 206 (with no Last-Modified or ETag sent, If-Modified-Since and If-Range mean
 * nothing).
 */
function expressWebroot(challengeDir: string, opts: WebrootOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const files = serveStatic(challengeDir, {
    // A token replaced by a folder after the handler's look (a race) is a 404, not a redirect to "/<token>/".
    redirect: false,
    etag: false,
    lastModified: false,
    setHeaders: (res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.setHeader('Cache-Control', 'no-store');
    },
  });
  app.use((req, res, next) => {
    for (const h of ['range', 'if-match', 'if-none-match', 'if-unmodified-since']) delete req.headers[h];
    files(req, res, (err?: unknown) => (err ? next(err) : answer(res, 404, NOT_FOUND)));
  });
  // Express's own handler answers with the stack trace and file paths unless NODE_ENV=production; the
  // challenge port is public, so an error is a status line and nothing more, in every environment.
  app.use((err: Error & { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    // A token removed between serve-static's stat and its open (a race) is its 404.
    if (err.status === 404) return answer(res, 404, NOT_FOUND);
    opts.onError?.(err);
    if (res.headersSent) return void res.destroy();
    answer(res, 500, INTERNAL_ERROR);
  });
  return app;
}

function answer(res: ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { 'Content-Type': TEXT, 'Cache-Control': 'no-store', 'Content-Length': body.length });
  res.end(body);
}

export function listenWebroot(handler: WebrootHandler, port: number, host?: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handler);
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
