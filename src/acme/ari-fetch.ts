/**
 * The network half of ARI (RFC 9773): for the certificate in place, ask its CA's renewalInfo for the window
 * when the last answer's Retry-After has passed, and keep the answer in the store. Part of `observe`: nothing
 * here decides. `plan` reads what is kept and asks nothing.
 */
import pLimit from 'p-limit';
import * as acme from 'acme-client';
import type { LocalStore } from '../certs/store.js';
import { retryAfterMs } from '../retry.js';
import { afterFetch, ariInputOf, parseRenewalInfo, type AriInput, type AriState } from './ari.js';
import type { DirectoryBook } from './directory.js';

// renewalInfo requests at once: a fleet of 1,000 whose Retry-After ends together must not open 1,000 sockets.
const ARI_FETCH_CONCURRENCY = 16;
const fetches = pLimit(ARI_FETCH_CONCURRENCY);

export interface AriDeps {
  store: LocalStore;
  directories?: DirectoryBook;
}

export interface AriSeen {
  input?: AriInput;
  /** When the kept answer says to ask again (the manager wakes for it). */
  nextFetch?: string;
  /** The CertID of the certificate in place: what a renewal's `replaces` names (RFC 9773 §5). */
  certId?: string;
  /** The last fetch failed: why (the kept window, if any, still holds). */
  error?: string;
}

async function fetchWindow(renewalInfo: string, certId: string): Promise<Parameters<typeof afterFetch>[3]> {
  try {
    const r = await acme.axios.get(`${renewalInfo}/${certId}`, { validateStatus: (s) => s === 200 });
    return { window: parseRenewalInfo(r.data), retryAfterMs: retryAfterMs(r.headers['retry-after'], Date.now()) };
  } catch (e) {
    const err = e as Error & { response?: { status?: number } };
    return { error: err.response?.status ? `renewalInfo answered HTTP ${err.response.status}` : err.message };
  }
}

/** What the local store's index holds for ARI: the certificate in place (its CertID, its CA) and ari.json as kept. */
export interface AriHeld {
  certId?: string;
  directoryUrl?: string;
  kept?: AriState;
}

/**
 * The ARI facts of a certificate in place: the kept answer, refreshed first when `fetch` is set, its CA
 * offers renewalInfo, and the last answer's Retry-After (or failure backoff) has passed at `now`. `written`:
 * the answer this call kept in the store (issue 22: the index holds it as written instead of reading it back).
 */
export async function observeAri(deps: AriDeps, name: string, held: AriHeld, now: Date, fetch: boolean): Promise<AriSeen & { written?: AriState }> {
  const { certId, directoryUrl } = held;
  if (!certId || !directoryUrl) return {};
  // A pass that may act asks the directory first (once per pass): a CA without renewalInfo costs no file read.
  const facts = fetch && deps.directories ? await deps.directories.facts(directoryUrl).catch(() => undefined) : undefined;
  // Known to offer none: nothing kept to read. Unreadable (the CA is down): the kept window still holds.
  if (facts && !facts.renewalInfo) return { certId };
  let state: AriState | undefined = held.kept?.certId === certId ? held.kept : undefined;
  let written: AriState | undefined;
  if (facts?.renewalInfo && (!state || Date.parse(state.nextFetch) <= now.getTime())) {
    const got = await fetches(() => fetchWindow(facts.renewalInfo!, certId));
    state = afterFetch(state, certId, now, got);
    await deps.store.writeAri(name, state);
    written = state;
  }
  const input = ariInputOf(state, certId);
  return { certId, ...(input ? { input } : {}), ...(state ? { nextFetch: state.nextFetch } : {}), ...(state?.lastError ? { error: state.lastError } : {}), ...(written ? { written } : {}) };
}
