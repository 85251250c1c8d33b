import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler } from '../../src/scheduler.js';
import { createLogger } from '../../src/log.js';

const waitFor = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(cond(), what);
};

test('a pending retry wakes the manager before its schedule; the earliest wake wins, and a stopped scheduler wakes no more', async () => {
  const passes: number[] = [];
  // A schedule that never comes during the test: only `start` and the wakes run passes.
  const s = new Scheduler(async () => void passes.push(Date.now()), { cron: '0 0 1 1 *', log: createLogger('silent'), wakeMinMs: 50 });
  s.start();
  await waitFor(() => passes.length === 1, 'the pass at start');
  const t0 = Date.now();
  s.wakeAt(new Date(t0 + 5_000), 'later');
  s.wakeAt(new Date(t0 + 150), 'a balancer reload is due');
  s.wakeAt(new Date(t0 + 3_000), 'not earlier than the one set');
  await waitFor(() => passes.length === 2, 'a pass at the earliest wake, long before the schedule');
  assert.ok(passes[1]! - t0 >= 140, 'not before it is due');
  s.wakeAt(new Date(Date.now() - 60_000), 'already past');
  await waitFor(() => passes.length === 3, 'a past time still wakes, after the shortest delay');
  s.wakeAt(new Date(Date.now() + 100), 'after stop');
  await s.stop(1000);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(passes.length, 3, 'stopping clears the wake');
});
