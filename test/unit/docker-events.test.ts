/**
 * The Docker event watcher's settle window: a burst of events (and the connect's own full look) starts one pass,
 * whose trigger names every distinct reason of the burst in the order it came, a few and then how many more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { EventWatcher, describeBurst } from '../../src/orchestrators/docker/events.js';
import type { DockerApi } from '../../src/orchestrators/docker/api.js';
import { createLogger } from '../../src/log.js';

const event = (name: string, action: string) => `${JSON.stringify({ Type: 'container', Action: action, Actor: { Attributes: { name } } })}\n`;

test('a burst within the settle window starts one pass that names the connect and every distinct event, in order', async () => {
  const stream = new PassThrough();
  const whys: string[] = [];
  const api = { stream: async () => stream } as unknown as DockerApi;
  const w = new EventWatcher({ api, log: createLogger('silent'), onChange: (why) => whys.push(why), settleMs: 80 });
  w.start();
  try {
    await new Promise((r) => setTimeout(r, 10));
    stream.write(event('late', 'create'));
    stream.write(event('late', 'start') + event('late', 'start')); // a repeat is named once
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(whys, ['docker events followed; docker event: container late create; docker event: container late start']);
    // The next burst starts afresh.
    stream.write('not json\n');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(whys.slice(1), ['docker event']);
  } finally {
    w.stop();
    stream.end();
  }
});

test('a long burst names four reasons and how many more', () => {
  assert.equal(describeBurst(['a']), 'a');
  assert.equal(describeBurst(['a', 'b', 'c', 'd']), 'a; b; c; d');
  assert.equal(describeBurst(['a', 'b', 'c', 'd', 'e', 'f']), 'a; b; c; d and 2 more');
});
