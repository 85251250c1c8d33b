/** Starts the real Debian nginx in the foreground with one of our shipped site files, rewritten for the test. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';

export interface Nginx {
  /** The master's pid (what `kill -HUP` reloads). */
  pid: number;
  /** Writes a new site file and has nginx reload it (SIGHUP), as `nginx -s reload` does. */
  reload(site?: string): void;
  stop(): Promise<void>;
}

export function siteFile(name: string, replacements: Array<[string | RegExp, string]>): string {
  let text = readFileSync(new URL(`../../nginx/${name}`, import.meta.url), 'utf8');
  for (const [from, to] of replacements) {
    const before = text;
    text = text.replace(from, to);
    if (text === before) throw new Error(`nginx/${name}: "${String(from)}" not found: the test no longer matches the shipped file`);
  }
  return text;
}

async function waitPort(port: number, proc: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.end(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (proc.exitCode !== null || Date.now() > deadline) {
      let err = '';
      try { err = readFileSync(log, 'utf8'); } catch { /* none */ }
      throw new Error(`nginx did not start: ${err.slice(-1500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startNginx(dir: string, site: string, port: number): Promise<Nginx> {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  const log = join(dir, 'error.log');
  writeFileSync(join(dir, 'site.conf'), site);
  writeFileSync(
    conf,
    `daemon off;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${log} warn;\n${process.getuid?.() === 0 ? 'user root;\n' : ''}` +
      `events { worker_connections 64; }\nhttp {\n  access_log off;\n  client_body_temp_path ${dir}/tmp/body;\n  proxy_temp_path ${dir}/tmp/proxy;\n` +
      `  fastcgi_temp_path ${dir}/tmp/fcgi;\n  uwsgi_temp_path ${dir}/tmp/uwsgi;\n  scgi_temp_path ${dir}/tmp/scgi;\n  include /etc/nginx/mime.types;\n  include ${dir}/site.conf;\n}\n`,
  );
  const proc = spawn('nginx', ['-p', `${dir}/`, '-e', log, '-c', conf], { stdio: 'ignore' });
  await waitPort(port, proc, log);
  return {
    pid: proc.pid!,
    reload: (next) => {
      if (next !== undefined) writeFileSync(join(dir, 'site.conf'), next);
      proc.kill('SIGHUP');
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGQUIT');
        setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
      }),
  };
}
