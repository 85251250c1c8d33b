import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../src/config.js';
import { mayAdopt } from '../../src/adopt.js';

test('ADOPT_EXISTING: true adopts DOMAINS only; a list names certificates; a label never adopts', () => {
  const all = loadConfig({ ADOPT_EXISTING: 'true' }).adoptExisting;
  assert.equal(mayAdopt(all, { name: 'shop.example.com', sources: ['DOMAINS'] }), true);
  assert.equal(mayAdopt(all, { name: 'shop.example.com', sources: ['label com.danieldent.rancher-lets-encrypt.hosts on web'] }), false);
  assert.equal(mayAdopt(all, { name: 'shop.example.com', sources: ['api'] }), false, 'true means DOMAINS, as it always did');

  const listed = loadConfig({ ADOPT_EXISTING: 'Shop.Example.com, *.wild.example.com' }).adoptExisting;
  assert.deepEqual(listed.names, ['shop.example.com', '_.wild.example.com']);
  assert.equal(mayAdopt(listed, { name: 'shop.example.com', sources: ['DOMAINS'] }), true);
  assert.equal(mayAdopt(listed, { name: 'shop.example.com', sources: ['api'] }), true);
  assert.equal(mayAdopt(listed, { name: 'other.example.com', sources: ['DOMAINS'] }), false, 'only what is listed');
  assert.equal(mayAdopt(listed, { name: 'shop.example.com', sources: ['label com.danieldent.rancher-lets-encrypt.hosts on web'] }), false, 'a listed name asked for by a label only is still not adopted');

  assert.equal(mayAdopt(loadConfig({}).adoptExisting, { name: 'shop.example.com', sources: ['DOMAINS'] }), false);
  assert.throws(() => loadConfig({ ADOPT_EXISTING: 'shop..example.com' }), (e: unknown) => e instanceof ConfigError && /ADOPT_EXISTING=.* accepted: true .*false, or a comma-separated list of certificate names/.test(e.message));
});

test('NEW_ORDER_BUDGET: a percentage, 80% by default; anything else names what is accepted', () => {
  assert.equal(loadConfig({}).newOrderBudget, 0.8);
  assert.equal(loadConfig({ NEW_ORDER_BUDGET: '50%' }).newOrderBudget, 0.5);
  assert.equal(loadConfig({ NEW_ORDER_BUDGET: '100' }).newOrderBudget, 1);
  for (const bad of ['0', '0.8', '120%', 'most']) {
    assert.throws(() => loadConfig({ NEW_ORDER_BUDGET: bad }), (e: unknown) => e instanceof ConfigError && /NEW_ORDER_BUDGET=.* accepted: a percentage from 1% to 100%/.test(e.message), bad);
  }
});
