/**
 * The webroot under load: wrk against `certwrangler webroot` (built code, one Node process) and against
 * stock nginx with nginx/webroot.conf (one worker), serving the same directory, in the same run. Three
 * workloads: one known token, random tokens among 1,000, and a 404.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { CHALLENGE_PATH } from '../src/acme/http01.js';
import { startNginx, siteFile } from '../test/support/nginx.js';
import { freePort } from '../test/support/ports.js';
import { median } from './lib.js';

export interface WebrootResult {
  server: string;
  workload: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  runs: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

function wrk(url: string, script: string | undefined, seconds: number): Promise<{ rps: number; p50Ms: number; p99Ms: number; non2xx: number }> {
  return new Promise((res, rej) => {
    const args = ['-t2', '-c32', `-d${seconds}s`, '--latency', ...(script ? ['-s', script] : []), url];
    const p = spawn('wrk', args);
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b));
    p.stderr.on('data', (b: Buffer) => (out += b));
    p.on('close', () => {
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      const p50 = /\s50%\s+(\S+)/.exec(out)?.[1];
      const p99 = /\s99%\s+(\S+)/.exec(out)?.[1];
      const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
      if (!Number.isFinite(rps) || !p50 || !p99) return rej(new Error(`wrk output not understood:\n${out}`));
      res({ rps, p50Ms: toMs(p50), p99Ms: toMs(p99), non2xx });
    });
  });
}

async function waitPort(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => (s.end(), r(true)));
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

export async function benchWebroot(opts: { runs: number; seconds: number; base: string }): Promise<WebrootResult[]> {
  const dir = join(opts.base, 'webroot');
  rmSync(dir, { recursive: true, force: true });
  const root = join(dir, 'www');
  const challenges = join(root, CHALLENGE_PATH);
  mkdirSync(challenges, { recursive: true });
  const tokens = Array.from({ length: 1000 }, () => randomBytes(32).toString('base64url'));
  for (const t of tokens) writeFileSync(join(challenges, t), `${t}.${randomBytes(32).toString('base64url')}`);
  const script = join(dir, 'random-tokens.lua');
  writeFileSync(
    script,
    `local tokens = {${tokens.map((t) => `"${t}"`).join(',')}}\n` +
      `request = function() return wrk.format("GET", "/${CHALLENGE_PATH}/" .. tokens[math.random(#tokens)]) end\n`,
  );

  const [ourPort, nginxPort] = await Promise.all([freePort(), freePort()]);
  const ours: ChildProcess = spawn(process.execPath, [resolve('dist/cli.js'), 'webroot'], {
    env: { ...process.env, PORT: String(ourPort), WEBROOT_DIR: root, LOG_LEVEL: 'warn', NODE_ENV: 'production' },
    stdio: 'ignore',
  });
  const nginx = await startNginx(join(dir, 'nginx'), siteFile('webroot.conf', [['listen 80;', `listen 127.0.0.1:${nginxPort};`], ['root /var/www/acme;', `root ${root};`]]), nginxPort);
  await waitPort(ourPort);
  const servers = { certwrangler: ourPort, nginx: nginxPort };
  const workloads: Record<string, { path: string; script?: string; expect404?: boolean }> = {
    'known token': { path: `/${CHALLENGE_PATH}/${tokens[0]}` },
    'random token of 1,000': { path: '/', script },
    '404 (unknown token)': { path: `/${CHALLENGE_PATH}/${'x'.repeat(43)}`, expect404: true },
  };
  const out: WebrootResult[] = [];
  try {
    for (const [workload, w] of Object.entries(workloads)) {
      const samples = new Map<string, { rps: number; p50Ms: number; p99Ms: number }[]>();
      for (let run = 0; run < opts.runs; run++) {
        for (const [server, port] of Object.entries(servers)) {
          // A short unrecorded run first: JIT warm-up otherwise lands in the first run's p99.
          if (run === 0) await wrk(`http://127.0.0.1:${port}${w.path}`, w.script, 1);
          const r = await wrk(`http://127.0.0.1:${port}${w.path}`, w.script, opts.seconds);
          if (!w.expect404 && r.non2xx > 0) throw new Error(`${server} answered ${r.non2xx} non-2xx for "${workload}"`);
          samples.set(server, [...(samples.get(server) ?? []), r]);
        }
      }
      for (const [server, s] of samples) {
        out.push({ server, workload, rps: median(s.map((x) => x.rps)), p50Ms: median(s.map((x) => x.p50Ms)), p99Ms: median(s.map((x) => x.p99Ms)), runs: s.length });
      }
    }
  } finally {
    ours.kill('SIGTERM');
    await nginx.stop();
  }
  return out;
}
