/** What the Docker orchestrator reads from labels and environment variables, and how it names a reload's signal. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nginxProxyRequest, traefikRequests, traefikRuleHosts } from '../../src/orchestrators/docker/readers.js';
import { demux, reloadSignal } from '../../src/orchestrators/docker/reloads.js';

test('traefik rules: every Host(...) of a v2/v3 rule, with || and &&, several arguments, quotes; v1 Host:a,b; no HostRegexp or HostSNI', () => {
  const rows: [string, string[]][] = [
    ['Host(`a.example.com`)', ['a.example.com']],
    ['Host(`a.example.com`) || Host(`b.example.com`)', ['a.example.com', 'b.example.com']],
    ['Host(`a.example.com`, `b.example.com`) && PathPrefix(`/api`)', ['a.example.com', 'b.example.com']],
    ['(Host("a.example.com") || Host(\'b.example.com\')) && Method(`GET`)', ['a.example.com', 'b.example.com']],
    ['Host:a.example.com,b.example.com', ['a.example.com', 'b.example.com']],
    ['Host: a.example.com ;PathPrefix:/x', ['a.example.com']],
    ['PathPrefix:/x;Host:a.example.com', ['a.example.com']],
    ['HostRegexp(`{sub:[a-z]+}.example.com`)', []],
    ['HostSNI(`*`)', []],
    ['PathPrefix(`/`)', []],
  ];
  for (const [rule, hosts] of rows) assert.deepEqual(traefikRuleHosts(rule), hosts, rule);
});

test('traefik labels: each router (v2 routers, v1 frontends) is one certificate; traefik.enable=false reads none', () => {
  const labels = {
    'traefik.http.routers.web.rule': 'Host(`a.example.com`)',
    'traefik.http.routers.web.tls': 'true',
    'traefik.http.routers.api.rule': 'Host(`api.example.com`)',
    'traefik.frontend.rule': 'Host:old.example.com',
    'traefik.admin.frontend.rule': 'Host:admin.example.com',
    'traefik.http.services.web.loadbalancer.server.port': '80',
  };
  assert.deepEqual(traefikRequests(labels), [
    { key: 'traefik.admin.frontend.rule', hosts: ['admin.example.com'] },
    { key: 'traefik.frontend.rule', hosts: ['old.example.com'] },
    { key: 'traefik.http.routers.api.rule', hosts: ['api.example.com'] },
    { key: 'traefik.http.routers.web.rule', hosts: ['a.example.com'] },
  ]);
  assert.deepEqual(traefikRequests({ ...labels, 'traefik.enable': 'False' }), []);
});

test('nginx-proxy: LETSENCRYPT_HOST names the certificate, else VIRTUAL_HOST; regular-expression hosts are skipped', () => {
  assert.deepEqual(nginxProxyRequest(['VIRTUAL_HOST=a.example.com, www.a.example.com', 'LETSENCRYPT_HOST=a.example.com']), { variable: 'LETSENCRYPT_HOST', hosts: ['a.example.com'] });
  assert.deepEqual(nginxProxyRequest(['PATH=/bin', 'VIRTUAL_HOST=a.example.com,~^api\\..*\\.example\\.com$']), { variable: 'VIRTUAL_HOST', hosts: ['a.example.com'] });
  assert.equal(nginxProxyRequest(['VIRTUAL_HOST=~^x$', 'X=VIRTUAL_HOST=a.example.com']), undefined);
  assert.equal(nginxProxyRequest([]), undefined);
});

test('certwrangler.reload: true or empty is HUP, a signal name with or without SIG, a number; anything else names the container and what is accepted', () => {
  assert.equal(reloadSignal('', 'lb'), 'HUP');
  assert.equal(reloadSignal('true', 'lb'), 'HUP');
  assert.equal(reloadSignal('sigusr1', 'lb'), 'USR1');
  assert.equal(reloadSignal('USR2', 'lb'), 'USR2');
  assert.equal(reloadSignal('RTMIN+3', 'lb'), 'RTMIN+3');
  assert.equal(reloadSignal('10', 'lb'), '10');
  assert.throws(() => reloadSignal('HUP; rm -rf /', 'lb'), /certwrangler\.reload="HUP; rm -rf \/" on container lb is not a signal; accepted: true \(HUP\) or a signal name/);
});

test('exec output: the multiplexed stream\'s frames are joined, stdout and stderr alike', () => {
  const frame = (stream: number, text: string) => {
    const body = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(body.length, 4);
    return Buffer.concat([head, body]);
  };
  assert.equal(demux(Buffer.concat([frame(1, 'config ok\n'), frame(2, 'warn: x\n')])), 'config ok\nwarn: x\n');
  assert.equal(demux(Buffer.from('plain')), 'plain');
});
