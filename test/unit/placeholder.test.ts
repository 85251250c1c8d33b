import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { keyMatchesCert, parseCert } from '../../src/certs/parse.js';

test('placeholder: every serial the random bytes can give is a readable, positive, minimally encoded serial', async () => {
  const patterns = [
    Buffer.alloc(16, 0x00), // 00 00 00 …: forge drops one leading zero byte, OpenSSL refused the rest
    Buffer.from([0x00, 0x00, 0x7f, ...Buffer.alloc(13, 0xaa)]),
    Buffer.from([0x00, 0x80, ...Buffer.alloc(14, 0x01)]),
    Buffer.from([0x80, 0x00, ...Buffer.alloc(14, 0x01)]), // top bit: would be a negative serial
    Buffer.alloc(16, 0xff),
  ];
  for (const serialBytes of patterns) {
    const ss = await createSelfSigned(['a.example.com'], { sharedKey: true, serialBytes });
    const x = new X509Certificate(ss.cert); // throws "illegal padding" on a non-minimal serial
    // 16 bytes, the first 01–7f: positive, and no byte is a padding zero.
    assert.match(x.serialNumber, /^(0[1-9A-F]|[1-7][0-9A-F])[0-9A-F]{30}$/, serialBytes.toString('hex'));
    const info = parseCert(ss.cert);
    assert.equal(info.selfSigned, true);
    assert.deepEqual(info.names, ['a.example.com']);
    assert.equal(keyMatchesCert(ss.key, ss.cert), true);
  }
});
