/**
 * Before the CA is asked to validate, the TXT record must be visible where the CA will look: at every
 * authoritative server of the zone, or at DNS_RESOLVERS when the operator names them (split horizon, a
 * test DNS). Asking too early costs a failed validation, which counts against Let's Encrypt's limits.
 */
import { Resolver } from 'node:dns/promises';

export interface LookupOptions {
  /** "ip" or "ip:port" servers to ask; undefined: the zone's authoritative servers. */
  resolvers: string[] | undefined;
  timeoutMs: number;
}

function resolver(servers: string[] | undefined): Resolver {
  const r = new Resolver({ timeout: 2000, tries: 2 });
  if (servers) r.setServers(servers);
  return r;
}

const NO_RECORD = new Set(['ENODATA', 'ENOTFOUND']);

/**
 * `_acme-challenge.<name>` may be a CNAME to a zone the provider can write (delegated validation): the
 * record is written at the end of the chain, where the CA's lookup ends too.
 */
export async function challengeTarget(fqdn: string, servers: string[] | undefined): Promise<string> {
  const r = resolver(servers);
  let name = fqdn;
  for (let hop = 0; hop < 10; hop++) {
    let target: string[];
    try {
      target = await r.resolveCname(name);
    } catch (e) {
      if (NO_RECORD.has((e as NodeJS.ErrnoException).code ?? '')) return name;
      throw new Error(`DNS: cannot look up a CNAME at ${name}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (target.length === 0) return name;
    name = target[0]!.replace(/\.$/, '').toLowerCase();
  }
  throw new Error(`DNS: more than 10 CNAMEs from ${fqdn}`);
}

/** The addresses of the authoritative servers of the zone holding `fqdn` (found by walking up to its SOA). */
export async function authoritativeServers(fqdn: string): Promise<string[]> {
  const r = resolver(undefined);
  const labels = fqdn.split('.');
  for (let i = 0; i < labels.length - 1; i++) {
    const zone = labels.slice(i).join('.');
    let ns: string[];
    try {
      await r.resolveSoa(zone);
      ns = await r.resolveNs(zone);
    } catch {
      continue;
    }
    const addresses = (await Promise.all(ns.map((h) => r.resolve4(h).catch(() => [] as string[])))).flat();
    if (addresses.length > 0) return addresses;
  }
  throw new Error(`DNS: no authoritative server found for ${fqdn}; set DNS_RESOLVERS`);
}

async function txtAt(server: string, fqdn: string): Promise<string[]> {
  try {
    return (await resolver([server]).resolveTxt(fqdn)).map((chunks) => chunks.join(''));
  } catch (e) {
    if (NO_RECORD.has((e as NodeJS.ErrnoException).code ?? '')) return [];
    throw e;
  }
}

/** Resolves once every server answers `value` among the TXT records of `fqdn`; throws after the deadline. */
export async function waitForTxt(fqdn: string, value: string, opts: LookupOptions, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))): Promise<void> {
  const servers = opts.resolvers ?? (await authoritativeServers(fqdn));
  const started = Date.now();
  let wait = 100;
  let missing = servers;
  let lastError = '';
  for (;;) {
    const seen = await Promise.all(
      missing.map((s) =>
        txtAt(s, fqdn).then(
          (values) => values.includes(value),
          (e: NodeJS.ErrnoException) => ((lastError = `${s}: ${e.code ?? e.message}`), false),
        ),
      ),
    );
    missing = missing.filter((_, i) => !seen[i]);
    if (missing.length === 0) return;
    if (Date.now() - started >= opts.timeoutMs) {
      throw new Error(`DNS: TXT ${fqdn} not visible at ${missing.join(', ')} after ${Math.round(opts.timeoutMs / 1000)} s (DNS_PROPAGATION_TIMEOUT)${lastError ? `; last error ${lastError}` : ''}`);
    }
    await sleep(wait);
    wait = Math.min(wait * 2, 2000);
  }
}
