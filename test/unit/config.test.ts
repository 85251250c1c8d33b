import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { loadConfig, ConfigError } from '../../src/config.js';
import { parseDomainList } from '../../src/domains.js';

const opts = { dnsProvider: false, onePerName: false, allowedSuffixes: [] };

test('DOMAINS: ";" separates certificates, "," names within one, first name is the certificate name', () => {
  const d = parseDomainList(' Example.com, www.example.com ; api.example.com;', 'DOMAINS', opts);
  assert.deepEqual(d.certs.map((c) => [c.name, c.names]), [
    ['example.com', ['example.com', 'www.example.com']],
    ['api.example.com', ['api.example.com']],
  ]);
  assert.deepEqual(d.refused, []);
});

test('DOMAINS: a bad name refuses its certificate only, with the reason', () => {
  const long = `${'a'.repeat(64)}.example.com`;
  const cases: Array<[string, RegExp]> = [
    ['10.0.0.1', /IP address/],
    ['*.example.com', /wildcard.*DNS-01 only: set DNS_PROVIDER/],
    [long, /label of 64 characters \(at most 63\)/],
    [`${'abcdefghi.'.repeat(26)}com`, /at most 253/],
    ['a..example.com', /empty label/],
    ['localhost', /fully qualified/],
    ['bad_name.example.com', /a-z, 0-9/],
  ];
  for (const [bad, why] of cases) {
    const d = parseDomainList(`good.example.com;${bad},also.example.com;other.example.com`, 'DOMAINS', opts);
    assert.deepEqual(d.certs.map((c) => c.name), ['good.example.com', 'other.example.com'], bad);
    assert.equal(d.refused.length, 1);
    assert.match(d.refused[0]!.error, why);
  }
});

test('DOMAINS: international names become punycode', () => {
  const d = parseDomainList('bücher.example.com', 'DOMAINS', opts);
  assert.deepEqual(d.certs[0]!.names, ['xn--bcher-kva.example.com']);
});

test('DOMAINS_ONE_PER_NAME: the seed form, one certificate per comma-separated name', () => {
  const d = loadConfig({ DOMAINS: 'a.example.com,b.example.com', DOMAINS_ONE_PER_NAME: 'true' });
  assert.deepEqual(d.domains.certs.map((c) => c.names), [['a.example.com'], ['b.example.com']]);
});

test('ALLOWED_DOMAINS: names outside the suffixes are refused', () => {
  const c = loadConfig({ DOMAINS: 'a.example.com;evil.example.org', ALLOWED_DOMAINS: 'example.com' });
  assert.deepEqual(c.domains.certs.map((x) => x.name), ['a.example.com']);
  assert.match(c.domains.refused[0]!.error, /outside ALLOWED_DOMAINS/);
});

test('config: defaults, and the seed variables', () => {
  const c = loadConfig({ CERTBOT_EMAIL: 'ops@example.com', CERTBOT_WEBROOT: '/srv/www', STAGING: 'False', LOOP_TIME: '300' }, '/work');
  assert.equal(c.email, 'ops@example.com');
  assert.equal(c.webrootDir, '/srv/www');
  assert.equal(c.staging, false);
  assert.equal(c.passIntervalSec, 300);
  assert.equal(c.dataDir, '/work/data');
  assert.equal(c.certsDir, '/work/data/live');
  assert.equal(c.keyType, 'rsa-2048');
  assert.equal(c.acmeConcurrency, 4);
  assert.equal(c.orchestrator, 'files');
  assert.match(c.schedule, /^\d+ \d+,\d+ \* \* \*$/);
  assert.equal(loadConfig({}).staging, true);
  for (const v of ['TRUE', 'yes', '1', 'On']) assert.equal(loadConfig({ STAGING: v }).staging, true);
});

test('config: Rancher is the orchestrator when CATTLE_URL is injected, with the seed variables it read', () => {
  const injected = { CATTLE_URL: 'http://rancher:8080/v1', CATTLE_ACCESS_KEY: 'ak', CATTLE_SECRET_KEY: 'sk' };
  const c = loadConfig(injected);
  assert.equal(c.orchestrator, 'rancher');
  assert.deepEqual(c.orchestratorOptions, { url: 'http://rancher:8080/v1', accessKey: 'ak', secretKey: 'sk', timeoutMs: 10_000 });
  assert.equal(c.hostsLabel, 'com.danieldent.rancher-lets-encrypt.hosts');
  assert.equal(c.readLabels, true);
  assert.equal(c.discoveryIntervalMs, 60_000);
  const timeout = (env: Record<string, string>) => (loadConfig(env).orchestratorOptions as { timeoutMs?: number }).timeoutMs;
  assert.equal(timeout({ ...injected, CONNECT_TIMEOUT: '25' }), 25_000, 'the seed\'s CONNECT_TIMEOUT, in seconds');
  assert.equal(timeout({ ...injected, CONNECT_TIMEOUT: '25', RANCHER_TIMEOUT: '3s' }), 3000);
  assert.equal(loadConfig({ ...injected, DYNAMIC_CONFIG: 'False' }).readLabels, false);
  assert.equal(loadConfig({ ...injected, ORCHESTRATOR: 'files' }).orchestrator, 'files');
  assert.deepEqual(loadConfig({ ...injected, ORCHESTRATOR: 'files' }).orchestratorOptions, {}, 'files keeps no Rancher key');
});

test('config: ORCHESTRATOR=docker reads DOCKER_HOST as the docker CLI does, and its own variables in its folder', () => {
  const d = (env: Record<string, string>) => loadConfig({ ORCHESTRATOR: 'docker', ...env }).orchestratorOptions as unknown as Record<string, unknown>;
  assert.deepEqual(d({}).endpoint, { kind: 'unix', socketPath: '/var/run/docker.sock' });
  assert.deepEqual(d({ DOCKER_HOST: 'tcp://10.0.0.5' }).endpoint, { kind: 'tcp', host: '10.0.0.5', port: 2375, tls: undefined }, 'plain tcp:// without DOCKER_TLS_VERIFY, on 2375 as the CLI does');
  assert.deepEqual(d({ DOCKER_HOST: 'tcp://[::1]:2380' }).endpoint, { kind: 'tcp', host: '::1', port: 2380, tls: undefined });
  assert.deepEqual(d({ DOCKER_READERS: 'Traefik, nginx-proxy' }).readers, ['traefik', 'nginx-proxy']);
  assert.deepEqual(d({}).readers, [], 'the readers are opt-in');
  assert.equal(d({}).timeoutMs, 10_000);
  assert.equal(loadConfig({ ORCHESTRATOR: 'docker', CATTLE_URL: 'http://rancher:8080/v1' }).orchestrator, 'docker');
});

test('config: a bad value names the variable, the value and what is accepted', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ STAGING: 'maybe' }, /^config: STAGING="maybe" is not valid; accepted: true\/false/],
    [{ KEY_TYPE: 'rsa-1024' }, /KEY_TYPE="rsa-1024" .*rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384/],
    [{ ACME_CONCURRENCY: '0' }, /ACME_CONCURRENCY="0" .*from 1 to 50/],
    [{ RENEW_BEFORE_DAYS: 'ten' }, /RENEW_BEFORE_DAYS="ten"/],
    [{ SCHEDULE: 'every day' }, /SCHEDULE="every day" .*cron/],
    [{ ACME_DIRECTORY_URL: 'ftp://x' }, /ACME_DIRECTORY_URL="ftp:\/\/x" .*http/],
    [{ DISCOVERY_INTERVAL: '5 minutes' }, /DISCOVERY_INTERVAL=.*60s, 5m/],
    [{ ACME_CA_BUNDLE: '/nonexistent/ca.pem' }, /ACME_CA_BUNDLE=.*readable PEM file \(ENOENT\)/],
    [{ CATTLE_URL: 'http://rancher:8080/v1', CATTLE_ACCESS_KEY: 'ak' }, /CATTLE_SECRET_KEY=\(hidden\)/],
    [{ CATTLE_URL: 'http://rancher:8080/v1', CATTLE_SECRET_KEY: 'sk' }, /CATTLE_ACCESS_KEY="" .*io\.rancher\.container\.create_agent=true/],
    [{ ORCHESTRATOR: 'rancher' }, /CATTLE_URL="" .*http/],
    [{ ORCHESTRATOR: 'kubernetes' }, /ORCHESTRATOR="kubernetes" .*files, rancher/],
    [{ CATTLE_URL: 'http://rancher:8080/v1', CATTLE_ACCESS_KEY: 'ak', CATTLE_SECRET_KEY: 'sk', RANCHER_TIMEOUT: 'soon' }, /RANCHER_TIMEOUT="soon"/],
    [{ CATTLE_URL: 'http://rancher:8080/v1', CATTLE_ACCESS_KEY: 'ak', CATTLE_SECRET_KEY: 'sk', CONNECT_TIMEOUT: '10s' }, /CONNECT_TIMEOUT="10s" .*whole number/],
    [{ ORCHESTRATOR: 'docker', DOCKER_HOST: 'ssh://me@host' }, /DOCKER_HOST="ssh:\/\/me@host" .*unix:\/\/\/path\/to\/docker\.sock or tcp:\/\/host:port/],
    [{ ORCHESTRATOR: 'docker', DOCKER_HOST: 'unix://relative.sock' }, /DOCKER_HOST="unix:\/\/relative\.sock"/],
    [{ ORCHESTRATOR: 'docker', DOCKER_READERS: 'traefik,caddy' }, /DOCKER_READERS="traefik,caddy" .*traefik, nginx-proxy, or none/],
    [{ ORCHESTRATOR: 'docker', DOCKER_HOST: 'tcp://10.0.0.5', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nonexistent' }, /DOCKER_CERT_PATH="\/nonexistent" .*ca\.pem, cert\.pem and key\.pem.*\(ca\.pem: ENOENT\)/],
    [{ ORCHESTRATOR: 'docker', DOCKER_TIMEOUT: 'forever' }, /DOCKER_TIMEOUT="forever"/],
    [{ DYNAMIC_CONFIG: 'sometimes' }, /DYNAMIC_CONFIG="sometimes"/],
  ];
  for (const [env, msg] of cases) {
    assert.throws(() => loadConfig(env), (e: unknown) => e instanceof ConfigError && msg.test(e.message), JSON.stringify(env));
  }
});

test('cli: a bad value stops the process with one line and exit code 2', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'plan'], { env: { ...process.env, STAGING: 'sometimes' }, encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /STAGING="sometimes" is not valid/);
});

test('STATUS_ADDR, STATUS_TOKEN, WEBHOOK_*, LOG_FORMAT: parsed once, bad values named with what is accepted', () => {
  assert.deepEqual(loadConfig({}).status, { host: '127.0.0.1', port: 9180, token: undefined });
  assert.deepEqual(loadConfig({ STATUS_ADDR: ':9999' }).status, { host: '0.0.0.0', port: 9999, token: undefined });
  assert.deepEqual(loadConfig({ STATUS_ADDR: '[::1]:9180' }).status, { host: '::1', port: 9180, token: undefined });
  assert.equal(loadConfig({ STATUS_ADDR: 'off' }).status, undefined);
  assert.throws(() => loadConfig({ STATUS_ADDR: '9180' }), /STATUS_ADDR="9180" is not valid; accepted: host:port/);
  assert.throws(() => loadConfig({ STATUS_ADDR: '127.0.0.1:70000' }), /STATUS_ADDR/);
  assert.throws(
    () => loadConfig({ STATUS_TOKEN: 'short' }),
    (e: Error) => e instanceof ConfigError && /STATUS_TOKEN=\(hidden\) .*at least 16 characters/.test(e.message) && !e.message.includes('short'),
  );
  assert.deepEqual(loadConfig({ WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/x', WEBHOOK_FORMAT: 'Slack' }).webhook, { url: 'https://hooks.slack.com/services/T/B/x', format: 'slack', timeoutMs: 10_000 });
  assert.throws(() => loadConfig({ WEBHOOK_URL: 'hooks.example.com' }), /WEBHOOK_URL="hooks.example.com" is not valid; accepted: an absolute http/);
  assert.throws(() => loadConfig({ WEBHOOK_URL: 'https://h.example.com', WEBHOOK_FORMAT: 'teams' }), /WEBHOOK_FORMAT="teams" is not valid; accepted: json, slack/);
  assert.equal(loadConfig({ LOG_FORMAT: 'pretty' }).logFormat, 'pretty');
  assert.throws(() => loadConfig({ LOG_FORMAT: 'xml' }), /LOG_FORMAT="xml" is not valid; accepted: json, pretty/);
});

test('LOG_FORMAT=pretty prints readable lines instead of JSON', () => {
  const run = (format: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'manager', '--once'], {
      env: { ...process.env, LOG_FORMAT: format, DOMAINS: '', DATA_DIR: `/tmp/cw-logfmt-${process.pid}`, STATUS_ADDR: 'off' },
      encoding: 'utf8',
    });
  const json = run('json');
  const line = json.stdout.split('\n').find((l) => l.includes('no certificates wanted'))!;
  assert.equal(JSON.parse(line).level, 'warn');
  const pretty = run('pretty').stdout;
  assert.match(pretty, /WARN.*no certificates wanted/);
  assert.ok(!pretty.trimStart().startsWith('{'));
});

test('DNS-01 settings: the provider, its variables and DNS_RESOLVERS are checked at start, naming what is accepted', () => {
  const base = { DOMAINS: '*.example.com,example.com' };
  assert.throws(() => loadConfig({ ...base, CHALLENGE: 'dns-01' }), /DNS_PROVIDER="" is not valid; accepted: one of rfc2136, cloudflare, exec, challtestsrv/);
  assert.throws(() => loadConfig({ ...base, DNS_PROVIDER: 'route53' }), /DNS_PROVIDER="route53" is not valid; accepted: rfc2136, cloudflare, exec, challtestsrv/);
  assert.throws(() => loadConfig({ ...base, DNS_PROVIDER: 'exec' }), /EXEC_PATH="" is not valid; accepted: the script that adds and removes TXT records/);
  assert.throws(() => loadConfig({ ...base, DNS_PROVIDER: 'challtestsrv', DNS_RESOLVERS: 'ns1.example.com' }), /DNS_RESOLVERS="ns1.example.com" is not valid; accepted: comma-separated IP addresses/);
  const c = loadConfig({ ...base, DNS_PROVIDER: 'challtestsrv', DNS_RESOLVERS: '127.0.0.1:8053, [::1]:53,8.8.8.8', DNS_PROPAGATION_TIMEOUT: '30s' });
  assert.deepEqual(c.dns?.resolvers, ['127.0.0.1:8053', '[::1]:53', '8.8.8.8']);
  assert.equal(c.dns?.propagationTimeoutMs, 30_000);
  assert.deepEqual(c.domains.certs[0]!.names, ['*.example.com', 'example.com'], 'a DNS provider makes wildcards possible');
  assert.equal(c.domains.certs[0]!.name, '_.example.com');
});

test('LABEL_*: safe defaults, LABEL_ALLOWED_DOMAINS from ALLOWED_DOMAINS, and bad values named', () => {
  const d = loadConfig({});
  assert.deepEqual(d.labels, { allowedDomains: [], allowedDomainsFrom: 'ALLOWED_DOMAINS', allowDns01: false, maxCerts: 10, maxNames: 20, maxNewPerDay: 5, stacks: undefined });
  assert.deepEqual(loadConfig({ ALLOWED_DOMAINS: 'example.com' }).labels.allowedDomains, ['example.com']);
  const c = loadConfig({ ALLOWED_DOMAINS: 'example.com', LABEL_ALLOWED_DOMAINS: '*.apps.example.com, .tenants.example.com', LABELS_ALLOW_DNS01: 'yes', LABEL_MAX_CERTS: '3', LABEL_MAX_NAMES: '100', LABEL_MAX_NEW_PER_DAY: '0', LABEL_STACKS: 'web-apps, 1st5' });
  assert.deepEqual(c.labels, { allowedDomains: ['apps.example.com', 'tenants.example.com'], allowedDomainsFrom: 'LABEL_ALLOWED_DOMAINS', allowDns01: true, maxCerts: 3, maxNames: 100, maxNewPerDay: 0, stacks: ['web-apps', '1st5'] });
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ LABEL_ALLOWED_DOMAINS: 'apps.example.com,exa mple.com' }, /^config: LABEL_ALLOWED_DOMAINS="apps\.example\.com,exa mple\.com" is not valid; accepted: comma-separated domain suffixes .*"exa mple\.com" is not one/],
    [{ LABELS_ALLOW_DNS01: 'maybe' }, /^config: LABELS_ALLOW_DNS01="maybe" is not valid; accepted: true\/false/],
    [{ LABEL_MAX_CERTS: '0' }, /^config: LABEL_MAX_CERTS="0" is not valid; accepted: a whole number from 1 to 1000/],
    [{ LABEL_MAX_NAMES: '101' }, /^config: LABEL_MAX_NAMES="101" is not valid; accepted: a whole number from 1 to 100/],
    [{ LABEL_MAX_NEW_PER_DAY: '-1' }, /^config: LABEL_MAX_NEW_PER_DAY="-1" is not valid/],
    [{ LABEL_STACKS: ' , ' }, /^config: LABEL_STACKS=" , " is not valid; accepted: comma-separated stack names or ids \(Rancher stacks, Compose projects, Swarm stacks\)/],
  ];
  for (const [env, why] of bad) assert.throws(() => loadConfig(env), (e: Error) => e instanceof ConfigError && why.test(e.message), JSON.stringify(env));
});
