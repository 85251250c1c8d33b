/**
 * The shipped rancher-compose files agree with the code: command names, ports, paths, volumes, labels.
 * A rename in the code that the YAML does not follow fails here instead of in an operator's stack.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import { CHALLENGE_PATH } from '../../src/acme/http01.js';
import { DEFAULT_HOSTS_LABEL, loadConfig } from '../../src/config.js';
import { createWebroot, listenWebroot } from '../../src/webroot/server.js';
import { rawRequest } from '../support/http.js';
import { freePort } from '../support/ports.js';

type Service = { image?: string; command?: string[]; environment?: Record<string, string>; volumes?: string[]; labels?: Record<string, string>; expose?: string[]; ports?: string[] };
type RancherService = { health_check?: { port: number; request_line: string }; lb_config?: { port_rules: { path?: string; service?: string; target_port?: number; protocol?: string; source_port: number }[]; config?: string; default_cert?: string; certs?: string[] } };

const load = <T>(path: string) => parse(readFileSync(path, 'utf8')) as { version: string; services: Record<string, T>; volumes?: Record<string, unknown> };
const stack = load<Service>('rancher-compose/docker-compose.yml');
const rstack = load<RancherService>('rancher-compose/rancher-compose.yml');
const traffic = load<RancherService>('rancher-compose/traffic-manager/rancher-compose.yml');
const https = load<RancherService>('rancher-compose/https-balancer/rancher-compose.yml');
const webroot = stack.services['certwrangler-webroot']!;
const manager = stack.services['certwrangler-manager']!;

// What the image sets (Dockerfile ENV), which the compose files must match.
const imageEnv = Object.fromEntries(
  [...readFileSync('Dockerfile', 'utf8').matchAll(/^ENV (.+)$/gm)].flatMap((m) => m[1]!.split(/\s+/).map((kv) => kv.split('=') as [string, string])),
);

function mountOf(svc: Service, volume: string): { path: string; ro: boolean } {
  const v = svc.volumes?.find((x) => x.startsWith(`${volume}:`));
  assert.ok(v, `${volume} is mounted`);
  const [, path, mode] = v.split(':');
  return { path: path!, ro: mode === 'ro' };
}

test('rancher-compose: both services run commands the CLI has', () => {
  const help = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', '--help'], { encoding: 'utf8' }).stdout;
  for (const svc of [webroot, manager]) {
    assert.equal(svc.command?.length, 1);
    assert.match(help, new RegExp(`^  ${svc.command![0]}\\s`, 'm'), `certwrangler ${svc.command![0]} exists`);
  }
  assert.deepEqual(webroot.command, ['webroot']);
  assert.deepEqual(manager.command, ['manager']);
  assert.equal(webroot.image, manager.image, 'one image for both');
});

test('rancher-compose: the manager is the webroot\'s sidekick with an environment API key', () => {
  assert.equal(webroot.labels?.['io.rancher.sidekicks'], 'certwrangler-manager');
  assert.equal(manager.labels?.['io.rancher.container.create_agent'], 'true');
  assert.equal(manager.labels?.['io.rancher.container.agent.role'], 'environment');
  for (const v of ['STAGING', 'EMAIL', 'DOMAINS']) assert.ok(v in manager.environment!, `${v} is there to fill in`);
  assert.equal(manager.environment!.HOSTS_LABEL, DEFAULT_HOSTS_LABEL);
  // The manager's environment, with what Rancher injects, is a valid configuration for the rancher orchestrator.
  const c = loadConfig({ ...imageEnv, ...manager.environment, DOMAINS: 'example.com', CATTLE_URL: 'http://rancher:8080/v1', CATTLE_ACCESS_KEY: 'a', CATTLE_SECRET_KEY: 's' });
  assert.equal(c.orchestrator, 'rancher');
});

test('rancher-compose: the webroot volume is shared at WEBROOT_DIR (read-only for the webroot), the data volume at DATA_DIR', () => {
  assert.ok(stack.volumes && 'acme-webroot' in stack.volumes && 'certwrangler-data' in stack.volumes);
  const dir = manager.environment!.WEBROOT_DIR ?? imageEnv.WEBROOT_DIR;
  assert.equal(dir, imageEnv.WEBROOT_DIR);
  assert.deepEqual(mountOf(webroot, 'acme-webroot'), { path: dir, ro: true });
  assert.deepEqual(mountOf(manager, 'acme-webroot'), { path: dir, ro: false });
  assert.deepEqual(mountOf(manager, 'certwrangler-data'), { path: manager.environment!.DATA_DIR ?? imageEnv.DATA_DIR, ro: false });
  assert.equal(manager.environment!.DATA_DIR ?? imageEnv.DATA_DIR, imageEnv.DATA_DIR);
});

test('rancher-compose: the health check and the balancer reach the webroot on its port, and /healthz answers', async () => {
  const port = Number(imageEnv.PORT);
  assert.deepEqual(webroot.expose, [String(port)]);
  const hc = rstack.services['certwrangler-webroot']!.health_check!;
  assert.equal(hc.port, port);
  const rules = traffic.services['traffic-manager']!.lb_config!.port_rules;
  const challenge = rules.find((r) => r.path !== undefined)!;
  assert.equal(challenge.path, `/${CHALLENGE_PATH}/`);
  assert.equal(challenge.service, 'certwrangler/certwrangler-webroot');
  assert.equal(challenge.target_port, port);
  assert.equal(challenge.source_port, 80);
  assert.match(traffic.services['traffic-manager']!.lb_config!.config!, new RegExp(`redirect scheme https .*unless \\{ path_beg /${CHALLENGE_PATH.replace(/\./g, '\\.')}/ \\}`));
  // Serve the real webroot and send it the health check's own request line.
  const [method, path] = hc.request_line.split(' ');
  const p = await freePort();
  const server = await listenWebroot(createWebroot('/nonexistent'), p, '127.0.0.1');
  try {
    const r = await rawRequest(p, path!, { method: method! });
    assert.equal(r.status, 200);
  } finally {
    server.close();
  }
});

test('rancher-compose: the sample HTTPS balancer references certificates by name on https rules', () => {
  const lb = https.services['https-lb']!.lb_config!;
  assert.ok(lb.default_cert && lb.certs && lb.certs.length > 0);
  assert.ok(lb.port_rules.every((r) => r.protocol === 'https' && r.source_port === 443));
});
