/**
 * DNS A/AAAA upkeep (issue 21 item 4, DNS_UPKEEP=true): every name certwrangler manages points at this
 * host's public address. A pass runs it for the names it wants, before any order, so a new name resolves
 * before HTTP-01 asks for it; the manager runs it again every DNS_UPKEEP_INTERVAL for the last pass's names.
 * Only A and AAAA records of those names are written, and only when they differ; a name that is a CNAME,
 * and a wildcard, are left alone; a family whose address is unknown is never removed.
 */
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

export interface DnsUpkeepOptions {
  records: AddressRecords;
  source: PublicIpSource;
  log: Logger;
  events?: EventSink;
  /** Where the public addresses come from (tests give a fixed one); the configured services by default. */
  findAddresses?: (src: PublicIpSource) => Promise<PublicAddresses>;
}

const same = (a: string[], b: string[]) => a.length === b.length && a.every((v) => b.includes(v));

/** The names whose address records are kept: every managed name, once, without wildcards (a wildcard record is the operator's). */
export function upkeepNames(names: string[]): string[] {
  return [...new Set(names.filter((n) => !n.startsWith('*.')).map((n) => n.toLowerCase()))].sort();
}

export class DnsUpkeep {
  private names: string[] = [];
  private saidNoV6 = false;
  private last: Promise<DnsUpkeepReport> | undefined;

  constructor(private readonly opts: DnsUpkeepOptions) {}

  /**
   * One run for `names` (every name of the wanted certificates), or without them for the names of the last
   * run. Runs never overlap: a call during a run starts after it.
   */
  run(names?: string[]): Promise<DnsUpkeepReport> {
    if (names) this.names = upkeepNames(names);
    const list = this.names;
    const next = (this.last ?? Promise.resolve()).catch(() => undefined).then(() => this.once(list));
    this.last = next;
    return next;
  }

  private async once(names: string[]): Promise<DnsUpkeepReport> {
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
        try {
          await this.opts.records.writeAddresses(name, type, [address]);
        } catch (e) {
          const error = `DNS upkeep: ${name}: cannot set ${type} to ${address}: ${(e as Error).message}`;
          report.errors.push(error);
          log.error({ action: 'dns-upkeep', name, type, error: (e as Error).message }, error);
          continue;
        }
        const change: DnsChange = { name, type, from, to: [address] };
        report.changes.push(change);
        log.info({ action: 'dns-upkeep', name, type, from, to: change.to }, `DNS upkeep: ${name} ${type} ${from.length ? from.join(', ') : '(none)'} → ${address}`);
        this.opts.events?.emit({ type: 'dns', name, names: [name], at: new Date().toISOString(), reason: 'DnsRecordChanged', dns: change });
      }
    }
    return report;
  }
}
