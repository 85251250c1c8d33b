/** Builds the manager's parts from the configuration. */
import type { Config } from './config.js';
import { LocalStore } from './certs/store.js';
import { AccountBook } from './acme/account.js';
import { WebrootSolver } from './acme/http01.js';
import { RedisTokenPublisher } from './webroot/token-source.js';
import { Dns01Solver } from './acme/dns01/solver.js';
import { createDnsProvider } from './acme/dns01/providers.js';
import { configureAcmeTransport, type RequestObservation } from './acme/transport.js';
import { FilesOrchestrator } from './orchestrators/files/files.js';
import { hookPaths } from './hook-paths.js';
import { Notifier } from './events/notifier.js';
import type { CertEvent } from './events/events.js';
import { RequestBook } from './requests.js';
import { Ledger } from './limits/ledger.js';
import { directoryId } from './acme/account.js';
import { createOrchestrator as createFromRegistry } from './orchestrators/registry.js';
import type { Orchestrator } from './orchestrators/orchestrator.js';
import type { Logger } from './log.js';
import type { DiscoverDeps } from './discover.js';
import { ClaimsBook } from './ownership.js';
import { ConfigError } from './env.js';
import { keepsAddresses } from './acme/dns01/provider.js';
import { DnsUpkeep } from './dns-upkeep/upkeep.js';
import { CaHealth } from './multica/ca-health.js';
import { DirectoryBook } from './acme/directory.js';
import { createStore } from './stores/registry.js';
import type { Store } from './stores/store.js';

export interface AssembleOptions {
  now?: () => Date;
  /** First retry delay of ACME and orchestrator calls (tests shorten it). */
  retryBaseMs?: number;
  settleTimeoutMs?: number;
  /** Told of every orchestrator API call (metrics). */
  observeOrchestrator?: (r: RequestObservation) => void;
  /** Told of every certificate event (the status page). */
  onEvent?: (e: CertEvent) => void;
  /** `plan`: nothing is written, not even the label claims. */
  dryRun?: boolean;
  /** The store, already opened (`openStore`: the CLI takes its lock before assembling); else one is opened here. */
  store?: Store;
}

/** The STORE the configuration names, built by its registry entry and ready (`init`): close it on exit. */
export async function openStore(config: Config, log: Logger): Promise<Store> {
  const store = createStore(config.store, config.storeOptions, { log });
  await store.init();
  return store;
}

export function createOrchestrator(config: Config, log: Logger, opts: AssembleOptions = {}): Orchestrator {
  return createFromRegistry(config.orchestrator, config.orchestratorOptions, {
    config,
    log,
    // Discovery alone (tests, `seed-mode`) needs no opened store: nothing is written until a push.
    store: opts.store ?? createStore(config.store, config.storeOptions, { log }),
    ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}),
    ...(opts.settleTimeoutMs !== undefined ? { settleTimeoutMs: opts.settleTimeoutMs } : {}),
    ...(opts.observeOrchestrator ? { observe: opts.observeOrchestrator } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
}

export interface Manager extends DiscoverDeps {
  solver: WebrootSolver;
  events: Notifier;
  requests: RequestBook;
}

/** Once at start: what the label settings let tenants do, where it may surprise an operator. */
function warnAboutLabels(config: Config, log: Logger): void {
  if (config.labels.allowedDomains.length === 0) {
    log.warn({ variable: 'LABEL_ALLOWED_DOMAINS' }, `labels are read and neither LABEL_ALLOWED_DOMAINS nor ALLOWED_DOMAINS is set: any tenant who may deploy a service may order any name with the ${config.hostsLabel} label`);
  }
  // An upgrade from a version that validated labels over DNS-01 would otherwise fail its renewals without a word.
  if (config.challenge === 'dns-01' && !config.labels.allowDns01) {
    log.warn({ variable: 'LABELS_ALLOW_DNS01' }, `CHALLENGE=dns-01, but certificates asked for by a label validate over HTTP-01 (through the webroot), and a label's wildcard or .challenge=dns-01 is refused: set LABELS_ALLOW_DNS01=true to let labels use the DNS provider's credentials`);
  }
}

export async function assemble(config: Config, log: Logger, opts: AssembleOptions = {}): Promise<Manager> {
  const bundlesByOrigin = Object.fromEntries(config.cas.filter((ca) => ca.caBundle).map((ca) => [new URL(ca.directoryUrl).origin, ca.caBundle!]));
  configureAcmeTransport({ timeoutMs: config.acmeTimeoutMs, ...(config.caBundle ? { caBundle: config.caBundle } : {}), bundlesByOrigin, ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}) });
  const backend = opts.store ?? (await openStore(config, log));
  const store = new LocalStore(backend);
  const orchestrator = createOrchestrator(config, log, { ...opts, store: backend });
  if (config.orchestrator !== 'files' && config.readLabels) warnAboutLabels(config, log);
  const filesTarget = orchestrator instanceof FilesOrchestrator ? orchestrator : orchestrator.files;
  const events = new Notifier({
    hookTimeoutMs: config.hookTimeoutMs,
    ...(config.onChangeCommand ? { onChangeCommand: config.onChangeCommand } : {}),
    ...(config.onFailureCommand ? { onFailureCommand: config.onFailureCommand } : {}),
    ...(config.webhook ? { webhook: config.webhook } : {}),
    // Hooks read the files a balancer reads: CERTS_DIR for `files` and `docker`, else the local store's copy on
    // STORE=files. Another store keeps no files on this host: the hook gets the names and no paths.
    pathsFor: (name) => hookPaths(store, filesTarget, name),
    log,
    ...(opts.onEvent ? { listeners: [opts.onEvent] } : {}),
  });
  const dnsProvider = config.dns ? createDnsProvider(config.dns, config.acmeTimeoutMs) : undefined;
  let dnsUpkeep: DnsUpkeep | undefined;
  if (config.dnsUpkeep && dnsProvider && !opts.dryRun) {
    if (!keepsAddresses(dnsProvider)) throw new ConfigError('DNS_PROVIDER', config.dns!.provider, 'cloudflare or rfc2136 with DNS_UPKEEP=true: only these can write A and AAAA records');
    dnsUpkeep = new DnsUpkeep({ records: dnsProvider, store: backend, source: config.dnsUpkeep.source, log, events });
  }
  const ledgers = new Map<string, Ledger>();
  const ledger = (directoryUrl: string) => {
    const id = directoryId(directoryUrl);
    let l = ledgers.get(id);
    if (!l) ledgers.set(id, (l = Ledger.forDirectory(backend, id, opts.now, config.newOrderBudget)));
    return l;
  };
  return {
    config,
    store,
    orchestrator,
    events,
    ledger,
    ...(config.cas.length > 1 ? { caHealth: new CaHealth(backend) } : {}),
    claims: new ClaimsBook(backend, opts.dryRun === true),
    requests: new RequestBook(backend, { dnsProvider: config.dns !== undefined, onePerName: false, allowedSuffixes: config.allowedDomains }, config.domains.certs),
    // Each listed CA its own binding (ACME_EAB_KID_<n>); any other directory (staging) ACME_EAB_KID's, as before.
    accounts: new AccountBook(backend, config.email, (url) => {
      const ca = config.cas.find((c) => c.directoryUrl === url);
      return ca ? ca.eab : config.eab;
    }),
    solver: new WebrootSolver(config.webrootDir, config.tokenRedis?.publish ? new RedisTokenPublisher(config.tokenRedis.connection) : undefined),
    directories: new DirectoryBook(),
    ...(config.dns && dnsProvider ? { dnsSolver: new Dns01Solver(dnsProvider, { resolvers: config.dns.resolvers, timeoutMs: config.dns.propagationTimeoutMs }) } : {}),
    ...(dnsUpkeep ? { dnsUpkeep } : {}),
    log,
    ...(opts.now ? { now: opts.now } : {}),
  };
}
