import type { CertInfo } from '../certs/parse.js';
import type { CertBundle } from '../certs/store.js';
import type { ParsedDomains } from '../domains.js';

export interface ListOptions {
  sameAsLocal?: (name: string, fingerprintSha1: string) => CertInfo | undefined;
}

/** What an orchestrator holds for one certificate name. */
export type RemoteCopy =
  | { state: 'absent' }
  | { state: 'unreadable'; error: string; owned: boolean }
  | { state: 'present'; info: CertInfo; owned: boolean };

export interface PushResult {
  /** Where it went, for the log: a folder, a Rancher id. */
  target: string;
  /**
   * Balancers whose update is still pending after a successful certificate push (the push did not fail):
   * reported as "pushed, balancer reload pending" and retried by `retryReloads`.
   */
  pendingReloads?: string[];
}

/** One retried balancer reload, as `retryReloads` reports it. */
export interface ReloadRetry {
  cert: string;
  balancer: string;
  ok: boolean;
  message: string;
}

/** What `remove` did: removed (or it was not there), or left in place and why. */
export type RemoveResult = { removed: true; target: string } | { removed: false; why: string };

export interface PushOptions {
  adopt: boolean;
}

/** The small interface every orchestrator implements (DESIGN §7). */
export interface Orchestrator {
  readonly name: string;
  /**
   * What it holds for these names, found with as few calls as the orchestrator allows (one listing).
   * `sameAsLocal`: the local copy's facts when it has this SHA-1 fingerprint, so a copy the orchestrator
   * fingerprints itself (Rancher's certFingerprint) need not be parsed again (issue 22).
   */
  list(names: string[], opts?: ListOptions): Promise<Map<string, RemoteCopy>>;
  /**
   * Creates or updates one certificate in place. A copy certwrangler did not write is never replaced
   * unless `adopt` (ADOPT_EXISTING names this certificate).
   */
  push(bundle: CertBundle, opts: PushOptions): Promise<PushResult>;
  /** Certificates asked for by labels on the orchestrator's services. */
  discover(): Promise<ParsedDomains>;
  /** Retries the balancer reloads still pending from earlier pushes; called once per pass by the act step, never by plan. */
  retryReloads?(now: Date): Promise<ReloadRetry[]>;
  /**
   * Who still uses each of these certificates (Rancher: the balancers that reference it), by certificate
   * name; asked only about unwanted certificates that DECOMMISSION=remove would remove.
   */
  usedBy?(names: string[]): Promise<Map<string, string[]>>;
  /**
   * Takes a certificate certwrangler created out of service (issue 17 item 5, DECOMMISSION=remove). Never one
   * it did not create, never one still in use: those are left, with the reason.
   */
  remove?(name: string): Promise<RemoveResult>;
  /** VERIFY: where the balancers that serve `name` listen, "host:port" (Rancher: their publicEndpoints). */
  servingEndpoints?(name: string): Promise<{ balancer: string; address: string }[]>;
  /** VERIFY: one more reload of every balancer that serves `name`; says what was done. */
  reloadAgain?(name: string): Promise<string>;
  /** When the earliest pending balancer reload is due, so the manager wakes for it rather than at its next scheduled pass. */
  nextReloadAt?(): Promise<Date | undefined>;
  /**
   * Follows the orchestrator's own change feed (Docker's /events): `onChange` is called when the wanted set
   * may have changed, and after every reconnect. Returns the function that stops it. Only a long-running manager calls it.
   */
  watch?(onChange: (why: string) => void): () => void;
  /** The files target this orchestrator writes through, if any: hooks are given its paths (CERTS_DIR/<name>). */
  readonly files?: { dir(name: string): string };
}
