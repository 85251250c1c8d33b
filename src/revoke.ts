/**
 * Revocation (issue 17 item 5): a stored certificate is revoked with the ACME account key of the directory
 * that issued it (RFC 8555 §7.6), and the revocation is recorded beside it in the local store, so that the
 * policy replaces it (reason `Revoked`) on the next pass, or at once when `certwrangler revoke` renews.
 */
import { StoreUnavailableError } from './stores/store.js';
import type { LocalStore } from './certs/store.js';
import { shownPath } from './stores/json-book.js';
import type { AccountBook } from './acme/account.js';

/** RFC 5280 §5.3.1 CRLReason codes, as RFC 8555 §7.6 sends them in `reason`. */
export const REVOCATION_REASONS = { unspecified: 0, keyCompromise: 1, superseded: 4, cessationOfOperation: 5 } as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;
/** What `certwrangler revoke --reason` takes; without it no reason is sent (RFC 8555 §7.6: unspecified). */
export const CLI_REASONS = ['keyCompromise', 'superseded', 'cessationOfOperation'] as const satisfies readonly RevocationReason[];

/** Kept as certs/<name>/revoked.json: which certificate was revoked, why and when. */
export interface RevocationRecord {
  /** SHA-256 fingerprint of the revoked certificate: a later certificate of the same name is not revoked. */
  fingerprint: string;
  serialNumber: string;
  reason: RevocationReason;
  at: string;
  directoryUrl: string;
}

export const REVOKED_FILE = 'revoked.json';

export class RevokeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RevokeError';
  }
}

/** The recorded revocation of a stored certificate, if any; an unreadable record counts as none. */
export async function readRevocation(store: LocalStore, name: string): Promise<RevocationRecord | undefined> {
  try {
    return revocationFrom(await store.backend.read(store.certPath(name, REVOKED_FILE)));
  } catch (e) {
    if (e instanceof StoreUnavailableError) throw e; // unreachable is not "no record"
    return undefined;
  }
}

/** revoked.json's text (or its read's Error, as the store index reads it): undefined when absent or not a record. */
export function revocationFrom(text: string | undefined | Error): RevocationRecord | undefined {
  if (text === undefined || text instanceof Error) return undefined;
  try {
    const r = JSON.parse(text) as RevocationRecord | null;
    return typeof r?.fingerprint === 'string' && typeof r.reason === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

async function recordRevocation(store: LocalStore, name: string, r: RevocationRecord): Promise<void> {
  await store.backend.write(store.certPath(name, REVOKED_FILE), `${JSON.stringify(r, null, 2)}\n`);
}

// Pebble: "Certificate has already been revoked."; Boulder: "certificate already revoked". acme-client keeps
// only the problem's detail (urn:ietf:params:acme:error:alreadyRevoked, RFC 8555 §6.7) in the error it throws.
const ALREADY_REVOKED = /already\s+(been\s+)?revoked/i;

export interface RevokeDeps {
  store: LocalStore;
  accounts: AccountBook;
}

export interface Revoked {
  record: RevocationRecord;
  /** The CA (or our own record) said it was revoked before this call. */
  already: boolean;
}

/**
 * Revokes the stored certificate `name` with the account key of its directory and records it. A certificate
 * already revoked (by us, or the CA says so) is recorded and not an error: revoking twice changes nothing.
 */
export async function revokeStored(deps: RevokeDeps, name: string, reason: RevocationReason, now: Date = new Date()): Promise<Revoked> {
  const { store } = deps;
  const local = await store.read(name, { recover: true });
  if (local.state === 'absent') throw new RevokeError(`revoke: no certificate named ${name} in ${shownPath(store.backend, 'certs')}; give a certificate's name (its first domain) as plan lists it`);
  if (local.state === 'unreadable') throw new RevokeError(`revoke: the stored certificate ${name} cannot be read (${local.error}); nothing was revoked`);
  const { meta, info, bundle } = local;
  if (meta.kind === 'self-signed' || !meta.directoryUrl) throw new RevokeError(`revoke: ${name} holds a self-signed placeholder, which no CA issued: there is nothing to revoke`);
  const previous = await readRevocation(store, name);
  if (previous && previous.fingerprint === info.fingerprint) return { record: previous, already: true };
  const client = await deps.accounts.client(meta.directoryUrl);
  let already = false;
  try {
    // The account that ordered it may revoke it (RFC 8555 §7.6): no proof of the certificate's key is needed.
    await client.revokeCertificate(bundle.cert, reason === 'unspecified' ? {} : { reason: REVOCATION_REASONS[reason] });
  } catch (e) {
    const detail = (e as Error).message;
    if (!ALREADY_REVOKED.test(detail)) throw new RevokeError(`revoke: ${meta.directoryUrl} did not revoke ${name} (serial ${info.serialNumber}): ${detail}`);
    already = true;
  }
  const record: RevocationRecord = { fingerprint: info.fingerprint, serialNumber: info.serialNumber, reason, at: now.toISOString(), directoryUrl: meta.directoryUrl };
  await recordRevocation(store, name, record);
  return { record, already };
}
