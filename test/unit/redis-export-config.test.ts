/**
 * The variables of the webroot's Redis tokens and of the NethServer export: a bad one stops the start with one
 * line naming it and what is accepted, and never prints Redis's password.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../src/config.js';

const base = { DATA_DIR: '/tmp/cw-unused', LOG_LEVEL: 'silent' };
const refused = (env: Record<string, string>, variable: string, accepted: RegExp) =>
  assert.throws(
    () => loadConfig({ ...base, ...env }),
    (e: unknown) => e instanceof ConfigError && e.variable === variable && accepted.test(e.message) && !e.message.includes('s3cret'),
  );

test('tokens through Redis: STORE=redis publishes, REDIS_URL alone reads, neither leaves the folder alone; a bad URL names REDIS_URL and hides it', () => {
  assert.equal(loadConfig(base).tokenRedis, undefined);
  const manager = loadConfig({ ...base, STORE: 'redis', REDIS_URL: 'redis://:s3cret@redis:6379/0' }).tokenRedis!;
  assert.equal(manager.publish, true);
  assert.equal(manager.connection.shown, 'redis://:***@redis:6379/0');
  assert.equal(loadConfig({ ...base, REDIS_URL: 'redis://redis:6379/0' }).tokenRedis?.publish, false);
  refused({ STORE: 'redis' }, 'REDIS_URL', /redis:\/\/ or rediss:\/\//);
  refused({ REDIS_URL: 'http://:s3cret@redis' }, 'REDIS_URL', /\(hidden\)/);
});

test('REDIS_EXPORT: nethserver with a prefix; an unknown export, a missing or malformed prefix, or ORCHESTRATOR=rancher is refused by name', () => {
  const ok = loadConfig({ ...base, REDIS_URL: 'redis://redis:6379/0', REDIS_EXPORT: 'nethserver', REDIS_EXPORT_PREFIX: 'module/traefik1', REDIS_EXPORT_NODE: '3' }).outputs.nethserver!;
  assert.deepEqual([ok.prefix, ok.node], ['module/traefik1', '3']);
  const withUrl = { REDIS_URL: 'redis://redis:6379/0' };
  refused({ ...withUrl, REDIS_EXPORT: 'traefik' }, 'REDIS_EXPORT', /nethserver/);
  refused({ ...withUrl, REDIS_EXPORT: 'nethserver' }, 'REDIS_EXPORT_PREFIX', /module\/traefik1/);
  for (const bad of ['/module/traefik1', 'module/traefik1/', 'module traefik1', 'module//traefik1']) refused({ ...withUrl, REDIS_EXPORT: 'nethserver', REDIS_EXPORT_PREFIX: bad }, 'REDIS_EXPORT_PREFIX', /no leading or trailing/);
  refused({ REDIS_EXPORT: 'nethserver', REDIS_EXPORT_PREFIX: 'module/traefik1' }, 'REDIS_URL', /redis:\/\//);
  refused({ ...withUrl, REDIS_EXPORT: 'nethserver', REDIS_EXPORT_PREFIX: 'module/traefik1', ORCHESTRATOR: 'rancher', CATTLE_URL: 'http://rancher:8080/v1', CATTLE_ACCESS_KEY: 'a', CATTLE_SECRET_KEY: 's' }, 'REDIS_EXPORT', /ORCHESTRATOR=files and docker/);
});
