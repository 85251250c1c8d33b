/**
 * ORCHESTRATOR → its registry entry. Each orchestrator lives in its own folder and reads its own variables;
 * adding one is a folder and a line here (its secrets join the withheld list by themselves).
 */
import type { Config } from '../config.js';
import type { Env } from '../env.js';
import type { Logger } from '../log.js';
import type { RequestObservation } from '../acme/transport.js';
import type { Orchestrator } from './orchestrator.js';
import { files } from './files/files.js';
import { rancher } from './rancher/rancher.js';

/** What an orchestrator is built with besides its own options: the core configuration and the manager's hooks. */
export interface OrchestratorContext {
  config: Config;
  log: Logger;
  /** First retry delay of API calls (tests shorten it). */
  retryBaseMs?: number;
  settleTimeoutMs?: number;
  /** Told of every API call (metrics). */
  observe?: (r: RequestObservation) => void;
  now?: () => Date;
}

/** One orchestrator's line in the registry: its own variables (a bad one is a ConfigError naming it), the adapter, its credentials. */
export interface OrchestratorEntry<Options> {
  fromEnv(env: Env): Options;
  create(options: Options, ctx: OrchestratorContext): Orchestrator;
  readonly secrets: readonly string[];
}

/** In the order error messages list them. */
export const ORCHESTRATOR_REGISTRY = {
  files,
  rancher,
} as const;

export type OrchestratorName = keyof typeof ORCHESTRATOR_REGISTRY;
export const ORCHESTRATORS = Object.keys(ORCHESTRATOR_REGISTRY) as OrchestratorName[];

type OptionsOf<K extends OrchestratorName> = ReturnType<(typeof ORCHESTRATOR_REGISTRY)[K]['fromEnv']>;

/** The chosen orchestrator's own options, as its entry read them. */
export type OrchestratorOptions = OptionsOf<OrchestratorName>;

function entry<K extends OrchestratorName>(name: K): OrchestratorEntry<OptionsOf<K>> {
  // TypeScript cannot follow a name to its own entry's option type through the lookup; the keys guarantee it.
  return ORCHESTRATOR_REGISTRY[name] as unknown as OrchestratorEntry<OptionsOf<K>>;
}

export function orchestratorFromEnv(name: OrchestratorName, env: Env): OrchestratorOptions {
  return entry(name).fromEnv(env);
}

/** `options` must be what `orchestratorFromEnv(name)` returned, as loadConfig keeps them together. */
export function createOrchestrator(name: OrchestratorName, options: OrchestratorOptions, ctx: OrchestratorContext): Orchestrator {
  return entry(name).create(options as OptionsOf<typeof name>, ctx);
}
