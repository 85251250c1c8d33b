/**
 * The network half of ARI (RFC 9773): for the certificate in place, ask its CA's renewalInfo for the window
 * when the last answer's Retry-After has passed, and keep the answer in the store. Part of `observe`: nothing
 * here decides. `plan` reads what is kept and asks nothing.
 */
import pLimit from 'p-limit';
import * as acme from 'acme-client';
import type { LocalCopy, LocalStore } from '../certs/store.js';
import { retryAfterMs } from '../retry.js';
import { afterFetch, ariCertId, ariInputOf, parseRenewalInfo, type AriInput, type AriState } from './ari.js';
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

// A daemon sees the same certificates every pass: the DER is taken apart once per certificate, not per pass.
const MEMO_LIMIT = 50_000;
const certIds = new Map<string, string | undefined>();

function certIdOf(local: LocalCopy): string | undefined {
  if (local.state !== 'present' || !local.meta.directoryUrl || local.info.selfSigned) return undefined;
  const pem = local.bundle.cert;
  if (certIds.has(pem)) return certIds.get(pem);
  let id: string | undefined;
  try {
    id = ariCertId(pem);
  } catch {
    id = undefined;
  }
  if (certIds.size >= MEMO_LIMIT) certIds.delete(certIds.keys().next().value!);
  certIds.set(pem, id);
  return id;
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

/**
 * The ARI facts of a certificate in place: the kept answer, refreshed first when `fetch` is set, its CA
 * offers renewalInfo, and the last answer's Retry-After (or failure backoff) has passed at `now`.
 */
export async function observeAri(deps: AriDeps, name: string, local: LocalCopy, now: Date, fetch: boolean): Promise<AriSeen> {
  const certId = certIdOf(local);
  if (!certId || local.state !== 'present') return {};
  // A pass that may act asks the directory first (once per pass): a CA without renewalInfo costs no file read.
  const facts = fetch && deps.directories ? await deps.directories.facts(local.meta.directoryUrl).catch(() => undefined) : undefined;
  // Known to offer none: nothing kept to read. Unreadable (the CA is down): the kept window still holds.
  if (facts && !facts.renewalInfo) return { certId };
  const kept = await deps.store.readAri(name);
  let state: AriState | undefined = kept?.certId === certId ? kept : undefined;
  if (facts?.renewalInfo && (!state || Date.parse(state.nextFetch) <= now.getTime())) {
    const got = await fetches(() => fetchWindow(facts.renewalInfo!, certId));
    state = afterFetch(state, certId, now, got);
    await deps.store.writeAri(name, state);
  }
  const input = ariInputOf(state, certId);
  return { certId, ...(input ? { input } : {}), ...(state ? { nextFetch: state.nextFetch } : {}), ...(state?.lastError ? { error: state.lastError } : {}) };
}
