/**
 * Issue 23 (mutation run of src/limits/ledger.ts): what the other ledger tests left unchecked: an ARI renewal is
 * exempt from every limit but the CA's own answer, and is never in flight against one; `peek` sees what `acquire`
 * would; a ledger file that is not a version 1 ledger stops orders, saying so; entries out of time order (a clock
 * stepped back) still give the right retry time; a set of names is one set, never two joined.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkLimits, emptyLedger, isVerdict, Ledger, type LedgerData } from '../../src/limits/ledger.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = new Date('2027-05-01T12:00:00.000Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
const repeat = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
const tmp = () => mkdtempSync(join(tmpdir(), 'cw-ledger-m-'));

/** A ledger on a files store whose file already holds `data`. */
function ledgerWith(data: Partial<LedgerData>, budget?: number): { l: Ledger; file: string } {
  const dir = tmp();
  mkdirSync(join(dir, 'ledger'));
  const file = join(dir, 'ledger', 'ca.json');
  writeFileSync(file, JSON.stringify({ ...emptyLedger(), ...data }));
  return { l: Ledger.forDirectory(new FilesStore(dir), 'ca', () => NOW, budget), file };
}

test('ARI renewal: exempt from every limit, held only by the CA\'s own rateLimited answer; peek says the same', async () => {
  const full: Partial<LedgerData> = {
    orders: repeat(300, (i) => ({ at: ago(HOUR), names: [`o${i}.example.com`] })),
    issued: repeat(5, () => ({ at: ago(DAY), names: ['shop.example.com'] })),
    failedAuthorizations: repeat(5, () => ({ at: ago(60_000), name: 'shop.example.com' })),
  };
  const { l, file } = ledgerWith(full);
  assert.equal((await l.peek(['shop.example.com']))?.limit, 'newOrdersPerAccount', 'an ordinary order is held');
  assert.equal(await l.peek(['shop.example.com'], { ariRenewal: true }), undefined);
  const t = await l.acquire(['shop.example.com'], { ariRenewal: true });
  assert.ok(!isVerdict(t), 'an ARI renewal is made');
  t.issued();
  await t.done();
  const saved = JSON.parse(readFileSync(file, 'utf8')) as LedgerData;
  assert.deepEqual(saved.orders.at(-1), { at: NOW.toISOString(), names: ['shop.example.com'], ari: true });
  assert.deepEqual(saved.issued.at(-1), { at: NOW.toISOString(), names: ['shop.example.com'], ari: true });
  await l.caRateLimited(HOUR, 'too many');
  for (const v of [await l.peek(['shop.example.com'], { ariRenewal: true }), await l.acquire(['shop.example.com'], { ariRenewal: true })]) {
    assert.ok(v && isVerdict(v));
    assert.equal(v.limit, 'caRateLimited');
  }
});

test('ARI renewal: neither its order nor its certificate counts against an ordinary order, in flight or issued', async () => {
  const { l } = ledgerWith({ issued: repeat(4, () => ({ at: ago(DAY), names: ['shop.example.com'] })) });
  // Two ARI renewals of the set: one issued, one still in flight. Either, counted, would make 5 of 5 duplicates.
  const done = await l.acquire(['shop.example.com'], { ariRenewal: true });
  assert.ok(!isVerdict(done));
  done.issued();
  await done.done();
  const inFlight = await l.acquire(['shop.example.com'], { ariRenewal: true });
  assert.ok(!isVerdict(inFlight));
  assert.equal(await l.peek(['shop.example.com']), undefined);
  const t = await l.acquire(['shop.example.com']);
  assert.ok(!isVerdict(t), 'the ordinary order is the 5th of 5');
  await t.done();
  await inFlight.done();
});

test('peek: counts the orders in flight, and asks for a renewal\'s (reserved) budget unless told otherwise', async () => {
  const { l } = ledgerWith({ issued: repeat(4, () => ({ at: ago(DAY), names: ['shop.example.com'] })) }, 0.8);
  // 4 of 5 duplicates: over the 80% share of new certificates (4), inside the whole limit.
  assert.equal(await l.peek(['shop.example.com']), undefined, 'reserved by default');
  assert.equal((await l.peek(['shop.example.com'], { budget: 'new' }))?.limit, 'newOrderBudget');
  const t = await l.acquire(['shop.example.com']);
  assert.ok(!isVerdict(t));
  assert.equal((await l.peek(['shop.example.com']))?.limit, 'duplicateCertificates', 'the order in flight is the 5th');
  await t.done();
  assert.equal(await l.peek(['shop.example.com']), undefined, 'done, and never issued');
});

test('budgets: the ledger\'s rows are those of its file, at its clock', async () => {
  const { l } = ledgerWith({ orders: [{ at: ago(HOUR), names: ['a.example.com'] }] });
  assert.deepEqual(await l.budgets(), [{ limit: 'newOrdersPerAccount', scope: 'account', used: 1, max: 300, newMax: 240, heldBack: 60, refillsAt: new Date(NOW.getTime() + 2 * HOUR).toISOString() }]);
});

test('a ledger without a clock records its orders at the time they are made', async () => {
  const dir = tmp();
  const l = Ledger.forDirectory(new FilesStore(dir), 'ca');
  const before = Date.now();
  const t = await l.acquire(['now.example.com']);
  assert.ok(!isVerdict(t));
  await t.done();
  const at = Date.parse((JSON.parse(readFileSync(join(dir, 'ledger', 'ca.json'), 'utf8')) as LedgerData).orders[0]!.at);
  assert.ok(at >= before && at <= Date.now(), new Date(at).toISOString());
});

test('a ledger file that is not a version 1 ledger stops orders, naming the file and why', async () => {
  for (const bad of ['null', '{"version":2,"orders":[],"issued":[],"failedAuthorizations":[],"caLimited":[]}', '{"version":1,"issued":[],"failedAuthorizations":[],"caLimited":[]}', '{"version":1,"orders":[],"issued":{},"failedAuthorizations":[],"caLimited":[]}', '{"version":1,"orders":[],"issued":[],"caLimited":[]}', '{"version":1,"orders":[],"issued":[],"failedAuthorizations":[]}']) {
    const { l, file } = ledgerWith({});
    writeFileSync(file, bad);
    await assert.rejects(l.acquire(['x.example.com']), (e: Error) => {
      assert.equal(e.message, `rate-limit ledger ${file} is unreadable (not a version 1 ledger); fix or move it aside`, bad);
      return true;
    });
    assert.equal(readFileSync(file, 'utf8'), bad, 'left as it was');
  }
});

test('retry time: entries out of time order (a clock stepped back) still wait for the one that must leave the window', () => {
  // 5 failed validations in the hour, listed newest first: the next may come when the oldest is an hour old.
  const fails = [5, 40, 10, 50, 20].map((m) => ({ at: ago(m * 60_000), name: 'x.example.com' }));
  const v = checkLimits({ ...emptyLedger(), failedAuthorizations: fails }, ['x.example.com'], NOW);
  assert.equal(v?.retryAt.toISOString(), new Date(NOW.getTime() - 50 * 60_000 + HOUR).toISOString());
  const issued = [1, 6, 3, 2, 5].map((d) => ({ at: ago(d * DAY), names: ['d.example.com'] }));
  assert.equal(checkLimits({ ...emptyLedger(), issued }, ['d.example.com'], NOW)?.retryAt.toISOString(), new Date(NOW.getTime() + DAY).toISOString());
});

test('duplicates: a set of names is one set: two names are not the one name their letters would join into', () => {
  const issued = repeat(5, () => ({ at: ago(DAY), names: ['a.example.com', 'b.example.com'] }));
  assert.equal(checkLimits({ ...emptyLedger(), issued }, ['a.example.comb.example.com'], NOW), undefined);
  assert.equal(checkLimits({ ...emptyLedger(), issued }, ['b.example.com', 'a.example.com'], NOW)?.limit, 'duplicateCertificates');
});

test('per registered domain: a certificate counts for every registered domain it names, not only for one that names no other', () => {
  const issued = repeat(50, (i) => ({ at: ago(DAY), names: [`s${i}.example.com`, `s${i}.example.org`] }));
  assert.equal(checkLimits({ ...emptyLedger(), issued }, ['new.example.org'], NOW)?.limit, 'certificatesPerRegisteredDomain');
  assert.equal(checkLimits({ ...emptyLedger(), issued }, ['new.example.net'], NOW), undefined);
});

test('per registered domain and duplicates: an ARI renewal\'s certificate counts against neither', () => {
  const issued = repeat(50, (i) => ({ at: ago(DAY), names: i < 5 ? ['dup.example.com'] : [`s${i}.example.com`], ari: true as const }));
  assert.equal(checkLimits({ ...emptyLedger(), issued }, ['dup.example.com'], NOW), undefined);
});
