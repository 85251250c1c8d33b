/**
 * The shipped single-host stack (docker-compose/) agrees with the code and works as written: docker-compose
 * accepts it, the manager's environment loads as ORCHESTRATOR=docker, the app's label asks for the certificate
 * nginx serves, nginx's reload label is the one certwrangler reads, and the real nginx with the shipped
 * nginx.conf serves the challenge path from the webroot and TLS from CERTS_DIR as the files target writes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.js';
import { certName, parseDomainList } from '../../src/domains.js';
import { checkLabels } from '../../src/label-policy.js';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { parseCert } from '../../src/certs/parse.js';
import { FilesOrchestrator } from '../../src/orchestrators/files/files.js';
import { EXEC_LABEL } from '../../src/orchestrators/docker/reloads.js';
import { createWebroot, listenWebroot } from '../../src/webroot/server.js';
import { CHALLENGE_PATH } from '../../src/acme/http01.js';
import { startNginx } from '../support/nginx.js';
import { rawRequest } from '../support/http.js';
import { freePort } from '../support/ports.js';

type Service = { image?: string; command?: string[]; environment?: Record<string, string>; volumes?: string[]; labels?: Record<string, string>; ports?: string[] };
const FILE = 'docker-compose/docker-compose.yml';
const stack = parse(readFileSync(FILE, 'utf8')) as { services: Record<string, Service> };
const { 'certwrangler-manager': manager, 'certwrangler-webroot': webroot, nginx, app } = stack.services as Record<string, Service>;
const site = readFileSync('docker-compose/nginx.conf', 'utf8');
const mount = (s: Service, volume: string) => s.volumes?.find((v) => v.startsWith(`${volume}:`))?.split(':')[1];

test('docker-compose: `docker-compose config` accepts the stack', () => {
  const r = spawnSync('docker-compose', ['-f', FILE, 'config', '-q'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('docker-compose: the manager runs ORCHESTRATOR=docker with the socket, and the names nginx serves are what the app\'s label asks for', () => {
  const config = loadConfig(manager!.environment!, '/');
  assert.equal(config.orchestrator, 'docker');
  assert.ok(manager!.volumes!.includes('/var/run/docker.sock:/var/run/docker.sock'));
  assert.equal(mount(manager!, 'certs'), config.certsDir);
  assert.equal(mount(manager!, 'acme-webroot'), config.webrootDir);
  assert.equal(mount(webroot!, 'acme-webroot'), '/var/www/acme');
  assert.deepEqual([manager!.command, webroot!.command], [['manager'], ['webroot']]);
  assert.equal(manager!.image, webroot!.image, 'one image for both');

  const asked = app!.labels![config.hostsLabel];
  assert.ok(asked, `the app carries ${config.hostsLabel}`);
  const wanted = parseDomainList(asked, 'label', { dnsProvider: false, onePerName: false, allowedSuffixes: [] }).certs;
  const service = { id: 'app', name: 'app' };
  assert.equal(checkLabels(wanted.map((w) => ({ ...w, service })), config.labels).refused.length, 0, 'within LABEL_ALLOWED_DOMAINS');
  const name = certName(wanted[0]!.names);
  const certsAt = mount(nginx!, 'certs')!;
  assert.ok(site.includes(`ssl_certificate ${certsAt}/${name}/bundle.pem;`));
  assert.ok(site.includes(`server_name ${wanted[0]!.names.join(' ')};`));
  assert.ok(nginx!.command!.join(' ').includes(`${certsAt}/${name}/bundle.pem`), 'nginx waits for the file it serves');
  assert.ok(nginx!.labels![EXEC_LABEL], `nginx is labelled ${EXEC_LABEL}`);
});

test('docker-compose: the shipped nginx.conf answers the challenge from the webroot and serves the certificate certwrangler wrote', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-compose-'));
  const [p80, p443, pWeb] = await Promise.all([freePort(), freePort(), freePort()]);
  const certs = join(dir, 'certs');
  const ss = await createSelfSigned(['app.example.com', 'www.app.example.com']);
  await new FilesOrchestrator({ certsDir: certs }).push({ name: 'app.example.com', names: ['app.example.com', 'www.app.example.com'], key: ss.key, cert: ss.cert, chain: '', kind: 'self-signed', directoryUrl: '' }, { adopt: false });
  const www = join(dir, 'www');
  mkdirSync(join(www, CHALLENGE_PATH), { recursive: true });
  writeFileSync(join(www, CHALLENGE_PATH, 'tok-1'), 'tok-1.thumb');
  const server = await listenWebroot(createWebroot(www), pWeb, '127.0.0.1');
  const rewritten = site
    .replace('listen 80;', `listen 127.0.0.1:${p80};`)
    .replace('listen 443 ssl;', `listen 127.0.0.1:${p443} ssl;`)
    .replace('http://certwrangler-webroot:8080', `http://127.0.0.1:${pWeb}`)
    .replace('http://app:80', 'http://127.0.0.1:9')
    .replaceAll('/etc/certs/', `${certs}/`);
  const ng = await startNginx(join(dir, 'nginx'), rewritten, p443);
  try {
    const challenge = await rawRequest(p80, `/${CHALLENGE_PATH}/tok-1`, { host: 'app.example.com' });
    assert.equal(challenge.status, 200);
    assert.equal(challenge.body.toString(), 'tok-1.thumb');
    const other = await rawRequest(p80, '/login', { host: 'app.example.com' });
    assert.equal(other.status, 301);
    const served = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: p443, servername: 'app.example.com', rejectUnauthorized: false }, () => {
        resolve(s.getPeerX509Certificate()!.fingerprint256);
        s.end();
      });
      s.on('error', reject);
    });
    assert.equal(served.toLowerCase(), parseCert(ss.cert).fingerprint.toLowerCase());
  } finally {
    await ng.stop();
    server.close();
  }
});

const REDIS_FILE = 'docker-compose/with-redis/docker-compose.yml';

test('docker-compose with Redis: `docker-compose config` accepts it; the manager keeps its store in Redis and publishes tokens the webroot reads, the rest as in the plain stack', () => {
  const r = spawnSync('docker-compose', ['-f', REDIS_FILE, 'config', '-q'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const text = readFileSync(REDIS_FILE, 'utf8');
  const s = (parse(text) as { services: Record<string, Service> }).services;
  const m = s['certwrangler-manager']!;
  const w = s['certwrangler-webroot']!;
  assert.equal(s.redis?.ports, undefined, 'Redis holds the keys: not published on any port');
  const config = loadConfig(m.environment!, '/');
  assert.equal(config.orchestrator, 'docker');
  assert.equal(config.tokenRedis?.publish, true);
  assert.equal(loadConfig(w.environment!, '/').tokenRedis?.connection.url, config.tokenRedis!.connection.url, 'the webroot reads the Redis the manager writes');
  // The shared folder stays, as the webroot's fallback while Redis is unreachable.
  assert.equal(mount(m, 'acme-webroot'), config.webrootDir);
  assert.equal(mount(w, 'acme-webroot'), '/var/www/acme');
  assert.ok(w.volumes!.includes('acme-webroot:/var/www/acme:ro'));
  assert.equal(mount(m, 'certs'), config.certsDir);
  assert.equal(m.volumes!.some((v) => v.endsWith(':/data')), false, 'no data volume: the store is Redis');
  // nginx, its configuration (the file the test above runs in a real nginx) and the app are the plain stack's.
  assert.ok(s.nginx!.volumes!.includes('../nginx.conf:/etc/nginx/conf.d/default.conf:ro'));
  assert.deepEqual(s.nginx!.command, nginx!.command);
  assert.deepEqual(s.app!.labels, app!.labels);
  // The NethServer export, commented out in the file, is a valid configuration once uncommented.
  const exported = (parse(text.replace(/#(REDIS_EXPORT\w*:)/g, '$1')) as { services: Record<string, Service> }).services['certwrangler-manager']!;
  assert.equal(loadConfig(exported.environment!, '/').outputs.nethserver?.prefix, 'module/traefik1');
  const readme = readFileSync('README.md', 'utf8');
  for (const v of ['docker-compose/with-redis', 'REDIS_EXPORT', 'REDIS_EXPORT_PREFIX', 'REDIS_EXPORT_NODE']) assert.ok(readme.includes(v), `README mentions ${v}`);
});
