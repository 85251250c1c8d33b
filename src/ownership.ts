/**
 * Who owns a certificate name (DESIGN §10, issue 15.1). Sources rank DOMAINS > request API > labels; a
 * certificate name belongs to the highest-ranked source that asks for it, and among labels to the first
 * service that claimed it. A lower source that asks for more than the owner's certificate, or for a name
 * inside another source's certificate, is refused for that certificate: it can neither widen a certificate
 * that is not its own (a name that never validates would make the owner's renewals fail) nor order a
 * second copy of names someone else holds.
 *
 * The label claims, and when each service last added a new name set, are kept in the store's label-claims.json
 * so that a restart changes no owner and the per-day cap holds across restarts.
 */
import type { LocalStore } from './certs/store.js';
import { JsonBook } from './stores/json-book.js';
import type { Store } from './stores/store.js';
import type { RefusedCert, WantedCert } from './domains.js';
import { describeService, refusal } from './label-policy.js';

const DAY_MS = 86_400_000;

export interface Claim {
  /** The service id (ids survive upgrades; a service removed and created again is a new claimant). */
  service: string;
  serviceName: string;
  names: string[];
  /** When the service first claimed the certificate name: the earlier claim wins. */
  since: string;
}

export interface ClaimsFile {
  version: 1;
  claims: Record<string, Claim>;
  /** Per service id: when it was last given a new name set, within the last 24 hours. */
  newSets: Record<string, string[]>;
}

const empty = (): ClaimsFile => ({ version: 1, claims: {}, newSets: {} });

export class ClaimsBook {
  /** Where the book is, as messages name it (the file on STORE=files). */
  readonly path: string;
  private readonly book: JsonBook<ClaimsFile>;
  /** Refusals already told as events, so a refusal repeated every pass is told once per run. */
  private told = new Set<string>();

  /** `readOnly` (plan): claims are read but never written. */
  constructor(store: Store, readonly readOnly = false) {
    this.book = new JsonBook<ClaimsFile>(store, {
      path: 'label-claims.json',
      empty,
      // resolveOwnership reads the claims and builds new ones: what load gives is never changed.
      // Stryker disable next-line BooleanLiteral: not shared, load hands out a copy: the same claims at more cost
      shared: true,
      validate: (parsed) => {
        const f = parsed as ClaimsFile;
        if (f?.version !== 1 || typeof f.claims !== 'object' || f.claims === null || typeof f.newSets !== 'object' || f.newSets === null) throw new Error('not a version 1 claims file');
        return f;
      },
      indent: 2,
      unreadable: (shown, why) => `${shown} is unreadable (${why}); labels are not read until it is`,
      invalid: (shown, why) => `${shown} is not valid (${why}); labels are not read until it is fixed or moved aside (moving it aside gives every label name to the first service that asks)`,
    });
    this.path = this.book.shown;
  }

  load(): Promise<ClaimsFile> {
    return this.book.load();
  }

  async save(file: ClaimsFile): Promise<void> {
    if (this.readOnly) return;
    await this.book.save(file);
  }

  /** The refusals not told before; remembers exactly this pass's set, so one that ends and comes back is told again. */
  fresh(refused: RefusedCert[]): RefusedCert[] {
    const key = (r: RefusedCert) => `${r.source}\n${r.spec}\n${r.error}`;
    const out = refused.filter((r) => !this.told.has(key(r)));
    this.told = new Set(refused.map(key));
    return out;
  }
}

export interface OwnershipInput {
  domains: WantedCert[];
  api: WantedCert[];
  /** Labels' certificates, already through the label policy; undefined when labels could not be read. */
  labels: WantedCert[] | undefined;
  claims: ClaimsFile;
  now: Date;
  maxNewPerDay: number;
  /** The local store already holds a real certificate of this name covering these names (no order needed). */
  hasCopy(name: string, names: string[]): Promise<boolean>;
}

export interface OwnershipResult {
  wanted: WantedCert[];
  refused: RefusedCert[];
  /** The claims to keep; equal to the input's when labels were not read. */
  claims: ClaimsFile;
  changed: boolean;
  /** Label certificates taken this pass as a new name set (counted against LABEL_MAX_NEW_PER_DAY). */
  newSets: Set<string>;
}

const ownerKey = (c: WantedCert) => (c.origin === 'label' ? `label:${c.service?.id ?? c.sources[0]}` : c.origin);

function describeOwner(c: WantedCert): string {
  if (c.origin === 'DOMAINS') return 'DOMAINS';
  if (c.origin === 'api') return 'the request API';
  return c.service ? `the label on service ${describeService(c.service)}` : (c.sources[0] ?? 'a label');
}

/** service, serviceName, names, since. */
const CLAIM_FIELDS = 4;
const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((n) => b.includes(n));

export async function resolveOwnership(input: OwnershipInput): Promise<OwnershipResult> {
  const wanted: WantedCert[] = [];
  const refused: RefusedCert[] = [];
  const byName = new Map<string, WantedCert>();
  /** Every DNS name taken so far → the certificate holding it. */
  const holder = new Map<string, WantedCert>();

  /** Why `c` cannot be taken as it is; 'covered' when the owner's certificate already holds all it asks. */
  const conflict = (c: WantedCert): string | 'covered' | 'merge' | undefined => {
    const key = ownerKey(c);
    const seen = byName.get(c.name);
    if (seen) {
      if (ownerKey(seen) === key) return 'merge';
      if (c.names.every((n) => seen.names.includes(n))) return 'covered';
      const extra = c.names.filter((n) => !seen.names.includes(n));
      return `certificate ${c.name} belongs to ${describeOwner(seen)}; ${c.origin === 'label' ? 'a label' : 'the request API'} cannot add ${extra.join(', ')} to it`;
    }
    for (const n of c.names) {
      const h = holder.get(n);
      if (h && ownerKey(h) !== key) return `"${n}" is already in certificate ${h.name} of ${describeOwner(h)}; ask for that certificate by its name, or leave ${n} out`;
    }
    return undefined;
  };
  const take = (c: WantedCert, how: 'merge' | 'covered' | undefined) => {
    const seen = byName.get(c.name);
    // Stryker disable next-line LogicalOperator: conflict() answers merge or covered only when it found the certificate
    if (seen && how) {
      // Covered: the owner's certificate serves it as it is; only the request is noted. The challenge is the owner's.
      for (const s of c.sources) if (!seen.sources.includes(s)) seen.sources.push(s);
      if (how === 'merge') {
        if (!seen.challenge && c.challenge) seen.challenge = c.challenge;
        if (!seen.keyType && c.keyType) seen.keyType = c.keyType;
        if (seen.reuseKey === undefined && c.reuseKey !== undefined) seen.reuseKey = c.reuseKey;
        if (!seen.profile && c.profile) seen.profile = c.profile;
        for (const n of c.names) if (!seen.names.includes(n)) seen.names.push(n);
      }
      for (const n of seen.names) if (!holder.has(n)) holder.set(n, seen);
      return;
    }
    const copy: WantedCert = { ...c, names: [...c.names], sources: [...c.sources] };
    wanted.push(copy);
    byName.set(copy.name, copy);
    for (const n of copy.names) if (!holder.has(n)) holder.set(n, copy);
  };

  for (const c of [...input.domains, ...input.api]) {
    const why = conflict(c);
    if (why === undefined || why === 'merge' || why === 'covered') take(c, why);
    else refused.push(refusal(c, why));
  }

  if (!input.labels) return { wanted, refused, claims: input.claims, changed: false, newSets: new Set() };

  const now = input.now.getTime();
  const claims: Record<string, Claim> = {};
  const newSets: Record<string, string[]> = {};
  for (const [svc, times] of Object.entries(input.claims.newSets)) {
    const recent = times.filter((t) => now - Date.parse(t) < DAY_MS && Date.parse(t) <= now);
    if (recent.length > 0) newSets[svc] = recent;
  }
  const counted = new Set<string>();
  const claimOf = (c: WantedCert) => {
    const claim = input.claims.claims[c.name];
    return claim && claim.service === c.service?.id ? claim : undefined;
  };
  // Earlier claims first, then the unclaimed in the order the orchestrator lists services (creation order).
  // The sort is stable: equal claims, and the unclaimed, keep the order listed.
  const order = input.labels
    .map((c) => ({ c, since: claimOf(c)?.since }))
    .sort((a, b) => {
      if (a.since === b.since) return 0;
      if (a.since === undefined) return 1;
      if (b.since === undefined) return -1;
      // ISO times compare as strings; not localeCompare, which costs a collation per comparison (issue 22).
      return a.since < b.since ? -1 : 1;
    })
    .map((x) => x.c);

  for (const c of order) {
    const why = conflict(c);
    if (why !== undefined && why !== 'merge' && why !== 'covered') {
      refused.push(refusal(c, why));
      continue;
    }
    if (why === 'covered') {
      const owner = byName.get(c.name)!;
      // Served by the operator's own certificate: nothing to refuse. Another tenant's is refused, by name: it
      // claimed first, and may hold a name that never validates, so this service must know it is not served.
      if (owner.origin !== 'label') take(c, why);
      else refused.push(refusal(c, `certificate ${c.name} belongs to ${describeOwner(owner)}, which claimed it first; ask for your names under a certificate name of your own`));
      continue;
    }
    // Stryker disable next-line StringLiteral: a certificate always has a source
    const svc = c.service?.id ?? c.sources[0] ?? '';
    const claim = claimOf(c);
    const isNew = why !== 'merge' && !(claim && sameSet(claim.names, c.names)) && !(await input.hasCopy(c.name, c.names));
    const recent = newSets[svc] ?? [];
    if (isNew && recent.length >= input.maxNewPerDay) {
      // LABEL_MAX_NEW_PER_DAY=0 (allowed) leaves nothing counted to wait for: there is no next one.
      const next = recent.length > 0 ? `next one after ${new Date(Math.min(...recent.map((t) => Date.parse(t))) + DAY_MS).toISOString()}` : 'LABEL_MAX_NEW_PER_DAY=0 allows none';
      const cap = `service ${c.service ? describeService(c.service) : svc} was given ${recent.length} new name sets in the last 24 hours (LABEL_MAX_NEW_PER_DAY=${input.maxNewPerDay}); a change of names counts as a new set; ${next}`;
      // A changed certificate keeps its previous names meanwhile, so it is still renewed.
      const kept = claim ? { ...c, names: [...claim.names] } : undefined;
      const keptWhy = kept && conflict(kept);
      // Stryker disable next-line StringLiteral: never merge: the kept certificate has the name conflict() just found no certificate for
      if (kept && (keptWhy === undefined || keptWhy === 'merge')) {
        take(kept, keptWhy);
        claims[c.name] = { ...claim! };
        refused.push(refusal(c, `${cap}; ${c.name} keeps its previous names (${claim!.names.join(', ')}) until then`));
      } else {
        refused.push(refusal(c, cap));
      }
      continue;
    }
    take(c, why);
    if (isNew) {
      (newSets[svc] ??= []).push(input.now.toISOString());
      counted.add(c.name);
    }
    const merged = byName.get(c.name)!;
    const serviceName = c.service?.name ?? svc;
    // A claim that did not change is kept as it was read: no new object and names array per certificate and pass
    // (10,000 of each, issue 22). One with a field of its own is made again, so the file is written without it.
    // (claimOf gave it only for this service id, which is then `svc`.)
    claims[c.name] =
      claim && claim.serviceName === serviceName && sameList(claim.names, merged.names) && Object.keys(claim).length === CLAIM_FIELDS
        ? claim
        : { service: svc, serviceName, names: [...merged.names], since: claim?.since ?? input.now.toISOString() };
  }
  const next: ClaimsFile = { version: 1, claims, newSets };
  return { wanted, refused, claims: next, changed: !sameClaims(next, input.claims), newSets: counted };
}

/**
 * The same claims and new-set times, in the same order (what the file's text would show), without writing either
 * out. Exported for its table test.
 */
export function sameClaims(a: ClaimsFile, b: ClaimsFile): boolean {
  const same = <T>(x: Record<string, T>, y: Record<string, T>, eq: (p: T, q: T) => boolean) => {
    const kx = Object.keys(x);
    const ky = Object.keys(y);
    return kx.length === ky.length && kx.every((k, i) => k === ky[i] && eq(x[k]!, y[k]!));
  };
  const list = sameList;
  return (
    a.version === b.version &&
    same(a.claims, b.claims, (p, q) => p.service === q.service && p.serviceName === q.serviceName && p.since === q.since && list(p.names, q.names) && Object.keys(p).length === Object.keys(q).length) &&
    same(a.newSets, b.newSets, list)
  );
}

/** The local store's certificate `name` is a real one (not a placeholder) that covers `names`. */
export async function storeHasCopy(store: LocalStore, name: string, names: string[]): Promise<boolean> {
  try {
    const meta = JSON.parse((await store.backend.read(store.certPath(name, 'meta.json'))) ?? 'null') as { names?: unknown; kind?: unknown };
    return Array.isArray(meta.names) && meta.kind !== 'self-signed' && names.every((n) => (meta.names as unknown[]).includes(n));
  } catch {
    return false;
  }
}
