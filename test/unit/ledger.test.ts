import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkLimits, emptyLedger, isVerdict, Ledger, registeredDomain, type LedgerData } from '../../src/limits/ledger.js';

const T0 = new Date('2027-05-01T00:00:00Z');
const H = 3_600_000;
const at = (ms: number) => new Date(T0.getTime() + ms).toISOString();

test('registered domains come from the Public Suffix List, private section included', () => {
  assert.equal(registeredDomain('a.b.example.co.uk'), 'example.co.uk');
  assert.equal(registeredDomain('www.example.com'), 'example.com');
  assert.equal(registeredDomain('*.shop.example.com'), 'example.com');
  assert.equal(registeredDomain('me.github.io'), 'me.github.io');
});

test('50 certificates per registered domain per 7 days: the 51st waits until the oldest leaves the window', () => {
  const d: LedgerData = { ...emptyLedger(), issued: Array.from({ length: 50 }, (_, i) => ({ at: at(i * H), names: [`n${i}.example.com`] })) };
  const now = new Date(T0.getTime() + 60 * H);
  const v = checkLimits(d, ['new.example.com', 'new.other.org'], now)!;
  assert.equal(v.limit, 'certificatesPerRegisteredDomain');
  assert.match(v.message, /50 certificates for example\.com in the last 7 days/);
  assert.equal(v.retryAt.toISOString(), at(7 * 24 * H));
  assert.equal(checkLimits(d, ['new.other.org'], now), undefined, 'another registered domain is not held');
  assert.equal(checkLimits(d, ['new.example.com'], new Date(T0.getTime() + 7 * 24 * H)), undefined, 'a week later it may');
});

test('5 duplicates per exact name set per 7 days, whatever the order or case of the names', () => {
  const d: LedgerData = { ...emptyLedger(), issued: Array.from({ length: 5 }, (_, i) => ({ at: at(i * H), names: ['b.example.com', 'a.example.com'] })) };
  const v = checkLimits(d, ['A.example.com', 'b.example.com'], new Date(T0.getTime() + 10 * H))!;
  assert.equal(v.limit, 'duplicateCertificates');
  assert.equal(checkLimits(d, ['a.example.com'], new Date(T0.getTime() + 10 * H)), undefined, 'a different set is not a duplicate');
});

test('5 failed authorizations per name per hour; 300 new orders per account per 3 hours', () => {
  const fails: LedgerData = { ...emptyLedger(), failedAuthorizations: Array.from({ length: 5 }, (_, i) => ({ at: at(i * 60_000), name: 'bad.example.com' })) };
  const v = checkLimits(fails, ['ok.example.com', 'bad.example.com'], new Date(T0.getTime() + 10 * 60_000))!;
  assert.equal(v.limit, 'failedAuthorizationsPerName');
  assert.equal(v.retryAt.toISOString(), at(H));
  const orders: LedgerData = { ...emptyLedger(), orders: Array.from({ length: 299 }, (_, i) => ({ at: at(i * 1000), names: [`o${i}.example.org`] })) };
  assert.equal(checkLimits(orders, ['x.example.net'], new Date(T0.getTime() + H)), undefined);
  orders.orders.push({ at: at(H), names: ['y.example.net'] });
  assert.equal(checkLimits(orders, ['x.example.net'], new Date(T0.getTime() + H))?.limit, 'newOrdersPerAccount', 'the 300th order holds the 301st');
});

test('ledger: orders in flight count, records survive a new process, the file is 0600, an unreadable ledger stops orders', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-ledger-'));
  let now = T0;
  const clock = () => now;
  const l1 = Ledger.forDirectory(dir, 'ca', clock);
  const names = ['dup.example.com'];
  const tickets = [];
  for (let i = 0; i < 5; i++) {
    const t = await l1.acquire(names);
    assert.ok(!isVerdict(t), `order ${i + 1} may be made`);
    tickets.push(t);
  }
  const sixth = await l1.acquire(names);
  assert.ok(isVerdict(sixth) && sixth.limit === 'duplicateCertificates', 'five in flight already');
  for (const t of tickets) {
    t.issued();
    await t.done();
  }
  now = new Date(T0.getTime() + H);
  const l2 = Ledger.forDirectory(dir, 'ca', clock);
  const again = await l2.acquire(names);
  assert.ok(isVerdict(again) && again.limit === 'duplicateCertificates', 'a restart does not forget');
  const file = join(dir, 'ledger', 'ca.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal((JSON.parse(readFileSync(file, 'utf8')) as LedgerData).issued.length, 5);

  const until = await l2.caRateLimited(30 * 60_000, 'too many certificates');
  assert.equal(until.toISOString(), new Date(now.getTime() + 30 * 60_000).toISOString());
  const held = await Ledger.forDirectory(dir, 'ca', clock).acquire(['fresh.example.net']);
  assert.ok(isVerdict(held) && held.limit === 'caRateLimited' && /too many certificates/.test(held.message));

  mkdirSync(join(dir, 'ledger'), { recursive: true });
  writeFileSync(join(dir, 'ledger', 'broken.json'), '{not json');
  await assert.rejects(Ledger.forDirectory(dir, 'broken', clock).acquire(names), /rate-limit ledger .*broken\.json is unreadable .*move it aside/);
});

test('ledger: an order that cannot be written down is not made, and leaves nothing counted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-ledger-'));
  const l = Ledger.forDirectory(dir, 'ca', () => T0);
  const first = await l.acquire(['a.example.com']);
  assert.ok(!isVerdict(first));
  await first.done();
  // A file where the ledger's folder was: every write fails from now on, as on a full or read-only volume.
  rmSync(join(dir, 'ledger'), { recursive: true });
  writeFileSync(join(dir, 'ledger'), '');
  await assert.rejects(l.acquire(['a.example.com']), /cannot record the order in the rate-limit ledger .*ca\.json .*no order made/);
  rmSync(join(dir, 'ledger'));
  const t = await l.acquire(['a.example.com']);
  assert.ok(!isVerdict(t));
  await t.done();
  assert.equal((JSON.parse(readFileSync(join(dir, 'ledger', 'ca.json'), 'utf8')) as LedgerData).orders.length, 2, 'the refused order was not counted');
});
