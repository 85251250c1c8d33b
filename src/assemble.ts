/** Builds the manager's parts from the configuration. */
import type { Config } from './config.js';
import { LocalStore } from './certs/store.js';
import { AccountBook } from './acme/account.js';
import { WebrootSolver } from './acme/http01.js';
import { configureAcmeTransport } from './acme/transport.js';
import { FilesOrchestrator } from './orchestrators/files/files.js';
import { RancherOrchestrator } from './orchestrators/rancher/rancher.js';
import type { Orchestrator } from './orchestrators/orchestrator.js';
import type { Logger } from './log.js';
import type { PassDeps } from './reconciler.js';

export interface AssembleOptions {
  now?: () => Date;
  /** First retry delay of ACME and orchestrator calls (tests shorten it). */
  retryBaseMs?: number;
  settleTimeoutMs?: number;
}

export function createOrchestrator(config: Config, log: Logger, opts: AssembleOptions = {}): Orchestrator {
  switch (config.orchestrator) {
    case 'files':
      return new FilesOrchestrator({ certsDir: config.certsDir, hookTimeoutMs: config.hookTimeoutMs, log, ...(config.onChangeCommand ? { onChangeCommand: config.onChangeCommand } : {}) });
    case 'rancher':
      return new RancherOrchestrator({
        ...config.cattle!,
        timeoutMs: config.orchestratorTimeoutMs,
        ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}),
        ...(opts.settleTimeoutMs !== undefined ? { settleTimeoutMs: opts.settleTimeoutMs } : {}),
        hostsLabel: config.hostsLabel,
        readLabels: config.readLabels,
        domains: { allowWildcard: config.challenge === 'dns-01', onePerName: config.domainsOnePerName, allowedSuffixes: config.allowedDomains },
        adoptExisting: config.adoptExisting,
        log,
      });
  }
}

export interface Manager extends PassDeps {
  solver: WebrootSolver;
}

export async function assemble(config: Config, log: Logger, opts: AssembleOptions = {}): Promise<Manager> {
  configureAcmeTransport({ timeoutMs: config.acmeTimeoutMs, ...(config.caBundle ? { caBundle: config.caBundle } : {}), ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}) });
  const store = new LocalStore(config.dataDir);
  await store.init();
  return {
    config,
    store,
    orchestrator: createOrchestrator(config, log, opts),
    accounts: new AccountBook(config.dataDir, config.email),
    solver: new WebrootSolver(config.webrootDir),
    log,
    ...(opts.now ? { now: opts.now } : {}),
  };
}
