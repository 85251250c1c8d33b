/**
 * The `rancher` orchestrator (DESIGN §7, `specs/rancher-v1-api.md` §10): certificates are Rancher
 * certificate resources named after the certificate, so balancers can refer to them by name. One
 * paginated list per pass; create with POST, renew with PUT in place (same id, so balancers keep their
 * reference), never DELETE; then every balancer that serves the certificate runs its `update` action.
 * What certwrangler pushed carries a marker in `description`; anything else with a wanted name is left
 * alone unless ADOPT_EXISTING is on (the seed overwrote other CAs' certificates).
 */
import pLimit from 'p-limit';
import { parseCert } from '../../certs/parse.js';
import type { CertBundle } from '../../certs/store.js';
import type { DomainsOptions, ParsedDomains } from '../../domains.js';
import type { Logger } from '../../log.js';
import type { Orchestrator, PushOptions, PushResult, RemoteCopy } from '../orchestrator.js';
import { RancherApi, RancherError, type RancherApiOptions } from './api.js';
import { wantedFromLabels } from './labels.js';
import { isGone, parseCertificate, parseService, type CertificateResource, type ServiceResource } from './resources.js';

const OWNER_MARKER = 'managed by certwrangler';

// specs §3.3: the docs promise pages of up to 1000; the client must still follow `next`.
const PAGE = 'limit=1000';
// specs §4.5: janeczku polls a settling resource from 150 ms up to 2 s apart.
const SETTLE_FIRST_MS = 150;
const SETTLE_MAX_STEP_MS = 2000;
// A 409 means another process runs on the resource; after it settles we try again, a few times at most.
const CONFLICT_ATTEMPTS = 3;
// Writes in flight at once: enough to push a first batch quickly, few enough not to queue Rancher's processes.
const WRITE_CONCURRENCY = 4;

export interface RancherOptions extends RancherApiOptions {
  hostsLabel: string;
  /** Read HOSTS_LABEL from services (the seed's DYNAMIC_CONFIG). */
  readLabels: boolean;
  domains: DomainsOptions;
  /** LABEL_STACKS is set: list the stacks too, so it may name them (a service carries only the stack's id). */
  listStacks?: boolean;
  /** How long a certificate or balancer may stay `transitioning: yes` (specs §4.5: janeczku caps it at 2 min). */
  settleTimeoutMs?: number;
  log: Logger;
}

export function ownerDescription(fingerprintSha1: string): string {
  return `${OWNER_MARKER}; renewed in place before expiry; sha1 ${fingerprintSha1.slice(0, 23)}`;
}

function isOwned(c: CertificateResource): boolean {
  return c.description.startsWith(OWNER_MARKER);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RancherOrchestrator implements Orchestrator {
  readonly name = 'rancher';
  private readonly api: RancherApi;
  private readonly settleTimeoutMs: number;
  /** Certificates by name from the last list, so a push knows whether to POST or PUT, and where. */
  private known = new Map<string, CertificateResource>();
  /** Balancers, read once per pass by the first push that needs them. */
  private balancers: Promise<ServiceResource[]> | undefined;
  private readonly writes = pLimit(WRITE_CONCURRENCY);

  constructor(private readonly opts: RancherOptions) {
    this.api = new RancherApi(opts);
    this.settleTimeoutMs = opts.settleTimeoutMs ?? 120_000;
  }

  private async listCertificates(filter = ''): Promise<CertificateResource[]> {
    const items = await this.api.listAll(`certificates?${PAGE}&removed_null=1${filter}`);
    return items.map(parseCertificate).filter((c) => !isGone(c.state));
  }

  async list(names: string[]): Promise<Map<string, RemoteCopy>> {
    const all = await this.listCertificates();
    this.known = new Map(all.map((c) => [c.name, c]));
    this.balancers = undefined;
    const out = new Map<string, RemoteCopy>();
    for (const name of names) {
      const c = this.known.get(name);
      out.set(name, c ? toRemote(c) : { state: 'absent' });
    }
    return out;
  }

  async discover(): Promise<ParsedDomains> {
    if (!this.opts.readLabels) return { certs: [], refused: [] };
    const services = (await this.api.listAll(`services?${PAGE}&removed_null=1&system=false`)).map(parseService);
    const stacks = this.opts.listStacks ? new Map((await this.api.listAll(`stacks?${PAGE}`)).map((s) => [String((s as { id?: unknown }).id), String((s as { name?: unknown }).name)] as const)) : undefined;
    return wantedFromLabels(services, this.opts.hostsLabel, this.opts.domains, stacks);
  }

  push(bundle: CertBundle, opts: PushOptions): Promise<PushResult> {
    return this.writes(() => this.write(bundle, opts));
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
        written = parseCertificate(await this.api.post(this.api.url('certificates'), body));
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
    const reloaded = await this.updateBalancers(settled);
    const via = reloaded.length > 0 ? `; balancers updated: ${reloaded.join(', ')}` : '';
    return { target: `Rancher certificate ${bundle.name} (${settled.id})${via}` };
  }

  /** PUT to links.self; a 409 means a process is still running on it, so wait for it to settle and try again. */
  private async put(existing: CertificateResource, body: object): Promise<CertificateResource> {
    const what = `certificate ${existing.name}`;
    await this.settle(existing, what, true);
    for (let attempt = 1; ; attempt++) {
      try {
        return parseCertificate(await this.api.put(existing.self, body));
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

  private async updateBalancers(cert: CertificateResource): Promise<string[]> {
    this.balancers ??= this.api
      .listAll(`loadbalancerservices?${PAGE}&removed_null=1&state=active`)
      .then((items) => items.map(parseService));
    const users = (await this.balancers).filter((lb) => !isGone(lb.state) && lb.certificateIds.includes(cert.id));
    const done: string[] = [];
    const problems: string[] = [];
    for (const lb of users) {
      if (!lb.updateAction) {
        problems.push(`balancer ${lb.name} (${lb.id}) offers no update action in state ${lb.state}`);
        continue;
      }
      try {
        const r = await this.api.post(lb.updateAction);
        const after = r.transitioning === 'yes' ? await this.waitSettled(lb.self, `balancer ${lb.name} (${lb.id})`) : r;
        if (after.transitioning === 'error') throw new RancherError(`Rancher balancer ${lb.name} (${lb.id}) is in error: ${String(after.transitioningMessage ?? '')}`);
        done.push(`${lb.name} (${lb.id})`);
        this.opts.log.info({ cert: cert.name, balancer: lb.id }, `balancer ${lb.name} (${lb.id}) updated for ${cert.name}`);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    if (problems.length > 0) {
      throw new RancherError(`certificate ${cert.name} (${cert.id}) is in Rancher, but ${problems.join('; ')}`);
    }
    return done;
  }
}

/** What the decision tree sees. Dates and names come from the PEM, never from `expiresAt` (specs §4.3). */
function toRemote(c: CertificateResource): RemoteCopy {
  const owned = isOwned(c);
  if (c.transitioning === 'error') return { state: 'unreadable', error: `Rancher reports an error: ${c.transitioningMessage || 'no message'}`, owned };
  if (!c.cert) return { state: 'unreadable', error: 'Rancher holds no cert PEM', owned };
  try {
    const info = parseCert(c.cert);
    if (c.certFingerprint && c.certFingerprint.toLowerCase() !== info.fingerprintSha1) {
      return { state: 'unreadable', error: `certFingerprint ${c.certFingerprint} does not match its PEM`, owned };
    }
    return { state: 'present', info, owned };
  } catch (e) {
    return { state: 'unreadable', error: `cert PEM: ${(e as Error).message}`, owned };
  }
}
