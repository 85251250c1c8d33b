/** OUTPUTS, HAPROXY_*, TRAEFIK_*, NGINX_*, BALANCER_CERTS_DIR, DNS_UPKEEP and PUBLIC_IP*: what they mean and how a bad value is told. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../src/config.js';
import { parseRuntimeAddress } from '../../src/outputs/haproxy/runtime-api.js';
import { upkeepNames } from '../../src/dns-upkeep/upkeep.js';
import { DEFAULT_PUBLIC_IP_URL, DEFAULT_PUBLIC_IPV6_URL } from '../../src/dns-upkeep/config.js';

const refused = (env: Record<string, string>, variable: string, said: RegExp) =>
  assert.throws(() => loadConfig(env, '/work'), (e: unknown) => e instanceof ConfigError && e.variable === variable && said.test(e.message), `${JSON.stringify(env)} names ${variable}`);

test('OUTPUTS: off by default; each output beside CERTS_DIR, its paths as BALANCER_CERTS_DIR names them', () => {
  assert.deepEqual(loadConfig({}, '/work').outputs, { balancerCertsDir: '/work/data/live' });
  const c = loadConfig({ CERTS_DIR: '/srv/certs', OUTPUTS: 'HAProxy, traefik,nginx', BALANCER_CERTS_DIR: '/etc/certs' }, '/work').outputs;
  assert.equal(c.haproxy?.crtList, '/srv/certs/haproxy/crt-list');
  assert.equal(c.haproxy?.balancerCrtList, '/etc/certs/haproxy/crt-list');
  assert.equal(c.haproxy?.runtime, undefined);
  assert.equal(c.traefik?.file, '/srv/certs/traefik/certwrangler.yml');
  assert.equal(c.nginx?.dir, '/srv/certs/nginx');
  // A crt-list outside CERTS_DIR is named by the same path for HAProxy, unless told otherwise.
  const own = loadConfig({ OUTPUTS: 'haproxy', HAPROXY_CRT_LIST: '/etc/haproxy/crt-list' }, '/work').outputs.haproxy!;
  assert.equal(own.balancerCrtList, '/etc/haproxy/crt-list');
});

test('HAPROXY_RUNTIME_API: a unix socket or host:port, and it turns the crt-list on', () => {
  assert.deepEqual(parseRuntimeAddress('/run/haproxy/admin.sock'), { path: '/run/haproxy/admin.sock' });
  assert.deepEqual(parseRuntimeAddress('unix:/run/haproxy/admin.sock'), { path: '/run/haproxy/admin.sock' });
  assert.deepEqual(parseRuntimeAddress('haproxy:9999'), { host: 'haproxy', port: 9999 });
  assert.deepEqual(parseRuntimeAddress('tcp:[::1]:9999'), { host: '::1', port: 9999 });
  assert.equal(parseRuntimeAddress('haproxy'), undefined);
  assert.deepEqual(loadConfig({ HAPROXY_RUNTIME_API: '127.0.0.1:9999' }, '/work').outputs.haproxy?.runtime, { host: '127.0.0.1', port: 9999 });
  refused({ HAPROXY_RUNTIME_API: 'haproxy' }, 'HAPROXY_RUNTIME_API', /unix socket path.*host:port/);
});

test('OUTPUTS and paths: a bad value names the variable and what is accepted', () => {
  refused({ OUTPUTS: 'haproxy,caddy' }, 'OUTPUTS', /haproxy, traefik, nginx \("caddy" is not one\)/);
  refused({ OUTPUTS: 'nginx', BALANCER_CERTS_DIR: 'certs' }, 'BALANCER_CERTS_DIR', /absolute path/);
  refused({ OUTPUTS: 'nginx', NGINX_INCLUDE_DIR: '/etc/nginx/a;b' }, 'NGINX_INCLUDE_DIR', /without quotes, semicolons/);
});

test('DNS_UPKEEP: off by default; on, it needs a DNS provider and asks ipify for both families unless told otherwise', () => {
  assert.equal(loadConfig({}, '/work').dnsUpkeep, undefined);
  refused({ DNS_UPKEEP: 'true' }, 'DNS_PROVIDER', /cloudflare or rfc2136/);
  const rfc = { DNS_PROVIDER: 'rfc2136', RFC2136_NAMESERVER: '192.0.2.53' };
  const c = loadConfig({ ...rfc, DNS_UPKEEP: 'true' }, '/work').dnsUpkeep!;
  assert.equal(c.source.v4Urls[0], DEFAULT_PUBLIC_IP_URL);
  assert.equal(c.source.v6Urls[0], DEFAULT_PUBLIC_IPV6_URL);
  assert.equal(c.source.v4Urls.length, 2, 'with a fallback');
  assert.equal(c.intervalMs, 300_000);
  const off = loadConfig({ ...rfc, DNS_UPKEEP: 'true', PUBLIC_IPV6_URL: 'off', PUBLIC_IP_FALLBACK_URL: 'off', DNS_UPKEEP_INTERVAL: '1m' }, '/work').dnsUpkeep!;
  assert.deepEqual(off.source.v6Urls, []);
  assert.equal(off.source.v4Urls.length, 1);
  assert.equal(off.intervalMs, 60_000);
  assert.deepEqual(loadConfig({ ...rfc, DNS_UPKEEP: 'true', PUBLIC_IP: '203.0.113.7, 2001:DB8:0::7' }, '/work').dnsUpkeep!.source.fixed, { v4: '203.0.113.7', v6: '2001:db8::7' });
  refused({ ...rfc, DNS_UPKEEP: 'true', PUBLIC_IP: '203.0.113.7,198.51.100.1' }, 'PUBLIC_IP', /one IPv4 address, one IPv6 address/);
  refused({ ...rfc, DNS_UPKEEP: 'true', PUBLIC_IP: 'my-host' }, 'PUBLIC_IP', /one IPv4 address/);
  refused({ ...rfc, DNS_UPKEEP: 'true', PUBLIC_IP_URL: 'ipify' }, 'PUBLIC_IP_URL', /absolute http/);
  refused({ ...rfc, DNS_UPKEEP: 'true', DNS_UPKEEP_INTERVAL: '1s' }, 'DNS_UPKEEP_INTERVAL', /at least 10000 ms/);
});

test('DNS upkeep keeps every managed name once, and never a wildcard; a name DOMAINS or the API asks for too is not a label\'s', () => {
  const op = (name: string) => ({ name, fromLabel: false });
  const label = (name: string) => ({ name, fromLabel: true });
  assert.deepEqual(upkeepNames([op('www.example.com'), op('*.example.com'), label('example.com'), label('WWW.example.com'), label('app.example.com')]), [label('app.example.com'), label('example.com'), op('www.example.com')]);
});
