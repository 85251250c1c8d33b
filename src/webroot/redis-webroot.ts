/**
 * The webroot with tokens from Redis (issue 20 item 3), in front of the folder webroot of server.ts: the token
 * chain of token-source.ts decides, and the folder's own handler serves whatever the folder answers (its files,
 * every 404, every refused method), so the folder's checks and its fast 404 path stay in one place.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { RedisConnectionOptions } from '../stores/redis/connection.js';
import { TOKEN_URL_RE, type WebrootHandler, type WebrootOptions } from './server.js';
import { FolderTokenSource, RedisTokenSource, TokenChain } from './token-source.js';

export interface RedisWebroot {
  handler: WebrootHandler;
  chain: TokenChain;
  close(): Promise<void>;
}

function answer(res: ServerResponse, status: number, body: Buffer | string, extra: Record<string, string> = {}): void {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store', 'Content-Length': b.length, ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : b);
}

// A CA that meets 503 retries within its validation window; a minute lets a restarted Redis come back first.
const RETRY_AFTER_SEC = '60';

export function withRedisTokens(folder: WebrootHandler, webrootDir: string, connection: RedisConnectionOptions, log: Logger | undefined, opts: WebrootOptions = {}): RedisWebroot {
  const redis = new RedisTokenSource(connection, log);
  const chain = new TokenChain(redis, new FolderTokenSource(webrootDir));
  redis.start();
  const failed = (res: ServerResponse) => (e: Error) => {
    opts.onError?.(e);
    if (res.headersSent) res.destroy();
    else answer(res, 500, 'internal server error\n');
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return folder(req, res);
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path === '/healthz') {
      chain.health().then((h) => answer(res, h.status, h.text), failed(res));
      return;
    }
    // The URL's own check, before anything is asked: a token is [A-Za-z0-9_-]{1,255} (src/acme/http01.ts).
    const token = TOKEN_URL_RE.exec(path)?.[1];
    if (token === undefined) return folder(req, res);
    chain.answer(token).then((a) => {
      if (a.kind === 'body') answer(res, 200, a.body);
      else if (a.kind === 'folder') folder(req, res);
      else answer(res, 503, 'service unavailable\n', { 'Retry-After': RETRY_AFTER_SEC });
    }, failed(res));
  };
  return { handler, chain, close: () => redis.close() };
}
