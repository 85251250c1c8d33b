/**
 * DNS A/AAAA upkeep (issue 21 item 4, DNS_UPKEEP=true): every name certwrangler manages points at this
 * host's public address. A pass runs it for the names it wants, before any order, so a new name resolves
 * before HTTP-01 asks for it; the manager runs it again every DNS_UPKEEP_INTERVAL for the last pass's names.
 * Only A and AAAA records of those names are written, and only when they differ; a name that is a CNAME,
 * and a wildcard, are left alone; a family whose address is unknown is never removed.
 *
 * Labels are untrusted input (DESIGN §10): a name only a label asks for gets a record where it has none, and
 * has it moved only while it still holds what certwrangler wrote (dns-upkeep.json in the store). A tenant's label
 * cannot point a name someone else keeps (mail.example.com) at this host.
 */
import { JsonBook } from '../stores/json-book.js';
import type { Store } from '../stores/store.js';
import type { AddressRecords, AddressType } from '../acme/dns01/provider.js';
import type { EventSink } from '../events/events.js';
import type { Logger } from '../log.js';
import { findPublicAddresses, type PublicAddresses, type PublicIpSource } from './public-ip.js';

export interface DnsChange {
  name: string;
  type: AddressType;
  from: string[];
  to: string[];
}

export interface DnsUpkeepReport {
  at: string;
  addresses: { v4?: string; v6?: string };
  /** Records changed by this run. */
  changes: DnsChange[];
  /** What could not be found or written; nothing else was left undone. */
  errors: string[];
}

/** One name to keep, and whether only a label asks for it. */
export interface UpkeepName {
  name: string;
  fromLabel: boolean;
}

/** What certwrangler last wrote per name and type, so a label's name is moved only from its own values. */
interface WrittenFile {
  version: 1;
  written: Record<string, Partial<Record<AddressType, string[]>>>;
}

export interface DnsUpkeepOptions {
  records: AddressRecords;
  /** The STORE: dns-upkeep.json there holds the values certwrangler wrote. */
  store: Store;
  source: PublicIpSource;
  log: Logger;
  events?: EventSink;
  /** Where the public addresses come from (tests give a fixed one); the configured services by default. */
  findAddresses?: (src: PublicIpSource) => Promise<PublicAddresses>;
}

const same = (a: string[], b: string[]) => a.length === b.length && a.every((v) => b.includes(v));

/**
 * The names whose address records are kept: every managed name, once, without wildcards (a wildcard record is
 * the operator's). A name asked for by DOMAINS or the API as well as a label is the operator's.
 */
export function upkeepNames(names: UpkeepName[]): UpkeepName[] {
  const byName = new Map<string, boolean>();
  for (const n of names) {
    if (n.name.startsWith('*.')) continue;
    const name = n.name.toLowerCase();
    byName.set(name, (byName.get(name) ?? true) && n.fromLabel);
  }
  return [...byName].sort(([a], [b]) => a.localeCompare(b)).map(([name, fromLabel]) => ({ name, fromLabel }));
}

export class DnsUpkeep {
  private names: UpkeepName[] = [];
  private saidNoV6 = false;
  /** Label names already warned about, so the warning comes once, not every DNS_UPKEEP_INTERVAL. */
  private readonly leftAlone = new Set<string>();
  private last: Promise<DnsUpkeepReport> | undefined;

  constructor(private readonly opts: DnsUpkeepOptions) {}

  /**
   * One run for `names` (every name of the wanted certificates), or without them for the names of the last
   * run. Runs never overlap: a call during a run starts after it.
   */
  run(names?: UpkeepName[]): Promise<DnsUpkeepReport> {
    if (names) this.names = upkeepNames(names);
    const list = this.names;
    const next = (this.last ?? Promise.resolve()).catch(() => undefined).then(() => this.once(list));
    this.last = next;
    return next;
  }

  private bookOf(): JsonBook<WrittenFile> {
    this.book ??= new JsonBook<WrittenFile>(this.opts.store, {
      path: 'dns-upkeep.json',
      empty: () => ({ version: 1, written: {} }),
      validate: (parsed) => {
        const f = parsed as WrittenFile;
        if (f?.version !== 1 || typeof f.written !== 'object' || f.written === null) throw new Error('not a version 1 DNS upkeep file');
        return f;
      },
      indent: 1,
      invalid: (shown, why) => why,
    });
    return this.book;
  }

  private book: JsonBook<WrittenFile> | undefined;

  private async readWritten(): Promise<WrittenFile> {
    const book = this.bookOf();
    try {
      return await book.load();
    } catch (e) {
      this.opts.log.warn({ action: 'dns-upkeep', error: (e as Error).message }, `DNS upkeep: ${book.shown} cannot be read (${(e as Error).message}); names only labels ask for are not moved until it can`);
      return { version: 1, written: {} };
    }
  }

  private async once(list: UpkeepName[]): Promise<DnsUpkeepReport> {
    const names = list.map((n) => n.name);
    const fromLabel = new Set(list.filter((n) => n.fromLabel).map((n) => n.name));
    const { log } = this.opts;
    const report: DnsUpkeepReport = { at: new Date().toISOString(), addresses: {}, changes: [], errors: [] };
    if (names.length === 0) return report;
    const found = await (this.opts.findAddresses ?? findPublicAddresses)(this.opts.source);
    report.addresses = { ...(found.v4 ? { v4: found.v4 } : {}), ...(found.v6 ? { v6: found.v6 } : {}) };
    for (const e of found.errors) {
      report.errors.push(`DNS upkeep: ${e}; A records are left as they are`);
      log.error({ action: 'dns-upkeep', error: e }, `DNS upkeep: ${e}; A records are left as they are`);
    }
    // Said once per change of mind, not every interval: a host without IPv6 is normal.
    if (found.noV6 && !this.saidNoV6) log.info({ action: 'dns-upkeep', detail: found.noV6 }, `DNS upkeep: ${found.noV6}; AAAA records are left as they are (PUBLIC_IPV6_URL=off stops asking)`);
    this.saidNoV6 = found.noV6 !== undefined;
    const wanted: [AddressType, string | undefined][] = [
      ['A', found.v4],
      ['AAAA', found.v6],
    ];
    if (!found.v4 && !found.v6) return report;
    let held;
    try {
      held = await this.opts.records.readAddresses(names);
    } catch (e) {
      const error = `DNS upkeep: cannot read the address records: ${(e as Error).message}`;
      report.errors.push(error);
      log.error({ action: 'dns-upkeep', error: (e as Error).message }, error);
      return report;
    }
    const state = await this.readWritten();
    for (const name of names) {
      const now = held.get(name);
      if (!now) continue;
      if (now.alias) {
        log.debug({ action: 'dns-upkeep', name }, `DNS upkeep: ${name} is a CNAME; left alone`);
        continue;
      }
      for (const [type, address] of wanted) {
        if (!address) continue;
        const from = now[type];
        if (same(from, [address])) continue;
        const ours = state.written[name]?.[type];
        if (fromLabel.has(name) && from.length > 0 && !(ours && same(from, ours))) {
          const key = `${name} ${type} ${from.join(',')}`;
          if (!this.leftAlone.has(key)) log.warn({ action: 'dns-upkeep', name, type, from }, `DNS upkeep: ${name} (asked for by a label only) has ${type} ${from.join(', ')}, which certwrangler did not write: left alone; list it in DOMAINS to have certwrangler keep it`);
          this.leftAlone.add(key);
          continue;
        }
        try {
          await this.opts.records.writeAddresses(name, type, [address]);
        } catch (e) {
          const error = `DNS upkeep: ${name}: cannot set ${type} to ${address}: ${(e as Error).message}`;
          report.errors.push(error);
          log.error({ action: 'dns-upkeep', name, type, error: (e as Error).message }, error);
          continue;
        }
        state.written[name] = { ...state.written[name], [type]: [address] };
        await this.bookOf().save(state).catch((e: Error) =>
          log.error({ action: 'dns-upkeep', error: e.message }, `DNS upkeep: cannot record ${name} ${type} in ${this.bookOf().shown}: ${e.message}`),
        );
        const change: DnsChange = { name, type, from, to: [address] };
        report.changes.push(change);
        log.info({ action: 'dns-upkeep', name, type, from, to: change.to }, `DNS upkeep: ${name} ${type} ${from.length ? from.join(', ') : '(none)'} → ${address}`);
        this.opts.events?.emit({ type: 'dns', name, names: [name], at: new Date().toISOString(), reason: 'DnsRecordChanged', dns: change });
      }
    }
    return report;
  }
}
