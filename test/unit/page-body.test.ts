/**
 * A listing page read as it streams in (src/orchestrators/rancher/page-body.ts): the digest is the whole body's,
 * the text is the body's without a byte order mark, whatever the chunks; a body that ends in an error, closes
 * early or does not finish in time is a BodyError, never a shorter page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { BodyError, PageBuffer, readBody } from '../../src/orchestrators/rancher/page-body.js';

const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ type: 'collection', data: Array.from({ length: 500 }, (_, i) => ({ id: `1c${i}`, name: `n${i}.example.org` })) }))]);
const chunks = (b: Buffer, size: number) => Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size));

test('page-body: the digest is the whole body\'s and the text is the body without its BOM, in any chunking, with or without a length', async () => {
  const want = createHash('sha256').update(body).digest('base64');
  const buffer = new PageBuffer();
  for (const [size, length] of [[7, NaN], [4096, body.length], [body.length, NaN], [100, 10]] as const) {
    buffer.start(length);
    assert.equal(await readBody(Readable.from(chunks(body, size)), buffer, 1000), want, `chunks of ${size}`);
    assert.equal(buffer.text(), body.subarray(3).toString('utf8'));
  }
  buffer.clear();
  assert.equal(buffer.text(), '');
});

test('page-body: a body that errors, closes before its end or stalls past the timeout is a BodyError', async () => {
  const buffer = new PageBuffer();
  const cut = new PassThrough();
  cut.write(body.subarray(0, 100));
  setImmediate(() => cut.destroy(new Error('aborted')));
  await assert.rejects(readBody(cut, buffer, 1000), (e: unknown) => e instanceof BodyError && !e.timedOut && /cut short after 100 bytes \(aborted\)/.test(e.message));
  const closed = new PassThrough();
  closed.write(body.subarray(0, 50));
  setImmediate(() => closed.destroy());
  await assert.rejects(readBody(closed, buffer, 1000), (e: unknown) => e instanceof BodyError && /cut short after 50 bytes/.test(e.message));
  const stalled = new PassThrough();
  stalled.write(body.subarray(0, 10));
  const t = performance.now();
  await assert.rejects(readBody(stalled, buffer, 200), (e: unknown) => e instanceof BodyError && e.timedOut && /within 200 ms \(RANCHER_TIMEOUT\)/.test(e.message));
  assert.ok(performance.now() - t >= 190);
  assert.ok(stalled.destroyed, 'the stalled answer is closed, not left on its socket');
});
