import net from 'node:net';

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * A request written byte for byte on a socket: the path goes out exactly as given (spaces, backslashes,
 * non-ASCII), which an HTTP client library would refuse or normalise. HTTP/1.0 and Connection: close, so the body is unchunked and
 * everything after the headers.
 */
export function rawRequest(port: number, path: string, opts: { method?: string; host?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.setTimeout(5000, () => sock.destroy(new Error(`timeout ${path.slice(0, 60)}`)));
    sock.on('connect', () => {
      const extra = Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      sock.write(Buffer.from(`${opts.method ?? 'GET'} ${path} HTTP/1.0\r\nHost: ${opts.host ?? 'localhost'}\r\n${extra}Connection: close\r\n\r\n`, 'utf8'));
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, split).toString('latin1').split('\r\n');
      const status = Number(head[0]?.split(' ')[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status, headers, body: split < 0 ? Buffer.alloc(0) : all.subarray(split + 4) });
    });
  });
}
