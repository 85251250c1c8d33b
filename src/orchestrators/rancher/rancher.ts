/**
 * The `rancher` orchestrator (DESIGN §7, `specs/rancher-v1-api.md` §10): certificates are Rancher
 * certificate resources named after the certificate, so balancers can refer to them by name. One
 * paginated list per pass; create with POST, renew with PUT in place (same id, so balancers keep their
 * reference), never DELETE; then every balancer that serves the certificate runs its `update` action.
 * A reload that does not happen is state, not an error of the push: it is kept in the pending-reload
 * book (`reloads.ts`) and retried by `retryReloads` without a new order.
 * What certwrangler pushed carries a marker in `description`; anything else with a wanted name is left
 * alone unless ADOPT_EXISTING is on (the seed overwrote other CAs' certificates).
 */
import pLimit from 'p-limit';
import { ConfigError, parseDuration, parseInt, parseUrl, str, type Env } from '../../env.js';
import type { OrchestratorEntry } from '../registry.js';
import { parseCert } from '../../certs/parse.js';
import type { CertBundle } from '../../certs/store.js';
import type { Store } from '../../stores/store.js';
import type { CertInfo } from '../../certs/parse.js';
import type { DomainsOptions, ParsedDomains } from '../../domains.js';
import type { Logger } from '../../log.js';
import type { ListOptions, Orchestrator, PushOptions, PushResult, ReloadRetry, RemoteCopy, RemoveResult } from '../orchestrator.js';
import { RancherApi, RancherError, type RancherApiOptions, type SeenPage } from './api.js';
import { wantedFromLabels } from './labels.js';
import { isGone, parseCertificate, parseService, type CertificateResource, type ServiceResource } from './resources.js';
import { describePending, EVERY_BALANCER, ReloadBook, retryDelay, type PendingReload } from './reloads.js';

const OWNER_MARKER = 'managed by certwrangler';

// specs §3.3: the docs promise pages of up to 1000; the client must still follow `next`.
const PAGE = 'limit=1000';
// specs §4.5: janeczku polls a settling resource from 150 ms up to 2 s apart.
const SETTLE_FIRST_MS = 150;
const SETTLE_MAX_STEP_MS = 2000;
// A 409 means another process runs on the resource; after it settles we try again, a few times at most.
const CONFLICT_ATTEMPTS = 3;
// Balancer states in which a process is running (specs §5 `state`): its `update` action is not offered
// now but will be once the process ends, so the reload waits for a later pass. Any other state that is
// not active (inactive, deactivating, error…) needs an operator; it is logged, not retried.
const BUSY_STATES = new Set(['updating-active', 'activating', 'upgrading']);
// Write requests (POST, PUT) in flight at once: few enough not to queue Rancher's processes.
const WRITE_CONCURRENCY = 4;
// Certificates between their write and the end of their push (settle polling, balancer updates) at once. A
// push spends most of its time waiting for Rancher's process to settle (the first check comes after
// SETTLE_FIRST_MS, as the spec prescribes), and that wait used to hold one of the 4 write slots: 100 new
// placeholders took 25 rounds of ≥150 ms. The wait now holds only one of these. The spec sets no limit on
// resources transitioning at once; this bound is ours, so that a first pass of thousands of names polls
// a few dozen at a time, not all of them, through the API's 8 sockets (api.ts).
const PUSHES_IN_FLIGHT = 32;

export interface RancherOptions extends RancherApiOptions {
  hostsLabel: string;
  /** Read HOSTS_LABEL from services (the seed's DYNAMIC_CONFIG). */
  readLabels: boolean;
  domains: DomainsOptions;
  /** LABEL_STACKS is set: list the stacks too, so it may name them (a service carries only the stack's id). */
  listStacks?: boolean;
  /** How long a certificate or balancer may stay `transitioning: yes` (specs §4.5: janeczku caps it at 2 min). */
  settleTimeoutMs?: number;
  /** The STORE: pending balancer reloads are kept there, so a restart retries them. */
  store: Store;
  /** The pass's clock (tests, `--at`); pending reloads are timed with it. */
  now?: () => Date;
  log: Logger;
}

/** What became of one balancer's reload. */
type ReloadOutcome = { kind: 'done' } | { kind: 'pending'; reason: string } | { kind: 'skipped'; reason: string };

export function ownerDescription(fingerprintSha1: string): string {
  return `${OWNER_MARKER}; renewed in place before expiry; sha1 ${fingerprintSha1.slice(0, 23)}`;
}

function isOwned(c: CertificateResource): boolean {
  return c.description.startsWith(OWNER_MARKER);
}

/** What `list` took from one page: each certificate without its PEM, and its RemoteCopy when it was wanted. */
interface ListedPage extends SeenPage {
  certs: { c: CertificateResource; remote?: RemoteCopy }[];
  /** The PEMs of this page parsed (or kept from an earlier listing) because they were not the local copy's. */
  parsed: [string, CertInfo][];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RancherOrchestrator implements Orchestrator {
  readonly name = 'rancher';
  private readonly api: RancherApi;
  private readonly settleTimeoutMs: number;
  /** Certificates by name from the last list, so a push knows whether to POST or PUT, and where; without PEMs. */
  private known = new Map<string, CertificateResource>();
  /** What the last list parsed of PEMs that were not the local copy's (a foreign or another manager's copy), by id and fingerprint. */
  private parsedRemote = new Map<string, CertInfo>();
  /** The last listing's pages by URL: their digest and what was taken from each, so an unchanged page is not decoded. */
  private listedPages = new Map<string, ListedPage>();
  /** Balancers, read once per pass by the first push that needs them. */
  private balancers: Promise<ServiceResource[]> | undefined;
  private readonly writes = pLimit(WRITE_CONCURRENCY);
  private readonly pushes = pLimit(PUSHES_IN_FLIGHT);
  private readonly reloads: ReloadBook;
  /** One update action per balancer at a time: Rancher refuses a second while the first runs (409, specs §4.5). */
  private readonly balancerTurns = new Map<string, Promise<unknown>>();
  private readonly now: () => Date;

  constructor(private readonly opts: RancherOptions) {
    this.api = new RancherApi(opts);
    this.settleTimeoutMs = opts.settleTimeoutMs ?? 120_000;
    this.reloads = new ReloadBook(opts.store);
    this.now = opts.now ?? (() => new Date());
  }

  private async listCertificates(filter = ''): Promise<CertificateResource[]> {
    const items = await this.api.listAll(`certificates?${PAGE}&removed_null=1${filter}`);
    return items.map(parseCertificate).filter((c) => !isGone(c.state));
  }

  /**
   * One listing, read page by page (issue 22): of each certificate only what a push, a removal or the decision
   * needs is kept (no PEM, no key), and a PEM is parsed only when its certFingerprint is neither the local
   * copy's nor one parsed in an earlier pass. A page whose bytes are those of the last listing's page at its URL
   * is not decoded at all: what was taken from it then is taken again (a steady pass decodes no page), unless it
   * holds a certificate wanted now that was not then (its PEM was not looked at).
   */
  async list(names: string[], opts: ListOptions = {}): Promise<Map<string, RemoteCopy>> {
    const wanted = new Set(names);
    const known = new Map<string, CertificateResource>();
    const found = new Map<string, RemoteCopy>();
    const parsed = new Map<string, CertInfo>();
    const pages = new Map<string, ListedPage>();
    const reusable = (url: string) => {
      const page = this.listedPages.get(url);
      return page && page.certs.every((x) => x.remote !== undefined || !wanted.has(x.c.name)) ? page : undefined;
    };
    for await (const page of this.api.pagesSeen(`certificates?${PAGE}&removed_null=1`, reusable)) {
      let certs: ListedPage['certs'];
      let remembered: ListedPage['parsed'];
      if (page.items) {
        certs = [];
        remembered = [];
        for (const item of page.items) {
          const c = parseCertificate(item);
          if (isGone(c.state)) continue;
          let remote: RemoteCopy | undefined;
          if (wanted.has(c.name)) {
            const key = (fp: string) => `${c.id}\n${fp}`;
            const earlier = (fp: string) => {
              const info = this.parsedRemote.get(key(fp));
              if (info) remembered.push([key(fp), info]);
              return info;
            };
            remote = toRemote(c, (fp) => opts.sameAsLocal?.(c.name, fp) ?? earlier(fp), (fp, info) => remembered.push([key(fp), info]));
          }
          // Held until the next list: no PEM, and of the description only whether it is ours (all a push asks).
          certs.push({ c: { ...c, cert: null, description: isOwned(c) ? OWNER_MARKER : c.description }, ...(remote ? { remote } : {}) });
        }
      } else {
        ({ certs, parsed: remembered } = this.listedPages.get(page.url)!);
      }
      for (const [k, info] of remembered) parsed.set(k, info);
      pages.set(page.url, { digest: page.digest, next: page.next, certs, parsed: remembered });
      for (const { c, remote } of certs) {
        if (remote && wanted.has(c.name)) found.set(c.name, remote);
        known.set(c.name, c);
      }
    }
    this.known = known;
    // Only this listing's: a certificate replaced or gone is not remembered.
    this.parsedRemote = parsed;
    this.listedPages = pages;
    this.balancers = undefined;
    const out = new Map<string, RemoteCopy>();
    for (const name of names) out.set(name, found.get(name) ?? { state: 'absent' });
    return out;
  }

  async discover(): Promise<ParsedDomains> {
    if (!this.opts.readLabels) return { certs: [], refused: [] };
    const services = (await this.api.listAll(`services?${PAGE}&removed_null=1&system=false`)).map(parseService);
    const stacks = this.opts.listStacks ? new Map((await this.api.listAll(`stacks?${PAGE}`)).map((s) => [String((s as { id?: unknown }).id), String((s as { name?: unknown }).name)] as const)) : undefined;
    return wantedFromLabels(services, this.opts.hostsLabel, this.opts.domains, stacks);
  }

  push(bundle: CertBundle, opts: PushOptions): Promise<PushResult> {
    return this.pushes(() => this.write(bundle, opts));
  }

  private async write(bundle: CertBundle, opts: PushOptions): Promise<PushResult> {
    const info = parseCert(bundle.cert);
    const body = {
      name: bundle.name,
      description: ownerDescription(info.fingerprintSha1),
      cert: bundle.cert,
      // Intermediates only: a leaf in certChain makes balancers serve it twice (seed bug, tozny #13).
      certChain: bundle.chain.trim() === '' ? null : bundle.chain,
      key: bundle.key,
    };
    let existing = this.known.get(bundle.name);
    let written: CertificateResource | undefined;
    if (!existing) {
      try {
        written = parseCertificate(await this.writes(() => this.api.post(this.api.url('certificates'), body)));
      } catch (e) {
        // Someone created it between our list and our POST, or our own earlier POST timed out after
        // Rancher had stored it: look again and update that one in place.
        if (!(e instanceof RancherError && e.status === 422 && e.code === 'NotUnique')) throw e;
        existing = (await this.listCertificates(`&name=${encodeURIComponent(bundle.name)}`)).find((c) => c.name === bundle.name);
        if (!existing) throw e;
      }
    }
    if (existing) {
      if (!isOwned(existing) && !opts.adopt) {
        throw new RancherError(`Rancher certificate ${bundle.name} (${existing.id}) was not pushed by certwrangler; left alone (list it in ADOPT_EXISTING to take it over)`);
      }
      written = await this.put(existing, body);
    }
    const settled = await this.settle(written!, `certificate ${bundle.name}`);
    if (settled.certFingerprint && settled.certFingerprint !== info.fingerprintSha1) {
      throw new RancherError(`Rancher certificate ${bundle.name} (${settled.id}) holds fingerprint ${settled.certFingerprint} after the push, expected ${info.fingerprintSha1}`);
    }
    this.known.set(bundle.name, settled);
    // From here on the certificate is in Rancher: nothing a balancer does makes this push fail.
    const { reloaded, pending } = await this.updateBalancers(settled, info.fingerprintSha1);
    const entries = pending.map((p) => this.pendingEntry(settled, info.fingerprintSha1, p.lb, p.reason));
    // Whatever was pending for this certificate is settled by this push, which reloaded every balancer again.
    await this.reloads.replaceFor(settled.name, entries).catch((e: Error) => {
      this.opts.log.error({ cert: settled.name, error: e.message }, `${settled.name}: cannot record the pending balancer reloads in ${this.reloads.path}: ${e.message}; the next renewal reloads them`);
    });
    const via = reloaded.length > 0 ? `; balancers updated: ${reloaded.join(', ')}` : '';
    const pendingReloads = entries.map(describePending);
    const waiting = pendingReloads.length > 0 ? `; ${pendingReloads.join('; ')}` : '';
    return { target: `Rancher certificate ${bundle.name} (${settled.id})${via}${waiting}`, ...(pendingReloads.length > 0 ? { pendingReloads } : {}) };
  }

  private pendingEntry(cert: CertificateResource, fingerprint: string, lb: ServiceResource | undefined, reason: string): PendingReload {
    const now = this.now();
    return {
      cert: cert.name,
      certId: cert.id,
      balancerId: lb?.id ?? EVERY_BALANCER,
      balancerName: lb?.name ?? EVERY_BALANCER,
      self: lb?.self ?? '',
      fingerprint,
      reason,
      since: now.toISOString(),
      attempts: 1,
      nextAttempt: new Date(now.getTime() + retryDelay(1)).toISOString(),
    };
  }

  /** PUT to links.self; a 409 means a process is still running on it, so wait for it to settle and try again. */
  private async put(existing: CertificateResource, body: object): Promise<CertificateResource> {
    const what = `certificate ${existing.name}`;
    await this.settle(existing, what, true);
    for (let attempt = 1; ; attempt++) {
      try {
        return parseCertificate(await this.writes(() => this.api.put(existing.self, body)));
      } catch (e) {
        if (!(e instanceof RancherError && e.status === 409) || attempt >= CONFLICT_ATTEMPTS) throw e;
        await this.settle(parseCertificate(await this.api.get(existing.self)), what, true);
      }
    }
  }

  /**
   * Polls a certificate until `transitioning` is no longer `yes`. `error` is a failure carrying Rancher's
   * message, unless `tolerateError` (before a write, an old error is what the write is meant to clear).
   */
  private async settle(c: CertificateResource, what: string, tolerateError = false): Promise<CertificateResource> {
    const cur = c.transitioning === 'yes' ? parseCertificate(await this.waitSettled(c.self, `${what} (${c.id})`)) : c;
    if (cur.transitioning === 'error' && !tolerateError) {
      throw new RancherError(`Rancher ${what} (${c.id}) is in error: ${cur.transitioningMessage || 'no message'}`);
    }
    return cur;
  }

  /** Every balancer of the environment, whatever its state (a busy one must be seen to be retried). */
  /** The active balancers that reference the certificate named `name` (from this pass's listings). */
  private async balancersServing(name: string): Promise<{ cert: CertificateResource; lbs: ServiceResource[] } | undefined> {
    const cert = this.known.get(name);
    if (!cert) return undefined;
    this.balancers ??= this.listBalancers();
    return { cert, lbs: (await this.balancers).filter((b) => !isGone(b.state) && b.certificateIds.includes(cert.id)) };
  }

  /** VERIFY: each serving balancer's publicEndpoints. */
  async servingEndpoints(name: string): Promise<{ balancer: string; address: string }[]> {
    const found = await this.balancersServing(name);
    return (found?.lbs ?? []).flatMap((lb) => lb.publicEndpoints.map((address) => ({ balancer: `${lb.name} (${lb.id})`, address })));
  }

  /** VERIFY: the `update` action of each serving balancer once more. */
  async reloadAgain(name: string): Promise<string> {
    const found = await this.balancersServing(name);
    if (!found || found.lbs.length === 0) return 'no balancer references it';
    const fingerprint = found.cert.certFingerprint ?? '';
    const done: string[] = [];
    for (const lb of found.lbs) {
      const o = await this.reloadBalancer(lb, name, fingerprint);
      done.push(`${lb.name} (${lb.id}): ${o.kind === 'done' ? 'updated again' : o.reason}`);
    }
    return `balancer update action run again: ${done.join('; ')}`;
  }

  private async listBalancers(): Promise<ServiceResource[]> {
    return (await this.api.listAll(`loadbalancerservices?${PAGE}&removed_null=1`)).map(parseService);
  }

  /**
   * Runs the `update` action of every balancer that serves `cert`. Never throws: what did not reload is
   * returned as pending (retried later) and logged; a balancer that needs an operator is logged only.
   */
  private async updateBalancers(cert: CertificateResource, fingerprint: string): Promise<{ reloaded: string[]; pending: { lb: ServiceResource | undefined; reason: string }[] }> {
    this.balancers ??= this.listBalancers();
    let all: ServiceResource[];
    try {
      all = await this.balancers;
    } catch (e) {
      const reason = `balancers could not be listed: ${(e as Error).message}`;
      this.opts.log.warn({ cert: cert.name, reason: 'ReloadPending', error: reason }, `${cert.name}: certificate written to Rancher (${cert.id}), but ${reason}; their reload is retried later`);
      return { reloaded: [], pending: [{ lb: undefined, reason }] };
    }
    const reloaded: string[] = [];
    const pending: { lb: ServiceResource; reason: string }[] = [];
    for (const lb of all.filter((b) => !isGone(b.state) && b.certificateIds.includes(cert.id))) {
      const o = await this.reloadBalancer(lb, cert.name, fingerprint);
      if (o.kind === 'done') reloaded.push(`${lb.name} (${lb.id})`);
      if (o.kind === 'pending') pending.push({ lb, reason: o.reason });
    }
    return { reloaded, pending };
  }

  /** One balancer's `update` action, from its state as last read; logs what happened. */
  private async reloadBalancer(lb: ServiceResource, cert: string, fingerprint: string): Promise<ReloadOutcome> {
    const who = `balancer ${lb.name} (${lb.id})`;
    const fields = { cert, balancer: lb.id, state: lb.state };
    let outcome: ReloadOutcome;
    if (BUSY_STATES.has(lb.state)) {
      outcome = { kind: 'pending', reason: `balancer is ${lb.state}` };
    } else if (lb.state !== 'active') {
      outcome = { kind: 'skipped', reason: `${who} is ${lb.state || 'in no state'}: not reloaded and not retried; it serves the new certificate once it is activated` };
    } else if (!lb.updateAction) {
      outcome = { kind: 'skipped', reason: `${who} offers no update action in state ${lb.state}: not reloaded and not retried` };
    } else {
      const action = lb.updateAction;
      outcome = await this.inTurn(lb.id, async (): Promise<ReloadOutcome> => {
        try {
          const r = await this.api.post(action);
          const after = r.transitioning === 'yes' ? await this.waitSettled(lb.self, who) : r;
          if (after.transitioning === 'error') throw new RancherError(`Rancher ${who} is in error: ${String(after.transitioningMessage ?? 'no message')}`);
          return { kind: 'done' };
        } catch (e) {
          return { kind: 'pending', reason: `update action failed: ${(e as Error).message}` };
        }
      });
    }
    if (outcome.kind === 'done') this.opts.log.info(fields, `${who} updated for ${cert} (sha1 ${fingerprint.slice(0, 23)})`);
    else if (outcome.kind === 'pending') this.opts.log.warn({ ...fields, reason: 'ReloadPending', error: outcome.reason }, `${cert}: ${who} has not reloaded the new certificate (${outcome.reason}); retried later, without a new order`);
    else this.opts.log.warn({ ...fields, reason: 'BalancerInactive' }, `${cert}: ${outcome.reason}`);
    return outcome;
  }

  private inTurn<T>(balancerId: string, fn: () => Promise<T>): Promise<T> {
    const p = (this.balancerTurns.get(balancerId) ?? Promise.resolve()).then(fn, fn);
    const tail = p.catch(() => undefined);
    this.balancerTurns.set(balancerId, tail);
    void tail.then(() => {
      if (this.balancerTurns.get(balancerId) === tail) this.balancerTurns.delete(balancerId);
    });
    return p;
  }

  /**
   * The balancers that reference each certificate, as default or SNI certificate (lbConfig, or top level on a
   * v1 legacy balancer). Cattle itself refuses a DELETE only for the default one (specs §4.6), so a
   * certificate served by SNI alone is checked here, never left to the server.
   */
  async usedBy(names: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const ids = new Map(names.flatMap((n) => (this.known.has(n) ? [[this.known.get(n)!.id, n] as const] : [])));
    if (ids.size === 0) return out;
    for (const lb of (await this.listBalancers()).filter((b) => !isGone(b.state))) {
      for (const id of lb.certificateIds) {
        const name = ids.get(id);
        if (name !== undefined) out.set(name, [...(out.get(name) ?? []), `${lb.name} (${lb.id})`]);
      }
    }
    return out;
  }

  /** DELETE of a certificate certwrangler pushed and no balancer references (specs §4.6); never a foreign one. */
  async remove(name: string): Promise<RemoveResult> {
    const c = this.known.get(name) ?? (await this.listCertificates(`&name=${encodeURIComponent(name)}`)).find((x) => x.name === name);
    if (!c) return { removed: true, target: `Rancher certificate ${name}: not there any more` };
    if (!isOwned(c)) return { removed: false, why: `Rancher certificate ${name} (${c.id}) was not pushed by certwrangler: never removed` };
    // Read again now, not from the pass's start: a balancer may have been pointed at it since.
    this.known.set(name, c);
    const users = (await this.usedBy([name])).get(name) ?? [];
    if (users.length > 0) return { removed: false, why: `balancers still use Rancher certificate ${name} (${c.id}): ${users.join(', ')}; it is removed once none references it` };
    try {
      await this.api.delete(c.self);
    } catch (e) {
      if (e instanceof RancherError && e.status === 404) return { removed: true, target: `Rancher certificate ${name} (${c.id}): not there any more` };
      // 405: Cattle found a balancer using it after all (specs §4.6); kept, and asked again next pass.
      if (e instanceof RancherError && e.status === 405) return { removed: false, why: `Rancher refused to remove certificate ${name} (${c.id}): ${e.message}` };
      throw e;
    } finally {
      this.known.delete(name);
    }
    return { removed: true, target: `Rancher certificate ${name} (${c.id})` };
  }

  async nextReloadAt(): Promise<Date | undefined> {
    const times = (await this.reloads.all()).map((p) => Date.parse(p.nextAttempt));
    return times.length > 0 ? new Date(Math.min(...times)) : undefined;
  }

  async retryReloads(now: Date): Promise<ReloadRetry[]> {
    const due = (await this.reloads.all()).filter((p) => Date.parse(p.nextAttempt) <= now.getTime());
    if (due.length === 0) return [];
    const out: ReloadRetry[] = [];
    const drop: PendingReload[] = [];
    const update: PendingReload[] = [];
    const add: PendingReload[] = [];
    const later = (p: PendingReload, reason: string): PendingReload => ({ ...p, reason, attempts: p.attempts + 1, nextAttempt: new Date(now.getTime() + retryDelay(p.attempts + 1)).toISOString() });
    // What reloadBalancer does not log itself: the balancer could not be read, or needs no reload.
    const note = (r: { cert: string; balancer: string; ok: boolean; message: string }) => {
      out.push(r);
      if (r.ok) this.opts.log.info({ cert: r.cert, balancer: r.balancer }, `${r.cert}: ${r.message}`);
      else this.opts.log.warn({ cert: r.cert, balancer: r.balancer, reason: 'ReloadPending', error: r.message }, `${r.cert}: ${r.message}`);
    };
    // One listing for all the certificates whose balancers were not known, only when there are such.
    let listing: Promise<ServiceResource[]> | undefined;
    // One at a time: a handful of balancers, and Rancher runs each update as a process of its own.
    for (const p of due) {
      if (p.balancerId === EVERY_BALANCER) {
        let users: ServiceResource[];
        try {
          users = (await (listing ??= this.listBalancers())).filter((b) => !isGone(b.state) && b.certificateIds.includes(p.certId));
        } catch (e) {
          const reason = `balancers could not be listed: ${(e as Error).message}`;
          update.push(later(p, reason));
          note({ cert: p.cert, balancer: EVERY_BALANCER, ok: false, message: describePending({ ...p, reason }) });
          continue;
        }
        drop.push(p);
        for (const lb of users) {
          const o = await this.reloadBalancer(lb, p.cert, p.fingerprint);
          if (o.kind === 'pending') add.push(later({ ...p, balancerId: lb.id, balancerName: lb.name, self: lb.self }, o.reason));
          out.push(this.attempt(p.cert, lb, o));
        }
        continue;
      }
      let lb: ServiceResource;
      try {
        lb = parseService(await this.api.get(p.self));
      } catch (e) {
        if (e instanceof RancherError && e.status === 404) {
          drop.push(p);
          note({ cert: p.cert, balancer: `${p.balancerName} (${p.balancerId})`, ok: true, message: `balancer ${p.balancerName} (${p.balancerId}) is gone; nothing to reload` });
          continue;
        }
        const reason = `balancer could not be read: ${(e as Error).message}`;
        update.push(later(p, reason));
        note({ cert: p.cert, balancer: `${p.balancerName} (${p.balancerId})`, ok: false, message: describePending({ ...p, reason }) });
        continue;
      }
      if (isGone(lb.state) || !lb.certificateIds.includes(p.certId)) {
        drop.push(p);
        note({ cert: p.cert, balancer: `${lb.name} (${lb.id})`, ok: true, message: `balancer ${lb.name} (${lb.id}) ${isGone(lb.state) ? `is ${lb.state}` : `no longer serves ${p.cert}`}; nothing to reload` });
        continue;
      }
      const o = await this.reloadBalancer(lb, p.cert, p.fingerprint);
      if (o.kind === 'pending') update.push(later(p, o.reason));
      else drop.push(p);
      out.push(this.attempt(p.cert, lb, o));
    }
    await this.reloads.settle({ drop, update, add });
    return out;
  }

  private attempt(cert: string, lb: ServiceResource, o: ReloadOutcome): { cert: string; balancer: string; ok: boolean; message: string } {
    const balancer = `${lb.name} (${lb.id})`;
    if (o.kind === 'done') return { cert, balancer, ok: true, message: `balancer ${balancer} updated: it serves the new certificate` };
    if (o.kind === 'pending') return { cert, balancer, ok: false, message: describePending({ balancerId: lb.id, balancerName: lb.name, reason: o.reason }) };
    return { cert, balancer, ok: false, message: o.reason };
  }

  /** GETs `self` with backoff until its `transitioning` is no longer `yes`; certificates and balancers alike. */
  private async waitSettled(self: string, what: string): Promise<Record<string, unknown>> {
    const deadline = Date.now() + this.settleTimeoutMs;
    let step = SETTLE_FIRST_MS;
    for (;;) {
      await sleep(step);
      step = Math.min(step * 2, SETTLE_MAX_STEP_MS);
      const r = await this.api.get(self);
      if (r.transitioning !== 'yes') return r;
      if (Date.now() >= deadline) throw new RancherError(`Rancher ${what} still ${String(r.state ?? 'transitioning')} after ${this.settleTimeoutMs} ms`);
    }
  }
}

/**
 * What the decision tree sees. Dates and names come from the PEM, never from `expiresAt` (specs §4.3). A PEM
 * whose certFingerprint (Rancher computes it from the PEM it holds, §4.2) is already known is not parsed:
 * `knownInfo` gives what was parsed of it before, and `remember` keeps what is parsed now.
 */
function toRemote(c: CertificateResource, knownInfo: (fingerprintSha1: string) => CertInfo | undefined = () => undefined, remember: (fingerprintSha1: string, info: CertInfo) => void = () => undefined): RemoteCopy {
  const owned = isOwned(c);
  if (c.transitioning === 'error') return { state: 'unreadable', error: `Rancher reports an error: ${c.transitioningMessage || 'no message'}`, owned };
  if (!c.cert) return { state: 'unreadable', error: 'Rancher holds no cert PEM', owned };
  const fingerprint = c.certFingerprint?.toLowerCase();
  const held = fingerprint ? knownInfo(fingerprint) : undefined;
  if (held) return { state: 'present', info: held, owned };
  try {
    const info = parseCert(c.cert);
    if (fingerprint && fingerprint !== info.fingerprintSha1) {
      return { state: 'unreadable', error: `certFingerprint ${c.certFingerprint} does not match its PEM`, owned };
    }
    remember(info.fingerprintSha1, info);
    return { state: 'present', info, owned };
  } catch (e) {
    return { state: 'unreadable', error: `cert PEM: ${(e as Error).message}`, owned };
  }
}

/** The environment API key Rancher injects (CATTLE_*) and RANCHER_TIMEOUT; HOSTS_LABEL and DYNAMIC_CONFIG are core (Docker reads them too). */
export interface RancherEnv {
  url: string;
  accessKey: string;
  secretKey: string;
  /** Timeout of each Rancher API call (RANCHER_TIMEOUT; the seed's CONNECT_TIMEOUT). */
  timeoutMs: number;
}

/** RANCHER_TIMEOUT is a duration; the seed's CONNECT_TIMEOUT, read when it is absent, is whole seconds. */
function parseRancherTimeout(env: Env): number {
  if (str(env, 'RANCHER_TIMEOUT') === undefined && str(env, 'CONNECT_TIMEOUT') !== undefined) {
    return (parseInt(env, 'CONNECT_TIMEOUT', 1, 600) ?? 10) * 1000;
  }
  return parseDuration(env, 'RANCHER_TIMEOUT', 10_000, 100);
}

function fromEnv(env: Env): RancherEnv {
  const url = parseUrl(env, 'CATTLE_URL', '');
  const accessKey = str(env, 'CATTLE_ACCESS_KEY');
  const secretKey = str(env, 'CATTLE_SECRET_KEY');
  if (!accessKey) throw new ConfigError('CATTLE_ACCESS_KEY', '', 'the environment API access key (Rancher injects it for a service labelled io.rancher.container.create_agent=true, io.rancher.container.agent.role=environment)');
  if (!secretKey) throw new ConfigError('CATTLE_SECRET_KEY', '', 'the environment API secret key (injected by Rancher with CATTLE_ACCESS_KEY)', true);
  return { url, accessKey, secretKey, timeoutMs: parseRancherTimeout(env) };
}

export const rancher: OrchestratorEntry<RancherEnv> = {
  fromEnv,
  create: (options, { config, log, store, retryBaseMs, settleTimeoutMs, observe, now }) =>
    new RancherOrchestrator({
      ...options,
      ...(retryBaseMs !== undefined ? { retryBaseMs } : {}),
      ...(settleTimeoutMs !== undefined ? { settleTimeoutMs } : {}),
      ...(observe ? { observe } : {}),
      hostsLabel: config.hostsLabel,
      readLabels: config.readLabels,
      listStacks: config.labels.stacks !== undefined,
      domains: { dnsProvider: config.dns !== undefined, onePerName: config.domainsOnePerName, allowedSuffixes: config.allowedDomains },
      store,
      ...(now ? { now } : {}),
      log,
    }),
  // CATTLE_AGENT_INSTANCE_AUTH is never read, but Rancher injects it beside the key and it is as good as one.
  secrets: ['CATTLE_ACCESS_KEY', 'CATTLE_SECRET_KEY', 'CATTLE_AGENT_INSTANCE_AUTH'],
};
