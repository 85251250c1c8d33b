/**
 * What a CA's directory says beyond acme-client's use of it: its `renewalInfo` URL (RFC 9773 §3) and the
 * profiles it offers (`meta.profiles`, draft-ietf-acme-profiles §3). Read once per directory and kept for an
 * hour: a daemon notices a CA that starts (or stops) offering either, without asking on every pass.
 */
import * as acme from 'acme-client';

const DIRECTORY_TTL_MS = 60 * 60_000;
// A directory that could not be read is not asked again for every certificate of the pass.
const FAILED_TTL_MS = 5 * 60_000;

/** A profile name as a directory's meta.profiles keys it; which ones exist is the CA's to say, at order time. */
export const PROFILE_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

export interface DirectoryFacts {
  renewalInfo?: string;
  /** Profile name → the CA's description (Let's Encrypt gives a URL); absent when the CA offers none. */
  profiles?: Record<string, string>;
}

export function directoryFacts(doc: unknown): DirectoryFacts {
  const d = (doc ?? {}) as { renewalInfo?: unknown; meta?: { profiles?: unknown } };
  const out: DirectoryFacts = {};
  if (typeof d.renewalInfo === 'string' && /^https?:\/\//.test(d.renewalInfo)) out.renewalInfo = d.renewalInfo.replace(/\/+$/, '');
  const p = d.meta?.profiles;
  if (p && typeof p === 'object' && !Array.isArray(p)) {
    const entries = Object.entries(p as Record<string, unknown>).filter(([k]) => PROFILE_NAME_RE.test(k));
    if (entries.length > 0) out.profiles = Object.fromEntries(entries.map(([k, v]) => [k, typeof v === 'string' ? v : '']));
  }
  return out;
}

export class DirectoryBook {
  private readonly cache = new Map<string, { at: number; facts: Promise<DirectoryFacts> }>();

  constructor(private readonly clock: () => number = Date.now) {}

  /** The facts of a directory; throws (and forgets the attempt) when it cannot be read. */
  facts(directoryUrl: string): Promise<DirectoryFacts> {
    const hit = this.cache.get(directoryUrl);
    if (hit && this.clock() - hit.at < DIRECTORY_TTL_MS) return hit.facts;
    // acme-client's axios: the transport's timeout and CA bundle apply, but not its retries (retryAttempt past
    // the limit): a CA that is down must not add seconds to every pass that only looks; orders retry themselves.
    const facts = acme.axios.get(directoryUrl, { retryAttempt: Number.MAX_SAFE_INTEGER } as Parameters<typeof acme.axios.get>[1]).then((r) => directoryFacts(r.data));
    this.cache.set(directoryUrl, { at: this.clock(), facts });
    facts.catch(() => this.cache.set(directoryUrl, { at: this.clock() - DIRECTORY_TTL_MS + FAILED_TTL_MS, facts }));
    return facts;
  }
}
