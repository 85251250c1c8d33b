/**
 * HAProxy's runtime API (the `stats socket`, management guide §9.3), in its non-interactive mode: one
 * command per connection, HAProxy answers and closes. A payload follows the command after ` <<` and ends
 * with an empty line. Answers are text; success and failure are told apart by their wording, as the
 * management guide gives it for each command.
 */
import { connect, type Socket } from 'node:net';
import { splitHostPort } from '../../env.js';

/** Where the runtime API listens: a unix socket, or host:port of a `stats socket ipv4@…`. */
export type RuntimeAddress = { path: string } | { host: string; port: number };

export function describeAddress(a: RuntimeAddress): string {
  return 'path' in a ? a.path : `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** "/run/haproxy/admin.sock", "unix:/run/…", "127.0.0.1:9999", "tcp:haproxy:9999"; undefined when it is none. */
export function parseRuntimeAddress(v: string): RuntimeAddress | undefined {
  if (v.startsWith('unix:')) return v.length > 5 ? { path: v.slice(5) } : undefined;
  if (v.startsWith('/')) return { path: v };
  const at = splitHostPort(v.replace(/^tcp:/, ''));
  if (!at || at.host === '' || at.port === undefined) return undefined;
  return { host: at.host, port: at.port };
}

export class RuntimeApiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeApiError';
  }
}

export class RuntimeApi {
  constructor(
    private readonly address: RuntimeAddress,
    private readonly timeoutMs: number,
  ) {}

  get where(): string {
    return describeAddress(this.address);
  }

  /** Sends one command (with its payload, if any) and returns HAProxy's whole answer. */
  send(command: string, payload?: string): Promise<string> {
    // The payload ends at the first empty line: a blank line inside a PEM would cut it short.
    const body = payload === undefined ? `${command}\n` : `${command} <<\n${payload.split('\n').filter((l) => l.trim() !== '').join('\n')}\n\n`;
    return new Promise((resolve, reject) => {
      const socket: Socket = 'path' in this.address ? connect({ path: this.address.path }) : connect({ host: this.address.host, port: this.address.port });
      let answer = '';
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (err) reject(err);
        else resolve(answer);
      };
      const what = command.split(' ').slice(0, 3).join(' ');
      const timer = setTimeout(() => finish(new RuntimeApiError(`HAProxy runtime API ${this.where}: no answer to "${what}" within ${this.timeoutMs} ms`)), this.timeoutMs);
      socket.setEncoding('utf8');
      socket.on('connect', () => socket.write(body));
      socket.on('data', (c: string) => (answer += c));
      socket.on('end', () => finish());
      socket.on('error', (e: NodeJS.ErrnoException) =>
        finish(new RuntimeApiError(`HAProxy runtime API ${this.where}: ${e.code ?? e.message} on "${what}" (is HAPROXY_RUNTIME_API the address of a "stats socket … level admin"?)`)),
      );
    });
  }
}
