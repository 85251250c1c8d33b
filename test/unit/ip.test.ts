/** src/ip.ts answers exactly as net.isIP does, for every shape of text it is given. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP as nodeIsIP } from 'node:net';
import { isIP } from '../../src/ip.js';

const SAMPLES = [
  '', ':', '::', '::1', '1::', '::ffff:192.0.2.1', '2001:db8::1', '2001:DB8:0:0:0:0:0:1', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:1.2.3.4',
  'fe80::1%eth0', 'fe80::1%', 'fe80::1%e:t.h-0', '::1%25', '[::1]', '[::1]:443', ':::', '1:::2', '2001:db8::g', '2001:db8:::1', '::ffff:999.0.0.1', ' ::1', '::1 ',
  '127.0.0.1', '0.0.0.0', '255.255.255.255', '256.0.0.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '127.0.0.1:9180', ':9180', '0.0.0.0:9180',
  'example.com', 'n0.r1.bench-example.com', '*.example.com', 'a:b', 'abc:def:0', 'dead:beef::cafe', 'DEAD:BEEF::', 'xn--bcher-kva.example', 'localhost', '1e100.net',
];

test('ip: isIP agrees with net.isIP', () => {
  for (const s of SAMPLES) assert.equal(isIP(s), nodeIsIP(s), JSON.stringify(s));
  // Random text over the characters addresses are made of.
  const chars = '0123456789abcdefABCDEF:.%g-x';
  for (let i = 0; i < 20_000; i++) {
    let s = '';
    for (let n = Math.floor(Math.random() * 16); n > 0; n--) s += chars[Math.floor(Math.random() * chars.length)];
    assert.equal(isIP(s), nodeIsIP(s), JSON.stringify(s));
  }
});
