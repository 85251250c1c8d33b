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
import { mkdtempSync, mkdirSync, readFileSync, rmSync, copyFileSync, symlinkSync, existsSync, realpathSync, chmodSync, statSync, cpSync, writeFileSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

/** Copies a file's content (a symlink followed) to `root` + its absolute path, keeping its mode. */
function copyInto(root: string, path: string, from = path): void {
  const to = join(root, path);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(realpathSync(from), to);
  chmodSync(to, statSync(realpathSync(from)).mode & 0o7777);
}

/** The shared libraries a binary loads (ldd's absolute paths). */
async function librariesOf(binary: string): Promise<string[]> {
  const { stdout } = await run('ldd', [binary]);
  return [...stdout.matchAll(/(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
}

/**
 * Imports a stand-in for `node:<version>-bookworm-slim` (Docker Hub cannot be reached here) made from what this
 * machine has: its Node and npm with the libraries Node loads, tini, busybox as the shell and tools, and the user
 * `node` (uid 1000, as in the official image). A Debian merged-/usr layout; no apt, no CA bundle.
 */
export async function importNodeBase(daemon: DockerDaemon, tag = 'node-base:local'): Promise<string> {
  const root = join(daemon.dir, 'node-base-root');
  const bin = join(root, 'usr', 'bin');
  mkdirSync(bin, { recursive: true });
  const node = realpathSync(process.execPath);
  copyInto(root, '/usr/bin/node', node);
  copyInto(root, '/usr/bin/tini', '/usr/bin/tini');
  const libs = new Set([...(await librariesOf(node)), ...(await librariesOf('/usr/bin/tini'))]);
  for (const lib of libs) copyInto(root, lib.replace(/^\/(lib|lib64)\//, '/usr/$1/'), lib);
  // npm as Debian's nodejs package and the official image lay it out: the package folder, and links in bin.
  const npmDir = dirname(dirname(realpathSync('/usr/bin/npm')));
  cpSync(npmDir, join(root, 'usr', 'lib', 'node_modules', 'npm'), { recursive: true, verbatimSymlinks: true });
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(bin, 'npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(bin, 'npx'));
  copyFileSync('/bin/busybox', join(bin, 'busybox'));
  const { stdout } = await run('/bin/busybox', ['--list']);
  for (const applet of stdout.split('\n').filter((a) => a && !existsSync(join(bin, a)))) symlinkSync('busybox', join(bin, applet));
  for (const [link, to] of [['bin', 'usr/bin'], ['sbin', 'usr/bin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64']] as const) symlinkSync(to, join(root, link));
  for (const d of ['usr/local/bin', 'etc', 'root', 'home/node']) mkdirSync(join(root, d), { recursive: true });
  mkdirSync(join(root, 'tmp'), { mode: 0o1777 });
  chmodSync(join(root, 'tmp'), 0o1777);
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n');
  chownSync(join(root, 'home', 'node'), 1000, 1000);
  const tar = join(daemon.dir, 'node-base.tar');
  await run('tar', ['-C', root, '-cf', tar, 'bin', 'sbin', 'lib', 'lib64', 'usr', 'etc', 'root', 'home', 'tmp']);
  rmSync(root, { recursive: true, force: true });
  await daemon.docker(['import', '-c', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', tar, tag], { timeoutMs: 120_000 });
  rmSync(tar, { force: true });
  return tag;
}

export interface BuildOptions {
  /** The build context (a folder with the Dockerfile). */
  context: string;
  tag: string;
  buildArgs?: Record<string, string>;
  /** BuildKit secrets: id → file on this machine, mounted only into the RUN steps that ask for them. */
  secrets?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * `docker build` with BuildKit (RUN --mount=type=secret needs it) and the host's network (the daemon has no
 * bridge). docker.io's own CLI (20.10, /usr/bin/docker) drives BuildKit itself; a newer CLI earlier in PATH may
 * need the buildx plugin, which Debian does not ship with it. Resolves with the build's plain-progress log.
 */
export function buildImage(daemon: DockerDaemon, opts: BuildOptions): Promise<string> {
  const cli = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  const args = ['build', '--network', 'host', '--progress', 'plain', '-t', opts.tag];
  for (const [k, v] of Object.entries(opts.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
  for (const [id, src] of Object.entries(opts.secrets ?? {})) args.push('--secret', `id=${id},src=${src}`);
  args.push(opts.context);
  return new Promise((resolve, reject) => {
    execFile(cli, args, { env: { ...process.env, DOCKER_HOST: daemon.host, DOCKER_BUILDKIT: '1' }, timeout: opts.timeoutMs ?? 900_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`docker build of ${opts.context} failed: ${(stderr || err.message).slice(-4000)}`)) : resolve(stdout + stderr),
    );
  });
}
