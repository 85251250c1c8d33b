/**
 * Step 1 of a pass (DESIGN §2): the wanted certificates, from DOMAINS, the run-time request API and the
 * orchestrator's labels, with what was refused and why.
 */
import { mergeWanted, type RefusedCert, type WantedCert } from './domains.js';
import type { PassDeps } from './reconciler.js';

export interface Discovered {
  wanted: WantedCert[];
  refused: RefusedCert[];
  /** Problems of the pass as a whole (labels or requests could not be read). */
  errors: string[];
}

export async function discover(deps: PassDeps): Promise<Discovered> {
  const { domains } = deps.config;
  const errors: string[] = [];
  const requested = deps.requests ? await deps.requests.wanted().catch((e: Error) => (errors.push(e.message), { certs: [], refused: [] })) : { certs: [], refused: [] };
  try {
    const fromLabels = await deps.orchestrator.discover();
    return { wanted: mergeWanted([domains.certs, requested.certs, fromLabels.certs]), refused: [...domains.refused, ...fromLabels.refused, ...requested.refused], errors };
  } catch (e) {
    // Labels unreadable: go on with DOMAINS. Nothing is removed for a missing label, so a failed read loses nothing.
    errors.push(`cannot read labels from ${deps.orchestrator.name}: ${(e as Error).message}`);
    return { wanted: mergeWanted([domains.certs, requested.certs]), refused: [...domains.refused, ...requested.refused], errors };
  }
}

