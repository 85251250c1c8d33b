/**
 * The rfc2136 provider against a real BIND: every TSIG algorithm BIND takes, one value removed while
 * another stays, the zone found by asking the server, and each way a server refuses, as the operator reads it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBind, type Bind, type BindKey } from '../support/bind.js';
import { freePort } from '../support/ports.js';
import { Rfc2136Provider, type Rfc2136Options } from '../../src/acme/dns01/rfc2136/rfc2136.js';
import { TSIG_ALGORITHMS, type TsigAlgorithm } from '../../src/acme/dns01/rfc2136/message.js';
import { loadConfig } from '../../src/config.js';

let bind: Bind;

before(async () => {
  bind = await startBind({ dir: mkdtempSync(join(tmpdir(), 'cw-bind-')), zones: ['example.test', 'sub.example.test', 'other.test'], algorithms: [...TSIG_ALGORITHMS] });
});
after(() => bind.stop());

function provider(key: BindKey | undefined, extra: Partial<Rfc2136Options> = {}): Rfc2136Provider {
  return new Rfc2136Provider({
    host: '127.0.0.1',
    port: bind.port,
    zone: undefined,
    ttl: 60,
    tsig: key ? { name: key.name, algorithm: key.algorithm as TsigAlgorithm, secret: Buffer.from(key.secret, 'base64') } : undefined,
    timeoutMs: 3000,
    ...extra,
  });
}

test('every TSIG algorithm BIND offers adds and removes a TXT value, and the answer is checked as signed', async () => {
  assert.equal(bind.keys.length, 6);
  for (const key of bind.keys) {
    const fqdn = `_acme-challenge.${key.algorithm}.example.test`;
    const p = provider(key);
    await p.present(fqdn, `value-${key.algorithm}`);
    assert.deepEqual(await bind.txt(fqdn), [`value-${key.algorithm}`], key.algorithm);
    await p.cleanup(fqdn, `value-${key.algorithm}`);
    assert.deepEqual(await bind.txt(fqdn), [], key.algorithm);
  }
});

test('a wildcard and its apex share one name: removing one value leaves the other', async () => {
  const p = provider(bind.key);
  const fqdn = '_acme-challenge.both.example.test';
  await p.present(fqdn, 'for-apex');
  await p.present(fqdn, 'for-wildcard');
  assert.deepEqual((await bind.txt(fqdn)).sort(), ['for-apex', 'for-wildcard']);
  await p.cleanup(fqdn, 'for-apex');
  assert.deepEqual(await bind.txt(fqdn), ['for-wildcard']);
  await p.cleanup(fqdn, 'for-wildcard');
  assert.deepEqual(await bind.txt(fqdn), []);
});

test('the zone is the closest one the server answers an SOA for (sub.example.test, not example.test)', async () => {
  const p = provider(bind.key);
  await p.present('_acme-challenge.www.sub.example.test', 'in-sub');
  assert.deepEqual(await bind.txt('_acme-challenge.www.sub.example.test'), ['in-sub']);
  await p.cleanup('_acme-challenge.www.sub.example.test', 'in-sub');
  // A zone named by RFC2136_ZONE that does not hold the name is refused by the server.
  await assert.rejects(provider(bind.key, { zone: 'other.test' }).present('_acme-challenge.x.example.test', 'v'), /refused adding TXT _acme-challenge\.x\.example\.test in zone other\.test: NOTZONE/);
  await assert.rejects(provider(bind.key).present('_acme-challenge.x.nowhere.test', 'v'), new RegExp(`127\\.0\\.0\\.1:${bind.port} is not authoritative for any zone above _acme-challenge\\.x\\.nowhere\\.test .*set RFC2136_ZONE`));
});

test('refusals name what to fix: a wrong secret, an unknown key, an unsigned update; nothing is written', async () => {
  const fqdn = '_acme-challenge.refused.example.test';
  const wrongSecret = { ...bind.key, secret: Buffer.from('not the secret').toString('base64') };
  await assert.rejects(provider(wrongSecret).present(fqdn, 'v'), /BADSIG: RFC2136_TSIG_SECRET does not match/);
  await assert.rejects(provider({ ...bind.key, name: 'nobody' }).present(fqdn, 'v'), /BADKEY: the server has no key of this name and algorithm \(check RFC2136_TSIG_KEY and RFC2136_TSIG_ALGORITHM\)/);
  await assert.rejects(provider(undefined).present(fqdn, 'v'), /REFUSED \(the zone does not allow this key or address to update it/);
  assert.deepEqual(await bind.txt(fqdn), []);
});

test('a server that takes the connection and never answers fails at the timeout; a closed port fails at once', async () => {
  const sockets: import('node:net').Socket[] = [];
  const silent: Server = createServer((s) => sockets.push(s));
  const port = await freePort();
  await new Promise<void>((r) => silent.listen(port, '127.0.0.1', r));
  try {
    const started = Date.now();
    await assert.rejects(provider(bind.key, { port, zone: 'example.test', timeoutMs: 500 }).present('_acme-challenge.a.example.test', 'v'), new RegExp(`127\\.0\\.0\\.1:${port}: no answer within 500 ms`));
    assert.ok(Date.now() - started < 3000);
  } finally {
    sockets.forEach((s) => s.destroy());
    silent.close();
  }
  await assert.rejects(provider(bind.key, { port, zone: 'example.test' }).present('_acme-challenge.a.example.test', 'v'), /ECONNREFUSED/);
});

test('an answer that says NOERROR without a valid signature is not trusted as a written record', async () => {
  // A stand-in server answering every update "NOERROR": once unsigned, once with the request's own TSIG record echoed.
  for (const echoTsig of [false, true]) {
    const server = createServer((s) =>
      s.once('data', (b: Buffer) => {
        const msg = b.subarray(2);
        const answer = Buffer.from(echoTsig ? msg : msg.subarray(0, 12));
        answer.writeUInt16BE(0xa800, 2); // QR, opcode UPDATE, rcode 0
        if (!echoTsig) answer.fill(0, 4, 12);
        s.end(Buffer.concat([Buffer.from([answer.length >> 8, answer.length & 0xff]), answer]));
      }),
    );
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      await assert.rejects(provider(bind.key, { port, zone: 'example.test' }).present('_acme-challenge.forged.example.test', 'v'), /answer to adding TXT _acme-challenge\.forged\.example\.test in zone example\.test is not signed with RFC2136_TSIG_KEY; not trusting it/);
    } finally {
      server.close();
    }
  }
});

/** The options the rfc2136 entry read, through loadConfig. */
function rfc2136Options(env: Record<string, string>) {
  const dns = loadConfig(env).dns;
  assert(dns?.provider === 'rfc2136');
  return dns.options;
}

test('configuration: RFC2136_* variables are read once, with errors that name the variable', () => {
  const base = { DNS_PROVIDER: 'rfc2136', DATA_DIR: '/tmp/x' };
  const o = rfc2136Options({ ...base, RFC2136_NAMESERVER: 'ns1.example.com:5353', RFC2136_TSIG_KEY: 'acme.', RFC2136_TSIG_SECRET: Buffer.from('s3cret').toString('base64'), RFC2136_TSIG_ALGORITHM: 'HMACSHA512', RFC2136_ZONE: 'Example.COM.' });
  assert.deepEqual({ ...o, tsig: { ...o.tsig!, secret: o.tsig!.secret.toString() } }, {
    host: 'ns1.example.com',
    port: 5353,
    zone: 'example.com',
    ttl: 60,
    tsig: { name: 'acme', algorithm: 'hmac-sha512', secret: 's3cret' },
  });
  assert.equal(rfc2136Options({ ...base, RFC2136_NAMESERVER: '[2001:db8::53]' }).port, 53);
  assert.equal(rfc2136Options({ ...base, RFC2136_NAMESERVER: '192.0.2.1', RFC2136_TSIG_KEY: 'k', RFC2136_TSIG_SECRET: 'c2VjcmV0', RFC2136_TSIG_ALGORITHM: 'hmac-md5.sig-alg.reg.int.' }).tsig!.algorithm, 'hmac-md5');
  assert.throws(() => loadConfig(base), /RFC2136_NAMESERVER="" is not valid; accepted: the primary DNS server that takes dynamic updates/);
  assert.throws(() => loadConfig({ ...base, RFC2136_NAMESERVER: 'ns1:99999' }), /RFC2136_NAMESERVER="ns1:99999" is not valid/);
  assert.throws(() => loadConfig({ ...base, RFC2136_NAMESERVER: 'ns1', RFC2136_TSIG_KEY: 'k' }), /RFC2136_TSIG_SECRET=\(hidden\) is not valid; accepted: set both RFC2136_TSIG_KEY/);
  assert.throws(() => loadConfig({ ...base, RFC2136_NAMESERVER: 'ns1', RFC2136_TSIG_KEY: 'k', RFC2136_TSIG_SECRET: 'not base64!' }), (e: Error) => /RFC2136_TSIG_SECRET=\(hidden\)/.test(e.message) && !e.message.includes('not base64!'));
  assert.throws(() => loadConfig({ ...base, RFC2136_NAMESERVER: 'ns1', RFC2136_TSIG_KEY: 'k', RFC2136_TSIG_SECRET: 'c2VjcmV0', RFC2136_TSIG_ALGORITHM: 'gss-tsig' }), /RFC2136_TSIG_ALGORITHM="gss-tsig" is not valid; accepted: hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512/);
});
