/**
 * End to end against a real Docker daemon (Debian's docker.io, isolated: its own roots and socket, no bridge, no
 * iptables; test/support/docker-daemon.ts) and a real Pebble: ORCHESTRATOR=docker finds what containers and
 * Swarm services ask for, orders it, writes CERTS_DIR, follows /events (and reconnects when the stream drops),
 * and reloads the containers labelled for it once per pass that changed anything.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createOrchestrator } from '../../src/assemble.js';
import { JOB_LABEL } from '../../src/orchestrators/docker/reloads.js';
import type { Pebble } from '../support/pebble.js';
import { acmeLab, assertChainVerifies, passWithOrders, pebbleEnv, runCli, startCli, errors } from '../support/harness.js';
import { importBusybox, startDocker, type DockerDaemon } from '../support/docker-daemon.js';
import { freePort } from '../support/ports.js';

const run = promisify(execFile);
const base = mkdtempSync(join(tmpdir(), 'cw-docker-'));
const lab = acmeLab(base);
const HOSTS = 'certwrangler.hosts';
let ca: Pebble;
let d: DockerDaemon;
let tcpPort: number;
const tlsDir = join(base, 'tls');

/** A CA, the daemon's certificate for 127.0.0.1 and a client's, as `docker --tlsverify` uses them (DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem). */
async function makeTls(dir: string, caName: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const ssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const key = (out: string) => ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out);
  await key('ca-key.pem');
  await ssl('req', '-x509', '-new', '-key', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${caName}`);
  for (const [who, ext] of [['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
    writeFileSync(join(dir, `${who}.ext`), ext);
    await key(`${who}-key.pem`);
    await ssl('req', '-new', '-key', `${who}-key.pem`, '-out', `${who}.csr`, '-subj', `/CN=${who}`);
    await ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${who}-cert.pem`, '-days', '2', '-extfile', `${who}.ext`);
  }
  copyFileSync(join(dir, 'client-cert.pem'), join(dir, 'cert.pem'));
  copyFileSync(join(dir, 'client-key.pem'), join(dir, 'key.pem'));
}

before(async () => {
  tcpPort = await freePort();
  await makeTls(tlsDir, 'docker test CA');
  const tlsArgs = ['-H', `tcp://127.0.0.1:${tcpPort}`, '--tlsverify', '--tlscacert', join(tlsDir, 'ca.pem'), '--tlscert', join(tlsDir, 'server-cert.pem'), '--tlskey', join(tlsDir, 'server-key.pem')];
  [ca, d] = await Promise.all([lab.pebble('pebble'), startDocker({ args: tlsArgs, startTimeoutMs: 90_000 })]);
  await importBusybox(d);
});
after(async () => {
  await d?.stop();
  await lab.stop();
});

const envFor = (dir: string, extra: Record<string, string> = {}): Record<string, string> => ({
  ORCHESTRATOR: 'docker',
  DOCKER_HOST: d.host,
  HOSTS_LABEL: HOSTS,
  LABEL_ALLOWED_DOMAINS: 'docker.example.com',
  DATA_DIR: join(base, dir, 'data'),
  CERTS_DIR: join(base, dir, 'live'),
  WEBROOT_DIR: lab.webroot,
  LOG_LEVEL: 'silent',
  ...pebbleEnv(ca, 'production'),
  ...extra,
});

/** Starts a busybox container with these labels (no network), running `script` (idle by default). */
async function container(name: string, labels: Record<string, string>, opts: { script?: string; env?: string[]; volume?: string } = {}): Promise<void> {
  const args = ['run', '-d', '--name', name, '--network', 'none'];
  for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
  for (const e of opts.env ?? []) args.push('--env', e);
  if (opts.volume) args.push('-v', opts.volume);
  await d.docker([...args, 'busybox:local', 'sh', '-c', opts.script ?? 'exec sleep 100000']);
}

const remove = (...names: string[]) => d.docker(['rm', '-f', ...names]).catch(() => undefined);

/**
 * A shell that writes a line per HUP to /out/hups (a bare sleep would ignore them), and a `mark` line per USR1:
 * the test's own USR1, sent after a pass, shows when every signal sent before it has been handled.
 */
const HUP_COUNTER = "trap 'echo hup >> /out/hups' HUP; trap 'echo mark >> /out/hups' USR1; while :; do sleep 1 & wait $!; done";

/** The HUPs a HUP_COUNTER container has handled, counted once a USR1 sent now has been handled too. */
async function hupsSoFar(container: string, file: string): Promise<number> {
  const count = (what: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l === what).length : 0);
  const marks = count('mark');
  await d.docker(['kill', '--signal', 'USR1', container]);
  await until('the USR1 mark', () => count('mark') > marks);
  return count('hup');
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const lines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).length : 0);

test('labelled containers get certificates from Pebble in CERTS_DIR: HOSTS_LABEL, a Traefik rule and nginx-proxy\'s VIRTUAL_HOST (opt-in); a label outside LABEL_ALLOWED_DOMAINS is refused naming the container; discovery over tcp:// with TLS', async () => {
  const env = envFor('discover', { DOCKER_READERS: 'traefik,nginx-proxy' });
  // Started together: a container start is the slow part here.
  await Promise.all([
    container('plain', { [HOSTS]: 'a.docker.example.com,www.a.docker.example.com' }, { env: ['VIRTUAL_HOST=d.docker.example.com,~^re\\..*'] }),
    container('routed', { 'traefik.http.routers.web.rule': 'Host(`b.docker.example.com`) || Host(`www.b.docker.example.com`) && PathPrefix(`/x`)', 'traefik.http.routers.old.rule': 'Host:c.docker.example.com' }),
    container('greedy', { [HOSTS]: 'bank.example.org' }),
  ]);
  try {
    const { report, orders } = await passWithOrders(env);
    assert.equal(report.ok, true, errors(report));
    assert.equal(orders, 4);
    const byName = new Map(report.results.map((r) => [r.name, r]));
    assert.deepEqual([...byName.keys()].sort(), ['a.docker.example.com', 'b.docker.example.com', 'c.docker.example.com', 'd.docker.example.com']);
    assert.deepEqual(byName.get('a.docker.example.com')!.names, ['a.docker.example.com', 'www.a.docker.example.com']);
    assert.deepEqual(byName.get('b.docker.example.com')!.names, ['b.docker.example.com', 'www.b.docker.example.com']);
    assert.match(byName.get('b.docker.example.com')!.sources.join(), /traefik\.http\.routers\.web\.rule on container routed/);
    assert.match(byName.get('d.docker.example.com')!.sources.join(), /VIRTUAL_HOST of container plain/);
    const root = await ca.root();
    for (const name of byName.keys()) assertChainVerifies(readFileSync(join(env.CERTS_DIR!, name, 'fullchain.pem'), 'utf8'), root);
    const greedy = report.refused.find((r) => r.spec.includes('bank.example.org'));
    assert.ok(greedy, JSON.stringify(report.refused));
    assert.equal(greedy.service, 'greedy (greedy)');
    assert.match(greedy.error, /outside LABEL_ALLOWED_DOMAINS/);
    assert.ok(!existsSync(join(env.CERTS_DIR!, 'bank.example.org')));

    // Without DOCKER_READERS only HOSTS_LABEL counts.
    const plain = await passWithOrders(envFor('discover-plain'));
    assert.deepEqual(plain.report.results.map((r) => r.name), ['a.docker.example.com']);

    // The same over tcp:// with TLS, as the docker CLI reads DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
    const overTcp = (certPath: string) => createOrchestrator(loadConfig(envFor('tcp', { DOCKER_HOST: `tcp://127.0.0.1:${tcpPort}`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certPath, DOCKER_TIMEOUT: '5s' })), createLogger('silent'), { retryBaseMs: 10 });
    // What the labels ask for, before the label policy (which refuses bank.example.org).
    assert.deepEqual((await overTcp(tlsDir).discover()).certs.map((c) => c.name).sort(), ['a.docker.example.com', 'bank.example.org']);
    // A daemon whose certificate DOCKER_CERT_PATH's CA did not sign is refused before anything is read.
    const strangers = join(base, 'tls-other');
    await makeTls(strangers, 'another CA');
    await assert.rejects(overTcp(strangers).discover(), /Docker API GET \/(containers\/json|info) on tcp:\/\/127\.0\.0\.1:\d+: .*(certificate|self.signed)/i);
  } finally {
    await remove('plain', 'routed', 'greedy');
  }
});

test('a container labelled certwrangler.reload gets exactly one HUP per pass that changed certificates (three certificates, one HUP); exec reloads run their command and check its exit code', async () => {
  const out = join(base, 'reload-out');
  mkdirSync(out, { recursive: true });
  const env = envFor('reload');
  await Promise.all([
    container('app', { [HOSTS]: 'r1.docker.example.com;r2.docker.example.com;r3.docker.example.com' }),
    container('balancer', { 'certwrangler.reload': 'true' }, { script: HUP_COUNTER, volume: `${out}:/out` }),
    container('execer', { 'certwrangler.reload.exec': 'echo reloaded >> /out/exec; echo config ok' }, { volume: `${out}:/out` }),
    container('broken', { 'certwrangler.reload.exec': 'echo bad config; exit 3' }),
  ]);
  const hups = join(out, 'hups');
  try {
    const first = await passWithOrders(env);
    assert.equal(first.orders, 3, errors(first.report));
    assert.equal(await hupsSoFar('balancer', hups), 1, 'one HUP for three certificates');
    assert.equal(lines(join(out, 'exec')), 1, 'the exec ran once');
    const pending = JSON.parse(readFileSync(join(env.DATA_DIR!, 'docker-reloads.json'), 'utf8')) as { changed: string[]; failed: { container: string; reason: string; attempts: number }[] };
    assert.deepEqual(pending.changed, []);
    assert.deepEqual(pending.failed.map((f) => f.container), ['broken'], 'the failed exec is kept to be retried');
    assert.match(pending.failed[0]!.reason, /exited with 3: bad config/);

    // A pass that changes nothing sends nothing (the failed exec is not due yet).
    const quiet = await passWithOrders(env);
    assert.equal(quiet.orders, 0);
    assert.equal(await hupsSoFar('balancer', hups), 1, 'no HUP for a pass that changed nothing');

    // A new certificate (an operator's name) is a change: one more HUP.
    const changed = await passWithOrders({ ...env, DOMAINS: 'r4.docker.example.com' });
    assert.equal(changed.orders, 1, errors(changed.report));
    assert.equal(await hupsSoFar('balancer', hups), 2, 'exactly one HUP for that pass');
    assert.equal(lines(join(out, 'exec')), 2);

    // What the Swarm reload job runs on each node: every labelled container of the local daemon, once; exit 1 for the broken one.
    const local = await runCli(['reload-local'], { DOCKER_HOST: d.host, LOG_LEVEL: 'info', STATUS_ADDR: 'off' });
    assert.equal(local.code, 1, local.stdout + local.stderr);
    assert.match(local.stdout, /container broken: reload failed: .*exited with 3/);
    assert.equal(await hupsSoFar('balancer', hups), 3);
    assert.equal(lines(join(out, 'exec')), 3);
  } finally {
    await remove('app', 'balancer', 'execer', 'broken');
  }
});

/** A unix-socket proxy in front of the daemon's socket, so the event stream can be cut as a daemon restart would. */
function socketProxy(path: string, target: string): { cut(): Promise<void>; resume(): Promise<void>; close(): Promise<void> } {
  const conns = new Set<Socket>();
  let server: Server | undefined;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((c) => {
        const up = connect(target);
        conns.add(c).add(up);
        c.pipe(up).pipe(c);
        const end = () => (c.destroy(), up.destroy(), conns.delete(c), conns.delete(up));
        c.on('close', end).on('error', end);
        up.on('close', end).on('error', end);
      });
      server.listen(path, resolve);
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const c of conns) c.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
    });
  void listen();
  return { cut: stop, resume: listen, close: stop };
}

test('the manager follows /events: a started container is discovered and issued at once, a stopped one and a changed label are followed; after the stream drops it reconnects and looks at everything again', async () => {
  const sock = join(base, 'proxy.sock');
  const proxy = socketProxy(sock, d.socketPath);
  const env = envFor('events', {
    DOCKER_HOST: `unix://${sock}`,
    // Only events can start these passes: the schedule and the discovery poll are far away.
    SCHEDULE: '0 0 1 1 *',
    DISCOVERY_INTERVAL: '1h',
    STATUS_ADDR: 'off',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
  });
  const live = env.CERTS_DIR!;
  const manager = startCli(['manager'], env);
  try {
    await until('the manager to follow events', () => manager.output().includes('docker: following events'));
    await container('late', { [HOSTS]: 'late.docker.example.com' });
    await until('late.docker.example.com to be issued', () => existsSync(join(live, 'late.docker.example.com', 'fullchain.pem')), 60_000);
    // The container's start names the pass that issues it, beside whatever else came in the same burst.
    assert.match(manager.output(), /pass starting \((.*; )?docker event: container late start(;|\)| and)/);

    // Stopped, and started again with another label (as compose re-creates a container whose labels changed):
    // the new name is issued, and the old one is no longer claimed by anyone.
    await remove('late');
    await container('late', { [HOSTS]: 'moved.docker.example.com' });
    await until('moved.docker.example.com to be issued', () => existsSync(join(live, 'moved.docker.example.com', 'fullchain.pem')), 60_000);
    const claims = JSON.parse(readFileSync(join(env.DATA_DIR!, 'label-claims.json'), 'utf8')) as { claims: Record<string, unknown> };
    assert.deepEqual(Object.keys(claims.claims), ['moved.docker.example.com'], JSON.stringify(claims));

    // The stream drops (the daemon restarting, a proxy in between): a container started meanwhile is found after the reconnect.
    await proxy.cut();
    await container('meanwhile', { [HOSTS]: 'meanwhile.docker.example.com' });
    await proxy.resume();
    await until('meanwhile.docker.example.com after the reconnect', () => existsSync(join(live, 'meanwhile.docker.example.com', 'fullchain.pem')), 60_000);
    assert.match(manager.output(), /docker: cannot follow events|the event stream ended/);
    assert.match(manager.output(), /following events again/);
  } finally {
    manager.proc.kill('SIGTERM');
    await manager.done;
    await proxy.close();
    await remove('late', 'meanwhile');
  }
});

test('Swarm: a service\'s HOSTS_LABEL is read from the manager and issued, its task container labelled for reload gets one HUP, and with DOCKER_SWARM_RELOAD_IMAGE a one-shot global job is made for the other nodes', async () => {
  const out = join(base, 'swarm-out');
  mkdirSync(out, { recursive: true });
  const listen = await freePort();
  // Swarm makes a bridge named docker_gwbridge in the host's namespace, which another daemon's swarm (another test
  // run) would also want: made here first, under a name of this run's own, with no masquerading and no traffic between containers.
  const n = 20 + Math.floor(Math.random() * 200);
  const bridge = `cwgw${process.pid % 10000}x${n}`.slice(0, 15);
  await d.docker(['network', 'create', '--driver', 'bridge', '--subnet', `10.213.${n}.0/24`, '--opt', `com.docker.network.bridge.name=${bridge}`, '--opt', 'com.docker.network.bridge.enable_icc=false', '--opt', 'com.docker.network.bridge.enable_ip_masquerade=false', 'docker_gwbridge']);
  await d.docker(['swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', `127.0.0.1:${listen}`]);
  try {
    // One service both asks (its own label) and reloads (its task container's label).
    await d.docker(['service', 'create', '-d', '--name', 'web', '--network', 'host', '--label', `${HOSTS}=swarm.docker.example.com`, '--container-label', 'certwrangler.reload=HUP', '--mount', `type=bind,source=${out},target=/out`, 'busybox:local', 'sh', '-c', HUP_COUNTER]);
    await until('the balancer task to run', async () => (await d.docker(['ps', '-q', '--filter', 'label=certwrangler.reload'])).trim() !== '');
    const env = envFor('swarm', { DOCKER_SWARM_RELOAD_IMAGE: 'busybox:local' });
    const { report, orders } = await passWithOrders(env);
    assert.equal(report.ok, true, errors(report));
    assert.equal(orders, 1);
    assert.deepEqual(report.results.map((r) => [r.name, r.sources]), [['swarm.docker.example.com', [`label ${HOSTS} on service web`]]]);
    const task = (await d.docker(['ps', '-q', '--filter', 'label=certwrangler.reload'])).trim();
    assert.equal(await hupsSoFar(task, join(out, 'hups')), 1);
    const jobs = JSON.parse(await d.docker(['service', 'ls', '--filter', `label=${JOB_LABEL}`, '--format', '{{json .}}'])) as { Mode: string; Name: string };
    assert.equal(jobs.Mode, 'global job');
    const spec = JSON.parse(await d.docker(['service', 'inspect', jobs.Name, '--format', '{{json .Spec}}'])) as { TaskTemplate: { ContainerSpec: { Args: string[]; Mounts: { Source: string }[] }; Placement: { Constraints: string[] } } };
    assert.deepEqual(spec.TaskTemplate.ContainerSpec.Args, ['reload-local']);
    assert.equal(spec.TaskTemplate.ContainerSpec.Mounts[0]!.Source, '/var/run/docker.sock');
    const self = (await d.docker(['info', '--format', '{{.Swarm.NodeID}}'])).trim();
    assert.deepEqual(spec.TaskTemplate.Placement.Constraints, [`node.id!=${self}`], 'this node\'s containers are reloaded by the manager itself, once');
  } finally {
    await d.docker(['swarm', 'leave', '--force']).catch(() => undefined);
    // Leaving the swarm does not remove the bridge.
    await d.docker(['network', 'rm', 'docker_gwbridge']).catch(() => undefined);
    await run('ip', ['link', 'del', bridge]).catch(() => undefined);
  }
});
