/**
 * Step 2 of a pass (DESIGN §2): gather, into plain records, everything the decision needs: the local copy,
 * the orchestrator's copy (one listing), the certificate's backoff, and, for the certificates whose
 * decision is an order, the rate-limit ledger's verdict. Nothing here decides or changes anything.
 */
import pLimit from 'p-limit';
import type { Config } from './config.js';
import type { WantedCert } from './domains.js';
import { mayAdopt } from './adopt.js';
import { classifyByIssuer, kindOfDirectory, type Kind, type KnownIssuers } from './certs/kind.js';
import type { CertStatus, LocalCopy } from './certs/store.js';
import { indexOf, type IndexedCopy } from './certs/index.js';
import type { RemoteCopy } from './orchestrators/orchestrator.js';
import { decideAction, wantsOrder, type Copy, type Decision, type PolicyInput, type Unwanted } from './policy.js';
import { gatherUsedBy } from './decommission.js';
import type { PassDeps } from './reconciler.js';
import { ImportedBook, type ImportedFingerprints } from './import/imported.js';
import { observeAri, type AriSeen } from './acme/ari-fetch.js';

export interface Observed {
  wanted: WantedCert;
  /**
   * From the store's index (src/certs/index.ts): 'indexed' holds no PEM and no key. A decision that acts is
   * given the full copy (`withBundles`), read from the files, in its place.
   */
  local: LocalCopy | IndexedCopy;
  status: CertStatus;
  localCopy: Copy;
  remoteCopy: Copy;
  /** ADOPT_EXISTING lets this certificate take over a foreign copy of its name. */
  adopt: boolean;
  /** The CA's renewal information for the local copy (RFC 9773). */
  ari?: AriSeen;
  input: PolicyInput;
}

export type Decided = Observed & { decision: Decision };

// Ledger checks at once: each walks the week's orders; unbounded, 10,000 at once only queue on the CPU.
const LEDGER_PEEK_CONCURRENCY = 16;

/** STAGING's kind: what a certificate is ordered as unless one of a higher kind is in service. */
export function stagingKind(config: Config): Kind {
  return config.staging ? 'staging' : 'production';
}

/** The directory of a kind. */
export function directoryOf(config: Config, kind: Kind): string {
  return kind === 'staging' ? config.stagingDirectoryUrl : config.productionDirectoryUrl;
}

/** The directories a kind orders from, preferred first: every CA of ACME_DIRECTORY_URLS for production (src/multica/). */
export function directoriesOf(config: Config, kind: Kind): string[] {
  return kind === 'production' ? config.cas.map((c) => c.directoryUrl) : [directoryOf(config, kind)];
}

function localToCopy(local: LocalCopy | IndexedCopy, config: Config): Copy {
  if (local.state !== 'present' && local.state !== 'indexed') return local.state === 'absent' ? local : { ...local, owned: true };
  const kind = kindOfDirectory(local.meta.directoryUrl, config, local.meta.kind);
  return { state: 'present', info: local.info, kind, keyMatches: local.keyMatches, owned: true, ...(local.meta.profile ? { profile: local.meta.profile } : {}) };
}

function remoteToCopy(remote: RemoteCopy, local: Copy, known: KnownIssuers, imported: ReadonlySet<string> | undefined): Copy {
  if (remote.state !== 'present') return remote;
  // A copy certwrangler imported (the seed's, from certbot's store) is its own: the local store holds its key.
  if (!remote.owned && imported?.has(remote.info.fingerprint)) remote = { ...remote, owned: true };
  // The same certificate as the local copy is the same kind; otherwise judge it by its issuer.
  const kind =
    local.state === 'present' && local.info.fingerprint === remote.info.fingerprint
      ? local.kind
      : classifyByIssuer(remote.info, known);
  return { state: 'present', info: remote.info, kind, keyMatches: true, owned: remote.owned };
}

// imported.json, by its stamp: read again only when it changed (an import is rare; every pass asked for it).
const importedSeen = new WeakMap<object, { stamp: string; fingerprints: ImportedFingerprints }>();

/** What was imported; an unreadable record leaves the imported copies foreign (left alone), with a warning. */
async function importedFingerprints(deps: PassDeps): Promise<ImportedFingerprints> {
  const book = new ImportedBook(deps.store.backend);
  const stamp = (await deps.store.backend.stamp('imported.json').catch(() => undefined)) ?? '-';
  const seen = importedSeen.get(deps.store);
  if (seen?.stamp === stamp) return seen.fingerprints;
  try {
    const fingerprints = await book.load();
    importedSeen.set(deps.store, { stamp, fingerprints });
    return fingerprints;
  } catch (e) {
    deps.log.warn({ error: (e as Error).message }, `imported certificates are treated as foreign this pass: ${(e as Error).message}`);
    return new Map();
  }
}

/**
 * Reads every wanted certificate's copies and state; throws when the orchestrator's copies cannot be read.
 * The local side comes from the store's index: one stamp per certificate that did not change (issue 22).
 */
export async function observe(deps: PassDeps, wanted: WantedCert[], now: Date, recover: boolean, unwanted: Map<string, Unwanted> = new Map()): Promise<Observed[]> {
  const { config, store } = deps;
  const index = indexOf(store);
  const names = wanted.map((w) => w.name);
  const entries = await index.entries(names, { recover });
  index.retain(names);
  // The orchestrator compares its copies with the local ones by fingerprint and parses only those that differ.
  const sameAsLocal = (name: string, fingerprintSha1: string) => {
    const l = entries.get(name)?.local;
    return l?.state === 'indexed' && l.info.fingerprintSha1 === fingerprintSha1 ? l.info : undefined;
  };
  const [known, remotes, imported] = await Promise.all([store.knownIssuers(), deps.orchestrator.list(names, { sameAsLocal }), importedFingerprints(deps)]);
  // After the listing: the orchestrator finds the users of its copies by what it just listed.
  await gatherUsedBy(deps, unwanted, now);
  const profileFacts = new Map<string, Promise<boolean>>();
  const directory = directoryOf(config, stagingKind(config));
  const kind = stagingKind(config);
  // One renewal policy object for the pass per ADOPT value, not one per certificate (issue 22: 10,000 a pass).
  const policies = new Map<boolean, PolicyInput['policy']>();
  const policyOf = (adopt: boolean) => {
    let p = policies.get(adopt);
    if (!p) policies.set(adopt, (p = { renewBeforeDays: config.renewBeforeDays, adoptExisting: adopt, placeholders: config.placeholders }));
    return p;
  };
  const one = (w: WantedCert, ari: AriSeen, caOffers: boolean | undefined): Observed => {
    const entry = entries.get(w.name)!;
    const { local, status, revocation } = entry;
    const localCopy = localToCopy(local, config);
    const profile = w.profile ?? config.profile;
    const remote = remotes.get(w.name) ?? ABSENT;
    const remoteCopy = remoteToCopy(remote, localCopy, known, imported.get(w.name));
    // An imported copy is replaced in place at renewal, as an adopted one is.
    const adopt = mayAdopt(config.adoptExisting, w) || (remote.state === 'present' && !remote.owned && remoteCopy.state === 'present' && remoteCopy.owned);
    const input: PolicyInput = {
      wanted: { name: w.name, names: w.names, kind, origin: w.origin, ...(profile ? { profile } : {}) },
      local: localCopy,
      remote: remoteCopy,
      now,
      policy: policyOf(adopt),
      gate: status.nextAttempt ? { backoffUntil: new Date(status.nextAttempt) } : NO_GATE,
      ...(ari.input ? { ari: ari.input } : {}),
      ...(caOffers !== undefined ? { caOffersProfiles: caOffers } : {}),
    };
    // A revocation is of one certificate: the one that replaced it is not revoked.
    if (revocation && local.state === 'indexed' && revocation.fingerprint === local.info.fingerprint) input.revoked = { reason: revocation.reason, at: new Date(revocation.at) };
    const u = unwanted.get(w.name);
    if (u) input.unwanted = u;
    return { wanted: w, local, status, localCopy, remoteCopy, adopt, ari, input };
  };
  // Synchronous for a certificate with no ARI to look at and no profile in play (a steady fleet of 10,000): no
  // promise and no closure per certificate; the others wait for what they need first.
  const out: Observed[] = new Array(wanted.length);
  const waits: Promise<void>[] = [];
  wanted.forEach((w, i) => {
    const entry = entries.get(w.name)!;
    const { local } = entry;
    const needsAri = entry.certId !== undefined && local.state === 'indexed' && local.meta.directoryUrl !== undefined;
    // Only asked when a profile is in play: a fleet without profiles never reads the directory for it.
    const needsProfiles = Boolean(w.profile ?? config.profile) || (local.state === 'indexed' && Boolean(local.meta.profile));
    if (!needsAri && !needsProfiles) {
      out[i] = one(w, NO_ARI, undefined);
      return;
    }
    waits.push(
      (async () => {
        // Asked of the CA only in a pass that may act (not `plan`), and only when its last answer says so.
        const { written, ...ari } = needsAri ? await observeAri(deps, w.name, { certId: entry.certId!, ...(local.state === 'indexed' ? { directoryUrl: local.meta.directoryUrl } : {}), ...(entry.ari ? { kept: entry.ari } : {}) }, now, recover) : NO_ARI_WRITTEN;
        if (written) await index.noteAri(w.name, written);
        out[i] = one(w, ari, needsProfiles ? await memo(profileFacts, directory, () => caOffersProfiles(deps, directory)) : undefined);
      })(),
    );
  });
  await Promise.all(waits);
  return out;
}

/** Shared by every observation that has them (never written to: a held order gets a gate of its own, gateOrders). */
const NO_ARI: AriSeen = Object.freeze({});
const NO_ARI_WRITTEN: AriSeen & { written?: undefined } = NO_ARI;
const NO_GATE: NonNullable<PolicyInput['gate']> = Object.freeze({});
const ABSENT: RemoteCopy = Object.freeze({ state: 'absent' });

function memo<T>(m: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let p = m.get(key);
  if (!p) m.set(key, (p = make()));
  return p;
}

/**
 * The decisions that act (a push, an order, a placeholder, a removal) get the full local copy, PEMs and key,
 * read from the files now; the others keep the index's summary. Few in a steady pass: none at all.
 */
export async function withBundles(deps: PassDeps, decided: Decided[], recover: boolean): Promise<Decided[]> {
  const index = indexOf(deps.store);
  // No promise for a decision that keeps its summary: a steady pass has 10,000 of them.
  const out = decided.slice();
  const reads: Promise<void>[] = [];
  decided.forEach((o, i) => {
    if (o.local.state !== 'indexed' || o.decision.action === 'none' || o.decision.action === 'wait') return;
    reads.push(index.full(o.wanted.name, { recover }).then((local) => void (out[i] = { ...o, local })));
  });
  await Promise.all(reads);
  return out;
}

async function caOffersProfiles(deps: PassDeps, directoryUrl: string): Promise<boolean> {
  const facts = await deps.directories?.facts(directoryUrl).catch(() => undefined);
  return facts?.profiles !== undefined;
}

/**
 * The ledger's part of the gate: asked only for the certificates whose decision is an order (a peek walks
 * the week's orders; 10,000 up-to-date certificates must not pay for it), each decided again with the
 * verdict so that "not ordered" is explained by the policy. A ledger that cannot be read holds the order.
 */
export async function gateOrders(deps: PassDeps, decided: Decided[]): Promise<Decided[]> {
  const { ledger } = deps;
  if (!ledger) return decided;
  const peeks = pLimit(LEDGER_PEEK_CONCURRENCY);
  if (!decided.some((o) => wantsOrder(o.decision) && o.decision.order)) return decided;
  return Promise.all(
    decided.map(async (o) => {
      if (!wantsOrder(o.decision) || !o.decision.order) return o;
      const { kind, budget, ariRenewal } = o.decision.order;
      // Held only when every CA the kind may order from would hold it: another CA's ledger is its own.
      let verdict: { limit: string; message: string; retryAt: Date } | undefined;
      for (const directoryUrl of directoriesOf(deps.config, kind)) {
        verdict = await peeks(() =>
          ledger(directoryUrl)
            .peek(o.wanted.names, { budget, ...(ariRenewal ? { ariRenewal } : {}) })
            .catch((e: Error) => ({ limit: 'ledgerUnreadable', message: e.message, retryAt: o.input.now })),
        );
        if (!verdict) break;
      }
      if (!verdict) return o;
      const input: PolicyInput = { ...o.input, gate: { ...o.input.gate, ledger: verdict } };
      return { ...o, input, decision: decideAction(input) };
    }),
  );
}
