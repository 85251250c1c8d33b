/**
 * A real Docker daemon (Debian's docker.io) for one test file, isolated from anything else on the machine:
 * its own data root, exec root, pid file and socket under a temp folder, no bridge, no iptables rules and no
 * ip_forward change, so it leaves nothing behind in the host's network. Containers that need the network use
 * `--network host` (loopback is enough for Pebble and the balancers in the tests).
 *
 * Docker Hub cannot be reached here, so images come from what the machine has: `importBusybox` makes a
 * one-binary image from Debian's busybox-static.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, copyFileSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface DockerDaemon {
  /** `unix:///…/docker.sock`, for DOCKER_HOST. */
  host: string;
  socketPath: string;
  dir: string;
  /** Runs the docker CLI against this daemon; rejects with its stderr on a non-zero exit. */
  docker(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  stop(): Promise<void>;
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => (req.destroy(), resolve(false)));
  });
}

function exited(proc: ChildProcess, ms: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    proc.once('exit', () => (clearTimeout(t), resolve(true)));
  });
}

/** Mounts the daemon made under its folders (network namespaces, overlay layers) that would block removal. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m): m is string => !!m && m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined);
}

export interface DockerOptions {
  /** More dockerd flags, e.g. a TLS-verified `-H tcp://…` listener beside the socket. */
  args?: string[];
  /** How long the daemon may take to answer /_ping (20 s unless given; a loaded CI machine may need more). */
  startTimeoutMs?: number;
}

export async function startDocker(opts: DockerOptions = {}): Promise<DockerDaemon> {
  // Short path: a unix socket path must stay under 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'cwdk-'));
  const socketPath = join(dir, 'docker.sock');
  const log = join(dir, 'dockerd.log');
  mkdirSync(join(dir, 'data'));
  mkdirSync(join(dir, 'exec'));
  const { openSync } = await import('node:fs');
  const out = openSync(log, 'a');
  const proc = spawn(
    'dockerd',
    [
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'docker.pid'),
      '-H', `unix://${socketPath}`,
      '--bridge=none', '--iptables=false', '--ip-forward=false', '--ip-masq=false',
      '--shutdown-timeout', '1',
      ...(opts.args ?? []),
    ],
    { stdio: ['ignore', out, out] },
  );
  const deadline = Date.now() + (opts.startTimeoutMs ?? 20_000);
  while (!(existsSync(socketPath) && (await ping(socketPath)))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`dockerd did not start: ${readFileSync(log, 'utf8').slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const host = `unix://${socketPath}`;
  const docker: DockerDaemon['docker'] = (args, opts = {}) =>
    new Promise((resolve, reject) => {
      const child = execFile('docker', args, { env: { ...process.env, DOCKER_HOST: host }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
        err ? reject(new Error(`docker ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
      );
      if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
  return {
    host,
    socketPath,
    dir,
    docker,
    async stop() {
      // Containers first, so their shims do not outlive the daemon.
      const ids = (await docker(['ps', '-aq']).catch(() => '')).split('\n').filter(Boolean);
      if (ids.length) await docker(['rm', '-f', ...ids]).catch(() => undefined);
      proc.kill('SIGTERM');
      if (!(await exited(proc, 15_000))) {
        proc.kill('SIGKILL');
        await exited(proc, 5_000);
      }
      await unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Imports a one-binary busybox image (`/bin/busybox` plus a link per applet, PATH=/bin) as `tag`. */
export async function importBusybox(daemon: DockerDaemon, tag = 'busybox:local'): Promise<string> {
  const root = join(daemon.dir, 'busybox-root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  const { stdout } = await run('/bin/busybox', ['--list']);
  for (const applet of stdout.split('\n').filter((a) => a && a !== 'busybox')) symlinkSync('busybox', join(root, 'bin', applet));
  const tar = join(daemon.dir, 'busybox.tar');
  // Archive the folder's entries, not `.`: an archive rooted at `./` imports without its files here.
  await run('tar', ['-C', root, '-cf', tar, 'bin']);
  await daemon.docker(['import', '-c', 'ENV PATH=/bin', tar, tag]);
  rmSync(root, { recursive: true, force: true });
  rmSync(tar, { force: true });
  return tag;
}
