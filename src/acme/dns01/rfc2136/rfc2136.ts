/**
 * Dynamic DNS UPDATE (RFC 2136) signed with TSIG, as BIND, Knot and PowerDNS accept it. Sent over TCP: an
 * UPDATE answer is never truncated there, and every server that takes updates listens on TCP too.
 */
import { connect } from 'node:net';
import { isIP } from '../../../ip.js';
import { randomInt } from 'node:crypto';
import { Resolver, lookup } from 'node:dns/promises';
import { canonicalIp, type AddressRecords, type AddressType, type DnsProvider, type NameAddresses } from '../provider.js';
import { addressUpdateMessage, parseAnswer, sign, updateMessage, verifyAnswer, type TsigKey, type TxtUpdate } from './message.js';

export interface Rfc2136Options {
  /** The primary server that takes updates. */
  host: string;
  port: number;
  /** The zone to update; undefined: the zone whose SOA the server answers for the name. */
  zone: string | undefined;
  ttl: number;
  /** undefined: unsigned updates (a server that allows them by address). */
  tsig: TsigKey | undefined;
  timeoutMs: number;
}

const RCODES: Record<number, string> = {
  1: 'FORMERR (the server could not read the update)',
  2: 'SERVFAIL (the server failed to apply it)',
  3: 'NXDOMAIN',
  4: 'NOTIMP (the server does not take dynamic updates)',
  5: 'REFUSED (the zone does not allow this key or address to update it: see allow-update / update-policy)',
  8: 'NXRRSET',
  9: 'NOTAUTH (the server is not authoritative for the zone, or refused the signature)',
  10: 'NOTZONE (the name is not inside the zone: check RFC2136_ZONE)',
};

/** RFC 8945 §5.2: why the server refused the TSIG signature. */
function tsigError(code: number): string {
  switch (code) {
    case 16:
      return 'BADSIG: RFC2136_TSIG_SECRET does not match the server\'s secret for this key';
    case 17:
      return 'BADKEY: the server has no key of this name and algorithm (check RFC2136_TSIG_KEY and RFC2136_TSIG_ALGORITHM)';
    case 18:
      return 'BADTIME: this machine\'s clock and the server\'s differ by more than 300 s';
    default:
      return `TSIG error ${code}`;
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** "No such record" answers of a lookup: the name or this type is not there. */
const NO_RECORD = ['ENODATA', 'ENOTFOUND'];

export class Rfc2136Provider implements DnsProvider, AddressRecords {
  readonly name = 'rfc2136';
  private readonly zones = new Map<string, string>();

  constructor(private readonly opts: Rfc2136Options) {}

  private get server(): string {
    return hostPort(this.opts.host, this.opts.port);
  }

  /** The closest enclosing zone the server answers an SOA for (walking up from the name). */
  /** A resolver asking the primary itself: what it holds, not what caches say. */
  private async resolver(): Promise<Resolver> {
    const r = new Resolver({ timeout: Math.min(this.opts.timeoutMs, 5000), tries: 2 });
    // A resolver takes addresses only; RFC2136_NAMESERVER may be a name (a compose service, ns1.example.com).
    const ip = isIP(this.opts.host) ? this.opts.host : (await lookup(this.opts.host)).address;
    r.setServers([hostPort(ip, this.opts.port)]);
    return r;
  }

  private async zoneOf(fqdn: string): Promise<string> {
    if (this.opts.zone) return this.opts.zone;
    const known = this.zones.get(fqdn);
    if (known) return known;
    const r = await this.resolver();
    const labels = fqdn.split('.');
    let lastError = '';
    for (let i = 0; i < labels.length - 1; i++) {
      const candidate = labels.slice(i).join('.');
      try {
        await r.resolveSoa(candidate);
        this.zones.set(fqdn, candidate);
        return candidate;
      } catch (e) {
        lastError = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      }
    }
    throw new Error(`RFC2136: ${this.server} is not authoritative for any zone above ${fqdn} (last answer ${lastError}); set RFC2136_ZONE or check RFC2136_NAMESERVER`);
  }

  private exchange(message: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.opts.host, port: this.opts.port });
      let got = Buffer.alloc(0);
      const fail = (why: string) => {
        socket.destroy();
        reject(new Error(`RFC2136: ${this.server}: ${why}`));
      };
      const timer = setTimeout(() => fail(`no answer within ${this.opts.timeoutMs} ms`), this.opts.timeoutMs);
      socket.on('connect', () => socket.write(Buffer.concat([Buffer.from([message.length >> 8, message.length & 0xff]), message])));
      socket.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
          clearTimeout(timer);
          socket.end();
          resolve(got.subarray(2, 2 + got.readUInt16BE(0)));
        }
      });
      socket.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        fail(e.code ?? e.message);
      });
      socket.on('close', () => {
        clearTimeout(timer);
        fail('the connection closed before an answer');
      });
    });
  }

  private async update(action: TxtUpdate['action'], fqdn: string, value: string): Promise<void> {
    const zone = await this.zoneOf(fqdn);
    const id = randomInt(0, 0x10000);
    await this.send(id, updateMessage({ id, zone, fqdn, value, action, ttl: this.opts.ttl }), `${action === 'add' ? 'adding' : 'deleting'} TXT ${fqdn} in zone ${zone}`);
  }

  /** Signs an UPDATE, sends it and checks the answer: its id, rcode, TSIG error and signature. */
  private async send(id: number, unsigned: Buffer, what: string): Promise<void> {
    const { signed, mac } = this.opts.tsig ? sign(unsigned, this.opts.tsig, Date.now()) : { signed: unsigned, mac: undefined };
    const raw = await this.exchange(signed);
    let answer: ReturnType<typeof parseAnswer>;
    try {
      answer = parseAnswer(raw);
    } catch (e) {
      throw new Error(`RFC2136: ${this.server}'s answer to ${what} cannot be read (${(e as Error).message}); is RFC2136_NAMESERVER a DNS server?`);
    }
    if (answer.id !== id) throw new Error(`RFC2136: ${this.server} answered another message (id ${answer.id}, sent ${id}) while ${what}`);
    if (answer.tsig && answer.tsig.fields.error !== 0) throw new Error(`RFC2136: ${this.server} refused ${what}: ${tsigError(answer.tsig.fields.error)}`);
    if (answer.rcode !== 0) throw new Error(`RFC2136: ${this.server} refused ${what}: ${RCODES[answer.rcode] ?? `rcode ${answer.rcode}`}`);
    if (this.opts.tsig && !verifyAnswer(raw, answer, this.opts.tsig, mac!)) {
      throw new Error(`RFC2136: ${this.server}'s answer to ${what} is not signed with RFC2136_TSIG_KEY; not trusting it`);
    }
  }

  async readAddresses(fqdns: string[]): Promise<Map<string, NameAddresses>> {
    const r = await this.resolver();
    const ask = async (q: Promise<string[]>) => {
      try {
        return await q;
      } catch (e) {
        if (NO_RECORD.includes((e as NodeJS.ErrnoException).code ?? '')) return [];
        throw new Error(`RFC2136: ${this.server} cannot be asked about ${fqdns.length === 1 ? fqdns[0] : 'the managed names'}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    };
    const out = new Map<string, NameAddresses>();
    for (const fqdn of fqdns) {
      const alias = (await ask(r.resolveCname(fqdn))).length > 0;
      // A CNAME's A and AAAA answers are its target's: not this name's records.
      out.set(fqdn, alias ? { A: [], AAAA: [], alias } : { A: await ask(r.resolve4(fqdn)), AAAA: (await ask(r.resolve6(fqdn))).map(canonicalIp), alias });
    }
    return out;
  }

  async writeAddresses(fqdn: string, type: AddressType, values: string[]): Promise<void> {
    const zone = await this.zoneOf(fqdn);
    const id = randomInt(0, 0x10000);
    await this.send(id, addressUpdateMessage({ id, zone, fqdn, type, values, ttl: this.opts.ttl }), `setting ${type} ${fqdn} to ${values.join(', ') || 'nothing'} in zone ${zone}`);
  }

  present(fqdn: string, value: string): Promise<void> {
    return this.update('add', fqdn, value);
  }

  cleanup(fqdn: string, value: string): Promise<void> {
    return this.update('delete', fqdn, value);
  }
}
