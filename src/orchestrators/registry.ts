/**
 * ORCHESTRATOR → its registry entry (src/adapters.ts). Each orchestrator lives in its own folder and reads its
 * own variables; adding one is a folder and a line here.
 */
import { createOf, fromEnvOf, namesOf, type AdapterEntry, type OptionsOf } from '../adapters.js';
import type { Config } from '../config.js';
import type { Env } from '../env.js';
import type { Logger } from '../log.js';
import type { RequestObservation } from '../acme/transport.js';
import type { Orchestrator } from './orchestrator.js';
import type { Store } from '../stores/store.js';
import { files } from './files/files.js';
import { rancher } from './rancher/rancher.js';
import { docker } from './docker/docker.js';

/** What an orchestrator is built with besides its own options: the core configuration and the manager's hooks. */
export interface OrchestratorContext {
  config: Config;
  log: Logger;
  /** The STORE: an orchestrator's own books (pending reloads) are kept there. */
  store: Store;
  /** First retry delay of API calls (tests shorten it). */
  retryBaseMs?: number;
  settleTimeoutMs?: number;
  /** Told of every API call (metrics). */
  observe?: (r: RequestObservation) => void;
  now?: () => Date;
}

export type OrchestratorEntry<Options> = AdapterEntry<Options, Orchestrator, OrchestratorContext>;

export const ORCHESTRATOR_REGISTRY = { files, rancher, docker };

export type OrchestratorName = keyof typeof ORCHESTRATOR_REGISTRY;
export const ORCHESTRATORS = namesOf(ORCHESTRATOR_REGISTRY);

/** The chosen orchestrator's own options, as its entry read them. */
export type OrchestratorOptions = OptionsOf<typeof ORCHESTRATOR_REGISTRY, OrchestratorName>;

export function orchestratorFromEnv(name: OrchestratorName, env: Env): OrchestratorOptions {
  return fromEnvOf(ORCHESTRATOR_REGISTRY, name, env);
}

/** `options` are what `orchestratorFromEnv(name)` returned: loadConfig keeps the two together. */
export function createOrchestrator(name: OrchestratorName, options: OrchestratorOptions, context: OrchestratorContext): Orchestrator {
  return createOf(ORCHESTRATOR_REGISTRY, name, options, context);
}
