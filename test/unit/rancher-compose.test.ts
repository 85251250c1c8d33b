/**
 * The shipped compose files (rancher-compose/, its seed-names/ variant, the catalog template) agree with the
 * code and run as written: every docker-compose.yml passes Debian's `docker-compose config` (a real parser of
 * the v2 format and its variables) with no variable set and with answers, every user choice is a variable with
 * a safe default, every variable the stacks set is one the code reads, and every catalog question is used and
 * read. A rename in the code that the YAML does not follow fails here instead of in an operator's stack.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { execFile, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { parse } from 'yaml';
import { CHALLENGE_PATH } from '../../src/acme/http01.js';
import { DEFAULT_HOSTS_LABEL, loadConfig } from '../../src/config.js';
import { secretVariables } from '../../src/secrets.js';
import { createWebroot, listenWebroot } from '../../src/webroot/server.js';
import { listenStatus } from '../../src/status/server.js';
import { StatusBook } from '../../src/status/book.js';
import { Metrics } from '../../src/status/metrics.js';
import { RequestBook } from '../../src/requests.js';
import { createLogger } from '../../src/log.js';
import { rawRequest } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

type Service = { image?: string; command?: string[]; user?: string; environment?: Record<string, string>; volumes?: string[]; labels?: Record<string, string>; expose?: string[]; ports?: string[] };
type Compose = { version: string; services: Record<string, Service>; volumes?: Record<string, unknown> };
type HealthCheck = { port: number; request_line: string };
type RancherService = { health_check?: HealthCheck; lb_config?: { port_rules: { path?: string; service?: string; target_port?: number; protocol?: string; source_port: number }[]; config?: string; default_cert?: string; certs?: string[] } };
type Question = { variable: string; label: string; type: string; required?: boolean; default?: string; options?: string[] };
type RancherCompose = { version: string; services: Record<string, RancherService>; '.catalog'?: { name: string; version: string; questions: Question[] } };

/** Rancher injects these into a service with the agent labels; never set by the stacks. */
const INJECTED = { CATTLE_URL: 'http://rancher:8080/v1', CATTLE_ACCESS_KEY: 'a', CATTLE_SECRET_KEY: 's' };

function composeFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? composeFiles(join(dir, e.name)) : e.name === 'docker-compose.yml' ? [join(dir, e.name)] : []));
}
const FILES = [...composeFiles('rancher-compose'), ...composeFiles('templates')];

type Configured = { compose: Compose; stderr: string };
const configured = new Map<string, Promise<Configured>>();
const keyOf = (file: string, vars: Record<string, string>) => `${file} ${JSON.stringify(Object.entries(vars).sort())}`;

/**
 * `docker-compose config` on one file with exactly these variables set: the parsed result and its warnings.
 * Each file and set of answers runs once, all at once (docker-compose takes a second or more to start).
 */
function config(file: string, vars: Record<string, string> = {}): Promise<Configured> {
  const key = keyOf(file, vars);
  let p = configured.get(key);
  if (!p) {
    p = new Promise((resolve, reject) =>
      execFile('docker-compose', ['-f', file, '--project-directory', dirname(file), 'config'], { env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/', ...vars }, timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`docker-compose config ${file}: ${stderr || err.message}`)) : resolve({ compose: parse(stdout) as Compose, stderr }),
      ),
    );
    configured.set(key, p);
  }
  return p;
}

const raw = <T>(path: string) => parse(readFileSync(path, 'utf8')) as T;

/** `${NAME}`, `${NAME:-default}`, `${NAME-default}` and `$NAME` references in a file. */
function variablesIn(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?-][^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] ?? m[2]!))];
}

/** Rancher's interpolation (the same formats as docker-compose), for rancher-compose.yml, which is not a compose file. */
function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, dflt?: string) => vars[name] || (dflt ?? ''));
}

/** Every variable the code reads: the core's and each adapter's parsers (str/parse*(env, 'NAME'), env.NAME), and the registries' secrets. */
function codeVariables(): Set<string> {
  const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
  const names = new Set<string>(secretVariables());
  for (const f of files('src')) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/\b(?:str|parse[A-Za-z]*)\(env, '([A-Z][A-Z0-9_]+)'|\benv\.([A-Z][A-Z0-9_]+)|\benv\['([A-Z][A-Z0-9_]+)'\]/g)) names.add(m[1] ?? m[2] ?? m[3]!);
  }
  return names;
}
const CODE_VARS = codeVariables();

// What the image sets (Dockerfile ENV), which the compose files must match.
const imageEnv = Object.fromEntries(
  [...readFileSync('Dockerfile', 'utf8').matchAll(/^ENV (.+)$/gm)].flatMap((m) => m[1]!.split(/\s+/).map((kv) => kv.split('=') as [string, string])),
);

/** The stacks certwrangler ships: the webroot and manager service names in each. */
const STACKS = [
  { dir: 'rancher-compose', webroot: 'certwrangler-webroot', manager: 'certwrangler-manager' },
  { dir: 'rancher-compose/seed-names', webroot: 'letsencrypt-nginx', manager: 'rancher-lets-encrypt' },
  { dir: 'templates/certwrangler/0', webroot: 'certwrangler-webroot', manager: 'certwrangler-manager' },
];
const catalog = raw<RancherCompose>('templates/certwrangler/0/rancher-compose.yml')['.catalog']!;
/** The catalog's answers when the user accepts every default. */
const defaultAnswers = Object.fromEntries(catalog.questions.map((q) => [q.variable, q.default ?? '']));

/** The answers a user gives instead of the defaults. */
const SET = { CERTWRANGLER_IMAGE: 'registry.example.com/certwrangler:1.2', STAGING: 'false', EMAIL: 'ops@example.com', CERTBOT_EMAIL: 'ops@example.com', DOMAINS: 'a.example.com;b.example.com' };

before(async () => {
  const runs = FILES.map((f) => config(f, f.startsWith('templates/') ? defaultAnswers : {}));
  runs.push(...STACKS.slice(0, 2).map((s) => config(join(s.dir, 'docker-compose.yml'), SET)));
  for (const q of catalog.questions.filter((x) => x.type === 'enum')) for (const o of q.options!) runs.push(config('templates/certwrangler/0/docker-compose.yml', { ...defaultAnswers, [q.variable]: o }));
  await Promise.allSettled(runs);
});

function mountOf(svc: Service, volume: string): { path: string; ro: boolean } {
  const v = svc.volumes?.find((x) => x.startsWith(`${volume}:`));
  assert.ok(v, `${volume} is mounted`);
  const [, path, mode] = v.split(':');
  return { path: path!, ro: mode === 'ro' };
}

test('compose: every docker-compose.yml passes docker-compose config with no variable set, and warns of none', async () => {
  assert.ok(FILES.length >= 5, `found ${FILES.join(', ')}`);
  for (const f of FILES) {
    const vars = f.startsWith('templates/') ? defaultAnswers : {};
    const { compose, stderr } = await config(f, vars);
    assert.equal(compose.version, '2', f);
    assert.doesNotMatch(stderr, /variable is not set/, `${f}: every variable has a default`);
  }
});

test('compose: every user choice is a variable with a safe default (image, STAGING, EMAIL, DOMAINS, the stack name)', async () => {
  for (const { dir, webroot, manager } of STACKS.slice(0, 2)) {
    const file = join(dir, 'docker-compose.yml');
    const text = readFileSync(file, 'utf8');
    for (const v of ['CERTWRANGLER_IMAGE', 'STAGING', 'DOMAINS']) assert.ok(variablesIn(text).includes(v), `${file} takes ${v} from a variable`);
    assert.ok(variablesIn(text).includes(dir.endsWith('seed-names') ? 'CERTBOT_EMAIL' : 'EMAIL'));
    assert.doesNotMatch(text, /pull_image/, 'no pull of an image that may exist only on the host');
    const d = (await config(file)).compose.services;
    assert.equal(d[webroot]!.image, 'certwrangler:latest');
    assert.equal(d[manager]!.image, 'certwrangler:latest');
    assert.equal(loadConfig({ ...imageEnv, ...d[manager]!.environment, ...INJECTED }).staging, true, 'staging by default');
    const set = (await config(file, SET)).compose.services;
    assert.equal(set[webroot]!.image, 'registry.example.com/certwrangler:1.2');
    assert.equal(set[manager]!.image, 'registry.example.com/certwrangler:1.2');
    const c = loadConfig({ ...imageEnv, ...set[manager]!.environment, ...INJECTED });
    assert.deepEqual([c.staging, c.email, c.domains.certs.length, c.orchestrator], [false, 'ops@example.com', 2, 'rancher']);
  }
  // The traffic manager reaches the webroot under any stack name.
  const tm = readFileSync('rancher-compose/traffic-manager/rancher-compose.yml', 'utf8');
  const rule = (vars: Record<string, string>) => (parse(interpolate(tm, vars)) as RancherCompose).services['traffic-manager']!.lb_config!.port_rules.find((r) => r.path)!;
  assert.equal(rule({}).service, 'certwrangler/certwrangler-webroot');
  assert.equal(rule({ CERTWRANGLER_STACK: 'edge-certs' }).service, 'edge-certs/certwrangler-webroot');
});

test('compose: every variable a stack sets in a container is one the code reads; the README says where each choice comes from', async () => {
  for (const v of ['EMAIL', 'DOMAINS', 'STAGING', 'CATTLE_URL', 'STATUS_ADDR', 'CERTBOT_EMAIL']) assert.ok(CODE_VARS.has(v), `the scan finds ${v}`);
  for (const f of FILES) {
    const vars = f.startsWith('templates/') ? defaultAnswers : {};
    for (const [name, svc] of Object.entries((await config(f, vars)).compose.services)) {
      for (const key of Object.keys(svc.environment ?? {})) assert.ok(CODE_VARS.has(key), `${f}: ${name} sets ${key}, which the code never reads`);
    }
  }
  const readme = readFileSync('README.md', 'utf8');
  for (const v of ['CERTWRANGLER_IMAGE', 'CERTWRANGLER_STACK', 'STAGING', 'EMAIL', 'DOMAINS', '--env-file', 'templates/certwrangler', 'rancher-compose/seed-names']) assert.ok(readme.includes(v), `README mentions ${v}`);
});

test('compose: the catalog template has its config, icon and questions; each question is used, read by the code, and its default is valid', async () => {
  const cfg = raw<Record<string, string>>('templates/certwrangler/config.yml');
  for (const k of ['name', 'description', 'version', 'category']) assert.ok(cfg[k], `config.yml has ${k}`);
  assert.ok(readdirSync('templates/certwrangler').some((f) => /^catalogIcon-certwrangler\.(svg|png)$/.test(f)), 'an icon');
  assert.equal(catalog.name, cfg.name);
  assert.equal(catalog.version, cfg.version);
  const dc = readFileSync('templates/certwrangler/0/docker-compose.yml', 'utf8');
  const rc = readFileSync('templates/certwrangler/0/rancher-compose.yml', 'utf8');
  const used = new Set([...variablesIn(dc), ...variablesIn(rc)]);
  const asked = new Set(catalog.questions.map((q) => q.variable));
  assert.deepEqual([...used].filter((v) => !asked.has(v)), [], 'every variable of the template is a question');
  // Answers go to the manager under the question's own name, so the README's table describes them; the image
  // is the one answer that is not an environment variable.
  const parsed = raw<Compose>('templates/certwrangler/0/docker-compose.yml');
  const envOf = parsed.services['certwrangler-manager']!.environment!;
  for (const q of catalog.questions) {
    assert.ok(used.has(q.variable), `question ${q.variable} is used by the template`);
    if (q.variable === 'CERTWRANGLER_IMAGE') continue;
    assert.equal(envOf[q.variable], `\${${q.variable}}`, `question ${q.variable} sets the manager's ${q.variable}`);
    assert.ok(CODE_VARS.has(q.variable), `question ${q.variable} is a variable the code reads`);
    assert.ok(q.label && q.type && (q.type !== 'enum' || q.options?.includes(q.default ?? '')), `question ${q.variable} is complete`);
  }
  // The defaults, and each option of each enum, make a valid configuration.
  const env = async (answers: Record<string, string>) => ({ ...imageEnv, ...(await config('templates/certwrangler/0/docker-compose.yml', answers)).compose.services['certwrangler-manager']!.environment, ...INJECTED });
  assert.equal(loadConfig(await env(defaultAnswers)).hostsLabel, DEFAULT_HOSTS_LABEL);
  for (const q of catalog.questions.filter((x) => x.type === 'enum')) for (const o of q.options!) loadConfig(await env({ ...defaultAnswers, [q.variable]: o }));
});

test('compose: in each stack the webroot has the manager as sidekick, one image, commands the CLI has, and shared volumes', async () => {
  const help = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', '--help'], { encoding: 'utf8' }).stdout;
  for (const { dir, webroot: w, manager: m } of STACKS) {
    const file = join(dir, 'docker-compose.yml');
    const s = (await config(file, dir.startsWith('templates') ? defaultAnswers : {})).compose;
    const webroot = s.services[w]!;
    const manager = s.services[m]!;
    for (const svc of [webroot, manager]) assert.match(help, new RegExp(`^  ${svc.command![0]}\\s`, 'm'), `certwrangler ${svc.command![0]} exists`);
    assert.deepEqual([webroot.command, manager.command], [['webroot'], ['manager']], file);
    assert.equal(webroot.image, manager.image, 'one image for both');
    assert.equal(webroot.labels?.['io.rancher.sidekicks'], m);
    assert.equal(manager.labels?.['io.rancher.container.create_agent'], 'true');
    assert.equal(manager.labels?.['io.rancher.container.agent.role'], 'environment');
    assert.equal(manager.environment!.HOSTS_LABEL, DEFAULT_HOSTS_LABEL);
    const webrootVolume = Object.keys(s.volumes!).find((v) => webroot.volumes!.some((x) => x.startsWith(`${v}:`)))!;
    const dir_ = manager.environment!.WEBROOT_DIR ?? imageEnv.WEBROOT_DIR;
    assert.equal(mountOf(webroot, webrootVolume).ro, true, `${file}: the webroot only reads the challenge volume`);
    assert.deepEqual(mountOf(manager, webrootVolume), { path: dir_, ro: false });
    assert.equal(mountOf(webroot, webrootVolume).path, webroot.environment?.WEBROOT_DIR ?? imageEnv.WEBROOT_DIR);
    assert.deepEqual(mountOf(manager, 'certwrangler-data'), { path: manager.environment!.DATA_DIR ?? imageEnv.DATA_DIR, ro: false });
  }
  // The seed's names keep the seed's port and volumes, so its traffic manager rule (letsencrypt-nginx:80) still routes.
  const seed = (await config('rancher-compose/seed-names/docker-compose.yml')).compose;
  const nginx = seed.services['letsencrypt-nginx']!;
  assert.equal(nginx.environment!.PORT, '80');
  assert.deepEqual(nginx.expose, ['80']);
  assert.ok(seed.volumes && 'letsencrypt-verify' in seed.volumes && 'letsencrypt-certs' in seed.volumes);
  assert.deepEqual(mountOf(seed.services['rancher-lets-encrypt']!, 'letsencrypt-certs'), { path: '/etc/letsencrypt', ro: true });
});

test('compose: the health checks reach the webroot\'s /healthz and the manager\'s status endpoint on their ports', async () => {
  const traffic = raw<RancherCompose>('rancher-compose/traffic-manager/rancher-compose.yml');
  const rules = traffic.services['traffic-manager']!.lb_config!.port_rules;
  const challenge = rules.find((r) => r.path !== undefined)!;
  assert.equal(challenge.path, `/${CHALLENGE_PATH}/`);
  assert.equal(challenge.target_port, Number(imageEnv.PORT));
  assert.equal(challenge.source_port, 80);
  assert.match(traffic.services['traffic-manager']!.lb_config!.config!, new RegExp(`redirect scheme https .*unless \\{ path_beg /${CHALLENGE_PATH.replace(/\./g, '\\.')}/ \\}`));

  const dir = mkdtempSync(join(tmpdir(), 'cw-compose-'));
  try {
    for (const { dir: stackDir, webroot: w, manager: m } of STACKS) {
      const s = (await config(join(stackDir, 'docker-compose.yml'), stackDir.startsWith('templates') ? defaultAnswers : {})).compose;
      const r = raw<RancherCompose>(join(stackDir, 'rancher-compose.yml'));
      const webroot = s.services[w]!;
      const port = Number(webroot.environment?.PORT ?? imageEnv.PORT);
      assert.deepEqual(webroot.expose, [String(port)]);
      const whc = r.services[w]!.health_check!;
      assert.equal(whc.port, port, `${stackDir}: the webroot's health check port`);
      // The manager's: the port of its STATUS_ADDR, which must listen beyond loopback for Rancher to reach it.
      const env = { ...imageEnv, ...s.services[m]!.environment, ...INJECTED, DATA_DIR: dir };
      const status = loadConfig(env).status!;
      assert.equal(status.host, '0.0.0.0', `${stackDir}: STATUS_ADDR listens on every address`);
      const mhc = r.services[m]!.health_check!;
      assert.equal(mhc.port, status.port, `${stackDir}: the manager's health check port`);
      assert.deepEqual(s.services[m]!.expose, [String(status.port)]);

      // Send each check's own request line to the real servers.
      const [wm, wpath] = whc.request_line.split(' ');
      const wp = await freePort();
      const ws = await listenWebroot(createWebroot('/nonexistent'), wp, '127.0.0.1');
      const mp = await freePort();
      const ms = await listenStatus({ host: '127.0.0.1', port: mp, token: undefined, book: new StatusBook('t'), metrics: new Metrics(), requests: new RequestBook(new FilesStore(dir), { dnsProvider: false, onePerName: false, allowedSuffixes: [] }), reconcile: () => new Promise(() => undefined), log: createLogger('silent') });
      try {
        assert.equal((await rawRequest(wp, wpath!, { method: wm! })).status, 200);
        const [mm, mpath] = mhc.request_line.split(' ');
        assert.equal((await rawRequest(mp, mpath!, { method: mm! })).status, 200);
      } finally {
        ws.close();
        ms.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('compose: the sample HTTPS balancer references certificates by name on https rules', () => {
  const https = raw<RancherCompose>('rancher-compose/https-balancer/rancher-compose.yml');
  const lb = https.services['https-lb']!.lb_config!;
  assert.ok(lb.default_cert && lb.certs && lb.certs.length > 0);
  assert.ok(lb.port_rules.every((r) => r.protocol === 'https' && r.source_port === 443));
  assert.ok(existsSync('rancher-compose/https-balancer/docker-compose.yml'));
});

test('compose: the HA stack runs Redis, the webroot on every host fed by Redis alone, and two managers of their own on STORE=redis', async () => {
  const file = 'rancher-compose/ha/docker-compose.yml';
  const r = raw<{ services: Record<string, RancherService & { scale?: number }> }>('rancher-compose/ha/rancher-compose.yml');
  const { redis, 'certwrangler-webroot': webroot, 'certwrangler-manager': manager } = (await config(file)).compose.services;
  assert.ok(redis && webroot && manager, 'redis, certwrangler-webroot and certwrangler-manager');
  assert.equal(redis.image, 'redis:7-alpine');
  assert.equal(redis.ports, undefined, 'Redis holds the keys: not published on any port');
  assert.ok(redis.command!.includes('--appendonly'), 'Redis keeps its data across a restart');
  // The webroot: a global service, nobody's sidekick, no folder (every token comes from Redis).
  assert.equal(webroot.labels?.['io.rancher.scheduler.global'], 'true');
  assert.equal(webroot.labels?.['io.rancher.sidekicks'], undefined);
  assert.equal(webroot.volumes, undefined);
  assert.equal(r.services['certwrangler-webroot']!.scale, undefined, 'a global service has no scale');
  assert.deepEqual([webroot.command, manager.command], [['webroot'], ['manager']]);
  assert.equal(webroot.image, manager.image, 'one image for both');
  // Two managers, their own service, on Rancher with the store and the lease in Redis.
  assert.equal(r.services['certwrangler-manager']!.scale, 2);
  assert.equal(manager.labels?.['io.rancher.container.create_agent'], 'true');
  assert.equal(manager.labels?.['io.rancher.container.agent.role'], 'environment');
  const m = loadConfig({ ...imageEnv, ...manager.environment, ...INJECTED });
  assert.equal(m.orchestrator, 'rancher');
  assert.equal(m.tokenRedis?.publish, true, 'the managers publish every token to Redis');
  const w = loadConfig({ ...imageEnv, ...webroot.environment });
  assert.equal(w.tokenRedis?.publish, false);
  assert.equal(w.tokenRedis?.connection.url, m.tokenRedis!.connection.url, 'the webroot reads the Redis the managers write');
  // Your own Redis: one variable moves both.
  const own = (await config(file, { REDIS_URL: 'rediss://:secret@redis.example.com:6380/2' })).compose.services;
  for (const svc of [own['certwrangler-webroot']!, own['certwrangler-manager']!]) assert.equal(loadConfig({ ...imageEnv, ...svc.environment, ...INJECTED }).tokenRedis?.connection.shown, 'rediss://:***@redis.example.com:6380/2');
  // Health checks on the same ports and paths as the single-manager stack's; the traffic manager's rule names the
  // same webroot service, so it routes challenges to this stack's webroots unchanged.
  const single = raw<RancherCompose>('rancher-compose/rancher-compose.yml').services;
  assert.deepEqual(r.services['certwrangler-webroot']!.health_check && [r.services['certwrangler-webroot']!.health_check.port, r.services['certwrangler-webroot']!.health_check.request_line], [single['certwrangler-webroot']!.health_check!.port, single['certwrangler-webroot']!.health_check!.request_line]);
  assert.equal(r.services['certwrangler-manager']!.health_check!.port, loadConfig({ ...imageEnv, ...manager.environment, ...INJECTED }).status!.port);
  const readme = readFileSync('README.md', 'utf8');
  for (const v of ['rancher-compose/ha', 'REDIS_IMAGE', 'REDIS_URL', 'STORE=redis', 'certwrangler store migrate --from files --to redis', 'io.rancher.scheduler.global']) assert.ok(readme.includes(v), `README mentions ${v}`);
});
