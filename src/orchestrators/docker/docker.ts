/**
 * The `docker` orchestrator (issue 21): a Docker host or a Swarm, through the Engine API. Services ask for
 * certificates with HOSTS_LABEL on containers and Swarm services (and, when DOCKER_READERS says so, with
 * Traefik's router rules or nginx-proxy's VIRTUAL_HOST); certificates go to CERTS_DIR in the files target's
 * layout (shared with the balancer by volume); labelled containers are reloaded once per pass that changed
 * anything; /events wakes the manager when a container or service starts, stops or changes.
 */
import type { CertBundle } from '../../certs/store.js';
import type { Store } from '../../stores/store.js';
import type { ParsedDomains } from '../../domains.js';
import type { Logger } from '../../log.js';
import type { RequestObservation } from '../../acme/transport.js';
import { FilesOrchestrator } from '../files/files.js';
import type { Orchestrator, PushOptions, PushResult, ReloadRetry, RemoteCopy, RemoveResult } from '../orchestrator.js';
import { createOutputs } from '../../outputs/config.js';
import type { Outputs } from '../../outputs/outputs.js';
import type { OrchestratorEntry } from '../registry.js';
import { DockerApi } from './api.js';
import { discoverDocker, type DiscoveryOptions } from './discovery.js';
import { dockerFromEnv, type DockerEnv } from './env.js';
import { EventWatcher } from './events.js';
import { DockerReloads } from './reloads.js';

export interface DockerOptions extends DockerEnv, DiscoveryOptions {
  /** Read HOSTS_LABEL and the readers at all (DYNAMIC_CONFIG). */
  readLabels: boolean;
  certsDir: string;
  /** The balancer-native files written beside CERTS_DIR (OUTPUTS, HAPROXY_RUNTIME_API), as the files target writes them. */
  outputs?: Outputs;
  /** The STORE: failed and pending reloads are kept there. */
  store: Store;
  execTimeoutMs: number;
  log: Logger;
  retryBaseMs?: number;
  observe?: (r: RequestObservation) => void;
  /** Event bursts are looked at after this settling time (tests shorten it). */
  eventSettleMs?: number;
}

export class DockerOrchestrator implements Orchestrator {
  readonly name = 'docker';
  /** The files target that writes CERTS_DIR; hooks and balancers read its paths. */
  readonly files: FilesOrchestrator;
  readonly api: DockerApi;
  private readonly reloads: DockerReloads;

  constructor(private readonly opts: DockerOptions) {
    this.files = new FilesOrchestrator({ certsDir: opts.certsDir, ...(opts.outputs ? { outputs: opts.outputs } : {}) });
    this.api = new DockerApi({ endpoint: opts.endpoint, hostText: opts.hostText, timeoutMs: opts.timeoutMs, ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}), ...(opts.observe ? { observe: opts.observe } : {}) });
    this.reloads = new DockerReloads({ api: this.api, store: opts.store, log: opts.log, execTimeoutMs: opts.execTimeoutMs, swarmReloadImage: opts.swarmReloadImage });
  }

  list(names: string[]): Promise<Map<string, RemoteCopy>> {
    return this.files.list(names);
  }

  async push(bundle: CertBundle, opts: PushOptions): Promise<PushResult> {
    const to = await this.files.push(bundle, opts);
    // Recorded before the pass ends, so a crash before the reloads still reloads at the next start.
    await this.reloads.changed(bundle.name).catch((e: Error) => this.opts.log.error({ cert: bundle.name, error: e.message }, `${bundle.name}: cannot record the container reload in ${this.reloads.path}: ${e.message}; the next renewal reloads them`));
    return to;
  }

  discover(): Promise<ParsedDomains> {
    if (!this.opts.readLabels) return Promise.resolve({ certs: [], refused: [] });
    return discoverDocker(this.api, this.opts);
  }

  /** Called once per pass after every push: this is where the pass's reloads happen, one per container. */
  async retryReloads(now: Date): Promise<ReloadRetry[]> {
    // The balancer files first (HAProxy's runtime API, the crt-list, Traefik's file), then the signals.
    const outputs = await this.files.retryReloads();
    return [...outputs, ...(await this.reloads.run(now))];
  }

  async nextReloadAt(): Promise<Date | undefined> {
    const at = [await this.files.nextReloadAt(), await this.reloads.nextAt()].filter((d): d is Date => d !== undefined);
    return at.length ? new Date(Math.min(...at.map((d) => d.getTime()))) : undefined;
  }

  /** VERIFY: the containers labelled for reload get their signal (or command) once more. */
  async reloadAgain(name: string): Promise<string> {
    await this.reloads.changed(name);
    const done = await this.reloads.run(new Date());
    return done.length ? done.map((d) => `${d.balancer}: ${d.ok ? 'reloaded' : 'failed'}: ${d.message}`).join('; ') : 'no container is labelled certwrangler.reload';
  }

  /** DECOMMISSION=remove: as the files target does it (the versions kept in its archive). */
  remove(name: string): Promise<RemoveResult> {
    return this.files.remove(name);
  }

  watch(onChange: (why: string) => void): () => void {
    if (!this.opts.readLabels) return () => undefined;
    const w = new EventWatcher({ api: this.api, log: this.opts.log, onChange, ...(this.opts.eventSettleMs !== undefined ? { settleMs: this.opts.eventSettleMs } : {}) });
    w.start();
    return () => w.stop();
  }
}

export const docker: OrchestratorEntry<DockerEnv> = {
  fromEnv: dockerFromEnv,
  create: (options, { config, log, store, retryBaseMs, observe, now }) =>
    new DockerOrchestrator({
      ...options,
      outputs: createOutputs(config.outputs, log, now),
      hostsLabel: config.hostsLabel,
      readLabels: config.readLabels,
      domains: { dnsProvider: config.dns !== undefined, onePerName: config.domainsOnePerName, allowedSuffixes: config.allowedDomains },
      certsDir: config.certsDir,
      store,
      execTimeoutMs: config.hookTimeoutMs,
      log,
      ...(retryBaseMs !== undefined ? { retryBaseMs } : {}),
      ...(observe ? { observe } : {}),
    }),
  // DOCKER_CERT_PATH names a folder holding a key, not a key: nothing here is a credential by itself.
  secrets: [],
};
