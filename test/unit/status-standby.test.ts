/**
 * A standby manager's status endpoint (STORE=redis, issue 20 item 2): healthy, not ready, saying its role and the
 * leader on /readyz, the page, /api/status and /metrics, and refusing changes with the leader's name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listenStandby } from '../../src/status/standby.js';
import { Metrics } from '../../src/status/metrics.js';
import { freePort } from '../support/ports.js';

test('status: a standby says "standby, leader is <host>" on /readyz (503), the page, /api/status and /metrics, stays healthy, and refuses changes naming the leader', async () => {
  const port = await freePort();
  const leader = 'cw-1 (pid 7, fencing token 3, since 2027-01-20T10:00:00.000Z)';
  const s = await listenStandby({ host: '127.0.0.1', port, version: '9.9.9', where: 'Redis redis://redis:6379/0', leader });
  try {
    const url = `http://127.0.0.1:${port}`;
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(await ready.text(), `standby, leader is ${leader}\n`);
    assert.match(await (await fetch(url)).text(), /standby, leader is cw-1 \(pid 7/);
    assert.deepEqual(Object.entries((await (await fetch(`${url}/api/status`)).json()) as object).filter(([k]) => k === 'role' || k === 'leader'), [['role', 'standby'], ['leader', leader]]);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /^certwrangler_manager_role\{role="standby"\} 1$/m);
    assert.match(metrics, /^certwrangler_standby_leader_info\{leader="cw-1 \(pid 7, fencing token 3, since 2027-01-20T10:00:00.000Z\)"\} 1$/m);
    const put = await fetch(`${url}/api/certificates/a.example`, { method: 'PUT', body: '{}' });
    assert.equal(put.status, 503);
    assert.match(((await put.json()) as { error: string }).error, /standby; the active manager is cw-1 \(pid 7/);
    s.setLeader('cw-2 (pid 9, fencing token 4, since 2027-01-20T10:01:00.000Z)');
    assert.match(await (await fetch(`${url}/readyz`)).text(), /leader is cw-2/);
  } finally {
    await s.close();
  }
  // The leader's metrics say the other role.
  assert.match(await new Metrics().registry.metrics(), /^certwrangler_manager_role\{role="leader"\} 1$/m);
});
