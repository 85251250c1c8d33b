/**
 * ACME Renewal Information (RFC 9773): the CA says when each of its certificates should be renewed. Let's
 * Encrypt moves these windows forward when it must revoke (its 2026 drill moved about 3 million), and only
 * clients that read them react. This module names a certificate the way ARI does (§4.1), reads and checks a
 * RenewalInfo answer (§4.2), picks the renewal moment inside the window, and says when to ask again (§4.3).
 */
import { authorityKeyId, pemToDer, tbsParts } from '../certs/der.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// RFC 9773 §4.3: clients should treat a Retry-After under a minute as a minute and over a day as a day.
export const ARI_RETRY_AFTER_MIN_MS = MINUTE;
export const ARI_RETRY_AFTER_MAX_MS = DAY;
// Without a Retry-After: six hours, what Let's Encrypt (Boulder) sends.
export const ARI_DEFAULT_RETRY_MS = 6 * HOUR;
// RFC 9773 §4.3.3: on a network failure or a malformed answer, retry with a backoff: 15 min doubling to a day.
export const ARI_BACKOFF_FIRST_MS = 15 * MINUTE;

const b64url = (b: Buffer) => b.toString('base64url');

/**
 * RFC 9773 §4.1: base64url (unpadded) of the Authority Key Identifier's keyIdentifier, ".", base64url of the
 * serial's DER content bytes. undefined for a certificate without an AKI (self-signed placeholders).
 */
export function ariCertId(certPemOrDer: string | Buffer): string | undefined {
  const der = typeof certPemOrDer === 'string' ? pemToDer(certPemOrDer) : certPemOrDer;
  const parts = tbsParts(der);
  const aki = authorityKeyId(parts);
  return aki ? `${b64url(aki)}.${b64url(parts.serial)}` : undefined;
}

/** A suggested renewal window (RFC 9773 §4.2). */
export interface AriWindow {
  start: Date;
  end: Date;
  /** A page where the CA says why (e.g. an incident report). */
  explanationURL?: string;
}

/** Reads a RenewalInfo object; throws naming what is wrong (a malformed answer is a failure, §4.3.3). */
export function parseRenewalInfo(body: unknown): AriWindow {
  const o = (body ?? {}) as { suggestedWindow?: { start?: unknown; end?: unknown }; explanationURL?: unknown };
  const w = o.suggestedWindow;
  const start = typeof w?.start === 'string' ? new Date(w.start) : undefined;
  const end = typeof w?.end === 'string' ? new Date(w.end) : undefined;
  if (!start || !end || Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) throw new Error('renewalInfo: suggestedWindow.start and .end must be RFC 3339 times');
  // §4.2: "end" must be after "start"; a window that is not is invalid and is ignored.
  if (end <= start) throw new Error(`renewalInfo: suggestedWindow ends (${end.toISOString()}) before it starts (${start.toISOString()})`);
  const explanationURL = typeof o.explanationURL === 'string' && /^https?:\/\//.test(o.explanationURL) ? o.explanationURL : undefined;
  return { start, end, ...(explanationURL ? { explanationURL } : {}) };
}

/** RFC 9773 §4.2: a uniformly random moment inside the window, so a CA's many clients spread out. */
export function momentInWindow(w: { start: Date; end: Date }, random: () => number = Math.random): Date {
  return new Date(w.start.getTime() + Math.floor(random() * (w.end.getTime() - w.start.getTime())));
}

/** When to ask again after an answer: its Retry-After, held to [a minute, a day] (§4.3). */
export function nextFetchAfter(now: Date, retryAfterMs: number | undefined): Date {
  const wait = Math.min(Math.max(retryAfterMs ?? ARI_DEFAULT_RETRY_MS, ARI_RETRY_AFTER_MIN_MS), ARI_RETRY_AFTER_MAX_MS);
  return new Date(now.getTime() + wait);
}

/** When to ask again after `failures` failed fetches in a row (§4.3.3). */
export function fetchBackoff(now: Date, failures: number): Date {
  return new Date(now.getTime() + Math.min(ARI_BACKOFF_FIRST_MS * 2 ** Math.max(0, failures - 1), ARI_RETRY_AFTER_MAX_MS));
}

// The rule: a window that opens before a third of the lifetime has passed means the CA wants the
// certificate gone early (a planned renewal is due at two thirds); most likely it will be revoked.
const EARLY_FRACTION = 1 / 3;

/** The CA asks for the certificate to be replaced early: its window opens before ⅓ of the lifetime has passed. */
export function isEarlyWindow(w: { start: Date }, notBefore: Date, notAfter: Date): boolean {
  return w.start.getTime() < notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) * EARLY_FRACTION;
}

/** What is kept per certificate between passes (`certs/<name>/ari.json`). */
export interface AriState {
  /** The certificate this state is about; a renewed certificate starts afresh. */
  certId: string;
  window?: { start: string; end: string; explanationURL?: string };
  /** The moment chosen inside `window`, kept until the window changes (a new draw each pass would drift early). */
  renewAt?: string;
  fetchedAt?: string;
  /** No fetch before this (Retry-After, or the backoff after a failure). */
  nextFetch: string;
  failures: number;
  lastError?: string;
}

/** The ARI facts the decision needs (policy input). */
export interface AriInput {
  start: Date;
  end: Date;
  /** The chosen moment inside the window. */
  at: Date;
  explanationURL?: string;
}

export function ariInputOf(state: AriState | undefined, certId: string | undefined): AriInput | undefined {
  if (!state?.window || !state.renewAt || state.certId !== certId) return undefined;
  return {
    start: new Date(state.window.start),
    end: new Date(state.window.end),
    at: new Date(state.renewAt),
    ...(state.window.explanationURL ? { explanationURL: state.window.explanationURL } : {}),
  };
}

/**
 * The state after a fetch: a changed window draws a new moment, the same window keeps the old one. A
 * failure keeps the last good window (still the CA's word) and backs off.
 */
export function afterFetch(prev: AriState | undefined, certId: string, now: Date, got: { window: AriWindow; retryAfterMs: number | undefined } | { error: string }, random?: () => number): AriState {
  const base = prev?.certId === certId ? prev : undefined;
  if ('error' in got) {
    const failures = (base?.failures ?? 0) + 1;
    return { ...(base ?? { certId }), certId, failures, lastError: got.error, nextFetch: fetchBackoff(now, failures).toISOString() };
  }
  const { window } = got;
  const same = base?.window && Date.parse(base.window.start) === window.start.getTime() && Date.parse(base.window.end) === window.end.getTime();
  const renewAt = same && base?.renewAt ? base.renewAt : momentInWindow(window, random).toISOString();
  return {
    certId,
    window: { start: window.start.toISOString(), end: window.end.toISOString(), ...(window.explanationURL ? { explanationURL: window.explanationURL } : {}) },
    renewAt,
    fetchedAt: now.toISOString(),
    nextFetch: nextFetchAfter(now, got.retryAfterMs).toISOString(),
    failures: 0,
  };
}
