/** Builds the manager's parts from the configuration. */
import type { Config } from './config.js';
import { LocalStore } from './certs/store.js';
import { AccountBook } from './acme/account.js';
import { WebrootSolver } from './acme/http01.js';
import { configureAcmeTransport } from './acme/transport.js';
import { FilesOrchestrator } from './orchestrators/files/files.js';
import type { Orchestrator } from './orchestrators/orchestrator.js';
import type { Logger } from './log.js';
import type { PassDeps } from './reconciler.js';

export function createOrchestrator(config: Config, log: Logger): Orchestrator {
  switch (config.orchestrator) {
    case 'files':
      return new FilesOrchestrator({ certsDir: config.certsDir, hookTimeoutMs: config.hookTimeoutMs, log, ...(config.onChangeCommand ? { onChangeCommand: config.onChangeCommand } : {}) });
    case 'rancher':
      throw new Error('ORCHESTRATOR=rancher is not available in this build yet; use ORCHESTRATOR=files');
  }
}

export interface Manager extends PassDeps {
  solver: WebrootSolver;
}

export async function assemble(config: Config, log: Logger, opts: { now?: () => Date; retryBaseMs?: number } = {}): Promise<Manager> {
  configureAcmeTransport({ timeoutMs: config.acmeTimeoutMs, ...(config.caBundle ? { caBundle: config.caBundle } : {}), ...(opts.retryBaseMs !== undefined ? { retryBaseMs: opts.retryBaseMs } : {}) });
  const store = new LocalStore(config.dataDir);
  await store.init();
  return {
    config,
    store,
    orchestrator: createOrchestrator(config, log),
    accounts: new AccountBook(config.dataDir, config.email),
    solver: new WebrootSolver(config.webrootDir),
    log,
    ...(opts.now ? { now: opts.now } : {}),
  };
}
