/**
 * Text from outside (a CA's error detail, a DNS script's output, a mistyped URL) on its way into hook
 * environments, errors, /api/status and webhooks: it can neither end the manager nor publish a secret.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Notifier } from '../../src/events/notifier.js';
import type { CertEvent } from '../../src/events/events.js';
import { ExecProvider } from '../../src/acme/dns01/exec/exec.js';
import { loadConfig, ConfigError } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { freePort } from '../support/ports.js';
import { startReceiver } from '../support/receiver.js';

const dir = mkdtempSync(join(tmpdir(), 'cw-untrusted-'));

function capture() {
  const lines: { level: string; msg: string }[] = [];
  const log = createLogger(
    'debug',
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
        cb();
      },
    }),
  );
  return { log, lines };
}

test('hooks: an error with a NUL and other control characters runs the hook with them removed; later events still run; nothing escapes', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const out = join(dir, 'hook-out');
  const { log, lines } = capture();
  // The webhook points at a port nothing listens on, and a listener throws: neither may escape either.
  const notifier = new Notifier({
    onFailureCommand: `printf '%s|' "$CERTWRANGLER_ERROR" >> ${out}`,
    onChangeCommand: `printf '%s|' "$CERTWRANGLER_EVENT" >> ${out}`,
    hookTimeoutMs: 10_000,
    webhook: { url: `http://127.0.0.1:${await freePort()}/hook`, format: 'json', timeoutMs: 1000, attempts: 1 },
    pathsFor: () => ({}),
    log,
    listeners: [
      () => {
        throw new Error('a listener that breaks');
      },
    ],
  });
  const at = new Date().toISOString();
  const failed: CertEvent = { type: 'failed', name: 'a.example.com', names: ['a.example.com'], at, reason: 'NoLocalCopy', error: 'CA said: bad\u0000name\u001b[31m red\u0007 bell\r\u0085 end\tafter\nline two' };
  try {
    notifier.emit(failed);
    notifier.emit({ type: 'issued', name: 'a.example.com', names: ['a.example.com'], at, reason: 'NoLocalCopy' });
    await notifier.drain();
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  assert.equal(readFileSync(out, 'utf8'), 'CA said: badname[31m red bell end\tafter\nline two|issued|', 'the cleaned value, then the next event of the same certificate');
  assert.deepEqual(unhandled, []);
  assert.ok(lines.some((l) => /a listener failed on failed: a listener that breaks/.test(l.msg)));
  assert.ok(lines.some((l) => l.level === 'warn' && /webhook http:\/\/127\.0\.0\.1:\d+ ECONNREFUSED/.test(l.msg)));
});

test('exec provider: its last output lines, which reach /api/status and the webhook, have Authorization headers and tokens masked', async () => {
  const script = join(dir, 'dns-hook.sh');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      'echo "> POST /zones/1/records HTTP/1.1"',
      'echo "> Authorization: Bearer cf-TOKEN-0123456789abcdef"',
      'echo "> authorization: Basic dXNlcjpodW50ZXIy"',
      'echo "curl -H X-Auth: token abcdefgh12345678xyz https://api.example.net/?api_key=AKIA1234SECRET&zone=z1"',
      `echo 'config: {"token": "tok-0987654321", "password": "hunter2hunter2", secret=s3cr3t-value}'`,
      'echo "error: 403 forbidden for zone example.com"',
      'exit 3',
      '',
    ].join('\n'),
  );
  chmodSync(script, 0o755);
  const provider = new ExecProvider(script, 10_000);
  const err = await provider.present('_acme-challenge.a.example.com', 'v').then(
    () => assert.fail('the script failed'),
    (e: Error) => e,
  );
  for (const secret of ['cf-TOKEN-0123456789abcdef', 'dXNlcjpodW50ZXIy', 'abcdefgh12345678xyz', 'AKIA1234SECRET', 'tok-0987654321', 'hunter2hunter2', 's3cr3t-value']) {
    assert.ok(!err.message.includes(secret), `${secret} in: ${err.message}`);
  }
  assert.match(err.message, /exited with 3: .*Authorization: \[hidden\]/s);
  assert.match(err.message, /error: 403 forbidden for zone example\.com/, 'what an operator needs is kept');

  // The same text as a webhook's error field.
  const r = await startReceiver();
  try {
    const notifier = new Notifier({ hookTimeoutMs: 1000, webhook: { url: `${r.url}/w`, format: 'json', timeoutMs: 2000 }, pathsFor: () => ({}), log: createLogger('silent') });
    notifier.emit({ type: 'failed', name: 'a.example.com', names: ['a.example.com'], at: new Date().toISOString(), reason: 'NoLocalCopy', error: err.message });
    await notifier.drain();
    assert.equal(r.received.length, 1);
    assert.ok(!r.received[0]!.body.includes('cf-TOKEN') && r.received[0]!.body.includes('[hidden]'));
  } finally {
    await r.close();
  }
});

test('config: a malformed WEBHOOK_URL shows its scheme and host only; a CATTLE_URL never shows its credentials', () => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ WEBHOOK_URL: 'https://hooks.slack.com:99999/services/T0/B0/XoXsEcReT' }, 'XoXsEcReT', /WEBHOOK_URL="https:\/\/hooks\.slack\.com:99999\/…" is not valid/],
    [{ WEBHOOK_URL: 'hooks.slack.com/services/T0/B0/XoXsEcReT' }, 'XoXsEcReT', /WEBHOOK_URL="hooks\.slack\.com\/…" is not valid/],
    [{ WEBHOOK_URL: 'ftp://hooks.example.com/XoXsEcReT' }, 'XoXsEcReT', /WEBHOOK_URL="ftp:\/\/hooks\.example\.com\/…" is not valid/],
    [{ CATTLE_URL: 'ftp://AK123:Sup3rSecret@rancher:8080/v1', CATTLE_ACCESS_KEY: 'a', CATTLE_SECRET_KEY: 'b' }, 'Sup3rSecret', /CATTLE_URL="ftp:\/\/rancher:8080\/v1" is not valid/],
    [{ CATTLE_URL: 'http://AK123:Sup3r@Secret@rancher:80800/v1', CATTLE_ACCESS_KEY: 'a', CATTLE_SECRET_KEY: 'b' }, 'Sup3r', /CATTLE_URL="http:\/\/rancher:80800\/v1" is not valid/],
  ];
  for (const [env, secret, shown] of cases) {
    assert.throws(
      () => loadConfig(env),
      (e: unknown) => e instanceof ConfigError && shown.test(e.message) && !e.message.includes(secret) && !e.message.includes('AK123'),
      JSON.stringify(env),
    );
  }
});
