/**
 * The challenge server (DESIGN §1). It answers exactly two things: GET/HEAD of
 * /.well-known/acme-challenge/<token> with the file's bytes, and /healthz. Everything else is 404.
 * The raw request path is matched before any decoding, so no percent-encoding, backslash, dot segment or
 * dotfile can reach the file system: a token is [A-Za-z0-9_-]{1,255} and nothing else.
 */
import express, { type Express } from 'express';
import serveStatic from 'serve-static';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { CHALLENGE_PATH, TOKEN_PATTERN } from '../acme/http01.js';

const TOKEN_URL_RE = new RegExp(`^/${CHALLENGE_PATH.replace(/\./g, '\\.')}/(${TOKEN_PATTERN})$`);

export function createWebroot(webrootDir: string): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const files = serveStatic(join(webrootDir, CHALLENGE_PATH), {
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
    // serve-static sees only "/<token>", already known to be safe.
    req.url = `/${m[1]}`;
    return files(req, res, () => notFound(res));
  });
  return app;
}

function notFound(res: express.Response): void {
  res.status(404).setHeader('Cache-Control', 'no-store');
  res.type('text/plain').send('not found\n');
}

export function listenWebroot(app: Express, port: number, host?: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = host ? app.listen(port, host, () => resolve(server)) : app.listen(port, () => resolve(server));
    server.once('error', reject);
  });
}
