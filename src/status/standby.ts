/**
 * The status endpoint of a standby manager (STORE=redis, issue 20 item 2): while another manager holds the
 * store's lease, this one has no passes to show, so it answers on STATUS_ADDR with its role and the leader
 * only. /healthz is 200 (a standby is healthy: restarting it would gain nothing), /readyz is 503 with the role
 * (a balancer in front of the status API sends requests to the leader), and changes are refused naming the
 * leader, since only the leader may write the store. The manager closes it and starts the full endpoint when it
 * takes the lease.
 */
import { createServer, type Server } from 'node:http';
import { escapeHtml } from './page.js';

export interface StandbyStatus {
  setLeader(leader: string): void;
  close(): Promise<void>;
}

const P = 'certwrangler_';

/** Prometheus label values escape \, " and newlines (exposition format 0.0.4). */
const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export function listenStandby(o: { host: string; port: number; version: string; where: string; leader: string }): Promise<StandbyStatus> {
  let leader = o.leader;
  const since = new Date().toISOString();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const role = `standby, leader is ${leader}`;
    res.setHeader('Cache-Control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(503, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: `this manager is a standby; the active manager is ${leader}: send changes to its status API (only the holder of ${o.where}'s lease writes)` }));
    } else if (path === '/healthz') res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
    else if (path === '/readyz') res.writeHead(503, { 'Content-Type': 'text/plain' }).end(`${role}\n`);
    else if (path === '/api/status') res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ role: 'standby', leader, store: o.where, since, version: o.version }));
    else if (path === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(
        [
          `# HELP ${P}manager_role 1 for this manager's role: leader (holds the store's lease and runs passes) or standby.`,
          `# TYPE ${P}manager_role gauge`,
          `${P}manager_role{role="standby"} 1`,
          `${P}manager_role{role="leader"} 0`,
          `# HELP ${P}standby_leader_info The manager this standby waits behind (host, pid, fencing token).`,
          `# TYPE ${P}standby_leader_info gauge`,
          `${P}standby_leader_info{leader="${label(leader)}"} 1`,
          '',
        ].join('\n'),
      );
    } else if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(
        `<!doctype html><html><head><meta charset="utf-8"><title>certwrangler: standby</title></head><body><h1>certwrangler ${escapeHtml(o.version)}: ${escapeHtml(role)}</h1><p>This manager stands by since ${escapeHtml(since)}: the leader holds the lease of ${escapeHtml(o.where)} and runs the passes. This one takes over when the leader's lease lapses; its status page shows the certificates.</p></body></html>\n`,
      );
    } else res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: `${role}: a standby answers GET /, /api/status, /healthz, /readyz and /metrics` }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () =>
      resolve({
        setLeader: (l) => void (leader = l),
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      }),
    );
  });
}
