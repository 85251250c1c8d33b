/**
 * The image's HEALTHCHECK (`node /app/dist/healthcheck.js`): asks the certwrangler process running in this
 * container for /healthz on its own port, the webroot's PORT or the manager's STATUS_ADDR. One image runs
 * either command, and a health check cannot see the container's CMD, so the command is read from the
 * process list. Exit 0 healthy, 1 not (the reason on stderr, which `docker inspect` shows).
 */
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { loadConfig } from './config.js';

/** Below Docker's HEALTHCHECK --timeout (5 s in the Dockerfile), so the reason is ours, not a kill. */
const PROBE_TIMEOUT_MS = 3000;

type Role = { command: 'webroot' } | { command: 'manager'; once: boolean };

/** The certwrangler command another process in this container runs (its argv after the cli path). */
function roleOf(argvs: string[][]): Role | undefined {
  for (const argv of argvs) {
    const i = argv.findIndex((a, n) => n > 0 && /(^|\/)(certwrangler|cli\.js)$/.test(a));
    if (i < 0) continue;
    const command = argv[i + 1];
    if (command === 'webroot') return { command };
    if (command === 'manager') return { command, once: argv.slice(i + 2).includes('--once') };
  }
  return undefined;
}

function processArgvs(): string[][] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .flatMap((p) => {
      try {
        return [readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean)];
      } catch {
        return []; // gone since the listing
      }
    });
}

function probe(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/healthz', timeout: PROBE_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? undefined : `http://${host}:${port}/healthz answered ${res.statusCode}`);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)));
    req.on('error', (e) => resolve(`http://${host}:${port}/healthz: ${e.message}`));
  });
}

/** An address the manager listens on that this container can reach: a wildcard is reached on loopback. */
function reachable(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

async function main(): Promise<number> {
  const role = roleOf(processArgvs());
  if (!role) {
    process.stderr.write('healthcheck: no certwrangler webroot or manager runs in this container\n');
    return 1;
  }
  const config = loadConfig();
  let problem: string | undefined;
  if (role.command === 'webroot') problem = await probe('127.0.0.1', config.port);
  // A one-pass manager and STATUS_ADDR=off serve nothing to ask: running is all there is to know.
  else if (!role.once && config.status) problem = await probe(reachable(config.status.host), config.status.port);
  if (problem) process.stderr.write(`healthcheck: certwrangler ${role.command}: ${problem}\n`);
  return problem ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`healthcheck: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
