/**
 * An in-process stand-in for the part of Cloudflare's API v4 the cloudflare provider uses: the zone list
 * (paginated), and listing, creating, changing (PATCH) and deleting DNS records (TXT, A, AAAA, CNAME). Every answer has Cloudflare's envelope
 * {success, errors, messages, result[, result_info]}; errors carry Cloudflare's codes (10000 authentication,
 * 7003 unknown zone id, 81057 record exists, 81044 record missing). `publish` lets a test mirror a zone's
 * TXT records into a real DNS server (pebble-challtestsrv), as Cloudflare's own nameservers would serve them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { isIP, type AddressInfo } from 'node:net';

export interface SimRecord {
  id: string;
  zone_id: string;
  zone_name: string;
  name: string;
  type: string;
  content: string;
  ttl: number;
  proxiable: boolean;
  proxied: boolean;
  created_on: string;
  modified_on: string;
}

export interface CloudflareSim {
  /** What CLOUDFLARE_API_URL points at. */
  apiUrl: string;
  token: string;
  zones: { id: string; name: string }[];
  records: SimRecord[];
  /** Every request: method, path with query, status. */
  requests: { method: string; path: string; status: number }[];
  /** The next answers to any request, one per request, before normal service resumes. */
  faults: { status: number; code?: number; message?: string; retryAfter?: number }[];
  close(): Promise<void>;
}

export interface CloudflareSimOptions {
  zones: string[];
  /** Called with a name and all its TXT values after every change to them. */
  publish?: (fqdn: string, values: string[]) => Promise<void>;
}

const id = () => randomBytes(16).toString('hex');

function send(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify({ success: status < 400, errors: [], messages: [], result: null, ...body }));
}

const error = (res: ServerResponse, status: number, code: number, message: string) => send(res, status, { success: false, errors: [{ code, message }] });

export async function startCloudflareSim(opts: CloudflareSimOptions): Promise<CloudflareSim> {
  const token = randomBytes(20).toString('base64url');
  const sim: Omit<CloudflareSim, 'apiUrl' | 'close'> = { token, zones: opts.zones.map((name) => ({ id: id(), name })), records: [], requests: [], faults: [] };

  // One publication at a time, each of the records as they are when it runs: two deletes answered together
  // must not leave the first one's view of the name behind.
  let publishing = Promise.resolve();
  const publish = (name: string) => {
    if (!opts.publish) return Promise.resolve();
    const run = publishing.then(() => opts.publish!(name, sim.records.filter((r) => r.name === name && r.type === 'TXT').map((r) => r.content)));
    publishing = run.catch(() => undefined);
    return run;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: string) => {
    const url = new URL(req.url ?? '/', 'http://sim');
    const path = url.pathname.replace(/^\/client\/v4/, '');
    const fault = sim.faults.shift();
    if (fault) {
      const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {};
      return send(res, fault.status, { success: false, errors: [{ code: fault.code ?? 10001, message: fault.message ?? 'service unavailable' }] }, headers);
    }
    if (req.headers.authorization !== `Bearer ${token}`) return error(res, 403, 10000, 'Authentication error');

    if (req.method === 'GET' && path === '/zones') {
      const perPage = Math.min(Math.max(Number(url.searchParams.get('per_page') ?? 20), 5), 50);
      const page = Math.max(Number(url.searchParams.get('page') ?? 1), 1);
      const name = url.searchParams.get('name');
      const all = sim.zones.filter((z) => !name || z.name === name);
      const slice = all.slice((page - 1) * perPage, page * perPage);
      return send(res, 200, {
        result: slice.map((z) => ({ id: z.id, name: z.name, status: 'active', paused: false, type: 'full' })),
        result_info: { page, per_page: perPage, count: slice.length, total_count: all.length, total_pages: Math.ceil(all.length / perPage) },
      });
    }
    const m = /^\/zones\/([^/]+)\/dns_records(?:\/([^/]+))?$/.exec(path);
    const zone = m ? sim.zones.find((z) => z.id === m[1]) : undefined;
    if (!m) return error(res, 404, 7000, `No route for that URI`);
    if (!zone) return error(res, 400, 7003, `Could not route to ${path}, perhaps your object identifier is invalid?`);

    if (req.method === 'GET' && !m[2]) {
      const q = url.searchParams;
      const found = sim.records.filter((r) => r.zone_id === zone.id && (!q.get('type') || r.type === q.get('type')) && (!q.get('name') || r.name === q.get('name')) && (!q.get('content') || r.content === q.get('content')));
      return send(res, 200, { result: found, result_info: { page: 1, per_page: 100, count: found.length, total_count: found.length, total_pages: 1 } });
    }
    if (req.method === 'POST' && !m[2]) {
      let rec: { type?: string; name?: string; content?: string; ttl?: number };
      try {
        rec = JSON.parse(body) as typeof rec;
      } catch {
        return error(res, 400, 9207, 'Request body is invalid.');
      }
      if (!['TXT', 'A', 'AAAA', 'CNAME'].includes(rec.type ?? '') || typeof rec.name !== 'string' || typeof rec.content !== 'string') return error(res, 400, 9000, 'DNS name, type and content are required');
      if ((rec.type === 'A' && isIP(rec.content) !== 4) || (rec.type === 'AAAA' && isIP(rec.content) !== 6)) return error(res, 400, 9005, 'Content for A record is invalid. Must be a valid IPv4 address');
      const name = rec.name.toLowerCase();
      if (name !== zone.name && !name.endsWith(`.${zone.name}`)) return error(res, 400, 9005, 'Content for the record is not in the zone');
      if (rec.ttl !== undefined && rec.ttl !== 1 && (rec.ttl < 60 || rec.ttl > 86400)) return error(res, 400, 9021, 'Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.');
      if (sim.records.some((r) => r.zone_id === zone.id && r.name === name && r.type === rec.type && r.content === rec.content)) return error(res, 400, 81057, 'Record already exists.');
      // Cloudflare refuses any other record beside a CNAME (81053).
      if (sim.records.some((r) => r.zone_id === zone.id && r.name === name && (r.type === 'CNAME') !== (rec.type === 'CNAME'))) return error(res, 400, 81053, 'An A, AAAA, or CNAME record with that host already exists.');
      const now = new Date().toISOString();
      const created: SimRecord = { id: id(), zone_id: zone.id, zone_name: zone.name, name, type: rec.type!, content: rec.content, ttl: rec.ttl ?? 1, proxiable: rec.type !== 'TXT', proxied: false, created_on: now, modified_on: now };
      sim.records.push(created);
      await publish(name);
      return send(res, 200, { result: created });
    }
    if (req.method === 'PATCH' && m[2]) {
      const found = sim.records.find((r) => r.zone_id === zone.id && r.id === m[2]);
      if (!found) return error(res, 404, 81044, 'Record does not exist.');
      let patch: { content?: string };
      try {
        patch = JSON.parse(body) as typeof patch;
      } catch {
        return error(res, 400, 9207, 'Request body is invalid.');
      }
      if (typeof patch.content === 'string') found.content = patch.content;
      found.modified_on = new Date().toISOString();
      if (found.type === 'TXT') await publish(found.name);
      return send(res, 200, { result: found });
    }
    if (req.method === 'DELETE' && m[2]) {
      const i = sim.records.findIndex((r) => r.zone_id === zone.id && r.id === m[2]);
      if (i === -1) return error(res, 404, 81044, 'Record does not exist.');
      const [gone] = sim.records.splice(i, 1);
      await publish(gone!.name);
      return send(res, 200, { result: { id: gone!.id } });
    }
    return error(res, 405, 10405, 'Method not allowed');
  };

  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      handle(req, res, body)
        .catch((e: Error) => error(res, 500, 10001, e.message))
        .finally(() => sim.requests.push({ method: req.method ?? '', path: (req.url ?? '').replace(/^\/client\/v4/, ''), status: res.statusCode }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    ...sim,
    apiUrl: `http://127.0.0.1:${port}/client/v4`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
