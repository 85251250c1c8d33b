/**
 * A real BIND (Debian bind9's `named`) on a free loopback port, authoritative for the zones given, each
 * open to dynamic updates signed with one TSIG key made here. Every name in a zone has an A record for
 * 127.0.0.1 (a wildcard), so Pebble resolving through this server reaches the test's webroot for HTTP-01.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import { freePort } from './ports.js';

export interface Bind {
  /** "127.0.0.1:<port>": what Pebble's -dnsserver, DNS_RESOLVERS and RFC2136_NAMESERVER point at. */
  address: string;
  port: number;
  /** The first of `keys`. */
  key: BindKey;
  keys: BindKey[];
  /** The TXT values of `fqdn` as the server answers them now. */
  txt(fqdn: string): Promise<string[]>;
  /** The zone's update journal as `named-journalprint` shows it: one "add …" or "del …" line per change. */
  journal(zone: string): string[];
  stop(): Promise<void>;
}

export interface BindKey {
  name: string;
  algorithm: string;
  /** base64 */
  secret: string;
}

export interface BindOptions {
  dir: string;
  zones: string[];
  /** One key per algorithm, each allowed to update every zone; hmac-sha256 when not given. */
  algorithms?: string[];
  /** More records for every zone, in zone-file syntax relative to its origin (e.g. "bad IN A 127.0.0.2"). */
  records?: string[];
  /** `false`: no `*` record, so a name not listed in `records` is NXDOMAIN. */
  wildcard?: boolean;
}

function zoneFile(zone: string, records: string[], wildcard: boolean): string {
  return [
    '$TTL 60',
    `@ IN SOA ns.${zone}. hostmaster.${zone}. 1 3600 600 86400 60`,
    `@ IN NS ns.${zone}.`,
    'ns IN A 127.0.0.1',
    '@ IN A 127.0.0.1',
    ...(wildcard ? ['* IN A 127.0.0.1'] : []),
    ...records,
    '',
  ].join('\n');
}

export async function startBind(opts: BindOptions): Promise<Bind> {
  mkdirSync(opts.dir, { recursive: true });
  const port = await freePort();
  const keys = (opts.algorithms ?? ['hmac-sha256']).map((algorithm) => ({ name: `cw-${algorithm}`, algorithm, secret: randomBytes(32).toString('base64') }));
  const allowed = keys.map((k) => `key "${k.name}";`).join(' ');
  const conf = [
    'options {',
    `  directory "${opts.dir}";`,
    `  pid-file "${join(opts.dir, 'named.pid')}";`,
    `  listen-on port ${port} { 127.0.0.1; };`,
    '  listen-on-v6 { none; };',
    '  recursion no;',
    '  dnssec-validation no;',
    '  notify no;',
    '  allow-query { any; };',
    '};',
    'controls { };',
    ...keys.map((k) => `key "${k.name}" { algorithm ${k.algorithm}; secret "${k.secret}"; };`),
    ...opts.zones.map((z) => {
      writeFileSync(join(opts.dir, `${z}.db`), zoneFile(z, opts.records ?? [], opts.wildcard ?? true));
      return `zone "${z}" { type primary; file "${join(opts.dir, `${z}.db`)}"; allow-update { ${allowed} }; };`;
    }),
    '',
  ].join('\n');
  const confPath = join(opts.dir, 'named.conf');
  writeFileSync(confPath, conf);
  let output = '';
  const named: ChildProcess = spawn('named', ['-g', '-n', '1', '-c', confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  named.stdout!.on('data', (b: Buffer) => (output += b));
  named.stderr!.on('data', (b: Buffer) => (output += b));
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  const stop = () =>
    new Promise<void>((resolve) => {
      if (named.exitCode !== null || named.signalCode !== null) return resolve();
      named.once('exit', () => resolve());
      named.kill('SIGTERM');
      setTimeout(() => named.kill('SIGKILL'), 3000).unref();
    });
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await resolver.resolveSoa(opts.zones[0]!);
      break;
    } catch {
      /* not up yet */
    }
    if (named.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`named did not start: ${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    address: `127.0.0.1:${port}`,
    port,
    key: keys[0]!,
    keys,
    txt: async (fqdn) => {
      try {
        return (await resolver.resolveTxt(fqdn)).map((c) => c.join(''));
      } catch (e) {
        if (['ENODATA', 'ENOTFOUND'].includes((e as NodeJS.ErrnoException).code ?? '')) return [];
        throw e;
      }
    },
    journal: (zone) => {
      const path = join(opts.dir, `${zone}.db.jnl`);
      if (!existsSync(path)) return [];
      return execFileSync('named-journalprint', [path], { encoding: 'utf8' }).split('\n').filter((l) => /^(add|del) /.test(l) && !/ SOA /.test(l));
    },
    stop,
  };
}
