/**
 * Step 1 of a pass (DESIGN §2): the wanted certificates, from DOMAINS, the run-time request API and the
 * orchestrator's labels, with what was refused and why. Labels are untrusted input (DESIGN §10): they go
 * through the label policy, then every source through ownership, so no source can widen, take or spend
 * what is another's.
 */
import type { ParsedDomains, RefusedCert, WantedCert } from './domains.js';
import { checkLabels } from './label-policy.js';
import { ClaimsBook, resolveOwnership, storeHasCopy } from './ownership.js';
import type { PassDeps } from './reconciler.js';
import { isFolderSafeName } from './certs/store.js';
import { CONTROL_CHARS } from './hooks.js';

export interface Discovered {
  wanted: WantedCert[];
  refused: RefusedCert[];
  /** Problems of the pass as a whole (labels or requests could not be read). */
  errors: string[];
}

/** The pass's parts, with the label claims book (`assemble` makes one; `plan` a read-only one). */
export interface DiscoverDeps extends PassDeps {
  claims?: ClaimsBook;
}

// What an event may carry of a label's text: the CA's own limit of names, and a few kilobytes of message.
const MAX_EVENT_NAMES = 100;
const MAX_EVENT_TEXT = 4096;
// The controls hooks strip, shown as "?" so the refusal still says where the tenant put one.
const clean = (s: string) => s.replace(/[\n\t]/g, ' ').replace(CONTROL_CHARS, '?').slice(0, MAX_EVENT_TEXT);

export async function discover(deps: DiscoverDeps): Promise<Discovered> {
  const { config } = deps;
  const errors: string[] = [];
  const none: ParsedDomains = { certs: [], refused: [] };
  const requested = deps.requests ? await deps.requests.wanted().catch((e: Error) => (errors.push(e.message), none)) : none;
  let fromLabels: ParsedDomains | undefined;
  try {
    fromLabels = await deps.orchestrator.discover();
  } catch (e) {
    // Labels unreadable: go on with DOMAINS. Nothing is removed for a missing label, so a failed read loses nothing.
    errors.push(`cannot read labels from ${deps.orchestrator.name}: ${(e as Error).message}`);
  }
  // Parts made without `assemble` (tests, benchmarks) read and keep the claims all the same: the file is the truth.
  const book = deps.claims ?? new ClaimsBook(deps.store.backend);
  const claims = await book.load().catch((e: Error) => {
    // Without the claims, owners could change: labels wait until the file is fixed; DOMAINS and the API go on.
    if (fromLabels) errors.push(e.message);
    fromLabels = undefined;
    return { version: 1 as const, claims: {}, newSets: {} };
  });
  const checked = fromLabels ? checkLabels(fromLabels.certs, config.labels) : undefined;
  const owned = await resolveOwnership({
    domains: config.domains.certs,
    api: requested.certs,
    labels: checked?.certs,
    claims,
    now: deps.now?.() ?? new Date(),
    maxNewPerDay: config.labels.maxNewPerDay,
    hasCopy: (name, names) => storeHasCopy(deps.store, name, names),
  });
  let wanted = owned.wanted;
  const refused = [...config.domains.refused, ...requested.refused, ...(fromLabels?.refused ?? []), ...(checked?.refused ?? []), ...owned.refused];
  if (owned.changed) {
    try {
      await book.save(owned.claims);
    } catch (e) {
      // A new name set not recorded would not count against LABEL_MAX_NEW_PER_DAY: none is taken this pass.
      const why = `cannot record label claims in ${book.path}: ${(e as Error).message}`;
      errors.push(why);
      refused.push(...wanted.filter((w) => owned.newSets.has(w.name)).map((w) => ({ spec: w.names.join(','), source: w.sources[0] ?? 'label', error: `not taken: ${why}` })));
      wanted = wanted.filter((w) => !owned.newSets.has(w.name));
    }
  }
  if (deps.events && !book.readOnly) {
    const at = new Date().toISOString();
    for (const r of book.fresh(refused)) {
      // A label's text is a tenant's: no control character (a NUL makes spawn throw) and a bounded size reach
      // hooks and webhooks, and the event's name is one a folder may have (hooks are given its paths).
      const names = clean(r.spec).split(/[,;]/).map((n) => n.trim()).filter((n) => n !== '').slice(0, MAX_EVENT_NAMES);
      const first = names[0]?.replace(/^\*\./, '_.');
      const name = first !== undefined && isFolderSafeName(first) ? first : 'refused';
      deps.events.emit({ type: 'refused', name, names, at, reason: 'Refused', error: clean(`${r.source}: ${r.error}`), ...(r.service ? { service: clean(r.service) } : {}) });
    }
  }
  return { wanted, refused, errors };
}
