/**
 * The variables hooks never see build themselves from the core's list and every registry entry's `secrets`:
 * a hook (and an exec provider's script, which runs the same way) finds none of them in its environment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runHook } from '../../src/hooks.js';
import { isSecretVariable, secretVariables } from '../../src/secrets.js';
import { DNS_PROVIDER_REGISTRY } from '../../src/acme/dns01/providers.js';
import { ORCHESTRATOR_REGISTRY } from '../../src/orchestrators/registry.js';
import { STORE_REGISTRY } from '../../src/stores/registry.js';

/** Every credential certwrangler reads, as hooks.ts listed them by hand before the registries. */
const KNOWN = ['CATTLE_SECRET_KEY', 'CATTLE_ACCESS_KEY', 'CATTLE_AGENT_INSTANCE_AUTH', 'ACME_EAB_HMAC_KEY', 'ACME_EAB_HMAC_KEY_2', 'ACME_EAB_HMAC_KEY_12', 'STATUS_TOKEN', 'WEBHOOK_URL', 'RFC2136_TSIG_SECRET', 'CLOUDFLARE_DNS_API_TOKEN'];

test('secrets: the list holds the core credentials and every DNS provider\'s, orchestrator\'s and store\'s declared ones', () => {
  const list = secretVariables();
  for (const name of KNOWN) assert.ok(list.includes(name) || isSecretVariable(name), `${name} is withheld`);
  assert.equal(isSecretVariable('ACME_EAB_KID_2'), false, 'a key id is not a secret');
  for (const [kind, entries] of [['DNS provider', DNS_PROVIDER_REGISTRY], ['orchestrator', ORCHESTRATOR_REGISTRY], ['store', STORE_REGISTRY]] as const) {
    for (const [name, entry] of Object.entries(entries)) {
      for (const s of entry.secrets) assert.ok(list.includes(s), `${kind} ${name}'s ${s} is withheld`);
    }
  }
});

test('secrets: a hook that prints them finds none, and still gets the other variables', async () => {
  const saved = new Map(KNOWN.map((k) => [k, process.env[k]]));
  try {
    // Plain values, printed without their names: maskSecrets, which would hide `TOKEN=…`, cannot mask a leak here.
    KNOWN.forEach((k, i) => (process.env[k] = `w1thheld${i}`));
    process.env.CW_TEST_PLAIN = 'plain-value';
    const r = await runHook(`printenv CW_TEST_PLAIN ${KNOWN.join(' ')}`, {}, 10_000);
    assert.doesNotMatch(r.output, /w1thheld/);
    assert.equal(r.output, 'plain-value');
  } finally {
    for (const [k, v] of saved) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    delete process.env.CW_TEST_PLAIN;
  }
});
