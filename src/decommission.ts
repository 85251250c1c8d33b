/**
 * Certificates no source asks for any more (issue 17 item 5). Such a certificate is kept in service and
 * never renewed, and reported as `Unwanted`. With DECOMMISSION=remove, once it has been unwanted for
 * DECOMMISSION_AFTER and nothing uses it, it leaves the orchestrator (never a copy certwrangler did not
 * create), is revoked with cessationOfOperation under REVOKE_ON_REMOVE, and its stored copy, key included,
 * moves to archive/ in the store (DATA_DIR/archive/ on files).
 *
 * When a certificate first went unwanted is kept in the store's unwanted.json, so a restart does not start
 * the wait again. A pass whose sources could not all be read judges nothing unwanted: a label that could
 * not be read is not a label that went away.
 */
import type { LocalStore } from './certs/store.js';
import { JsonBook } from './stores/json-book.js';
import type { Store } from './stores/store.js';
import type { RefusedCert, WantedCert } from './domains.js';
import type { Unwanted } from './policy.js';
import type { PassDeps, CertResult } from './reconciler.js';
import type { Decided } from './observe.js';
import { revokeStored } from './revoke.js';
import { emit } from './report.js';

interface UnwantedFile {
  version: 1;
  /** Certificate name → when a pass first found no source asking for it. */
  since: Record<string, string>;
}

export class UnwantedBook {
  /** Where the book is, as messages name it (the file on STORE=files). */
  readonly path: string;
  private readonly book: JsonBook<UnwantedFile>;

  constructor(store: Store) {
    this.book = new JsonBook<UnwantedFile>(store, {
      path: 'unwanted.json',
      empty: () => ({ version: 1, since: {} }),
      validate: (parsed) => {
        const f = parsed as UnwantedFile;
        if (f?.version !== 1 || typeof f.since !== 'object' || f.since === null) throw new Error('not a version 1 file');
        return f;
      },
      indent: 2,
      unreadable: (shown, why) => `${shown} is unreadable (${why}); no certificate is judged unwanted until it is`,
      invalid: (shown, why) => `${shown} is not valid (${why}); move it aside: the wait of DECOMMISSION_AFTER then starts again`,
    });
    this.path = this.book.shown;
  }

  load(): Promise<UnwantedFile> {
    return this.book.load();
  }

  save(f: UnwantedFile): Promise<void> {
    return this.book.save(f);
  }
}

/** The certificates of the store no source asks for, as entries the pass observes and decides like the wanted ones. */
export interface UnwantedCerts {
  certs: WantedCert[];
  unwanted: Map<string, Unwanted>;
}

const NONE: UnwantedCerts = { certs: [], unwanted: new Map() };

async function storedNames(store: LocalStore, name: string): Promise<string[] | undefined> {
  try {
    const text = await store.backend.read(store.certPath(name, 'meta.json'));
    // A folder with only status.json (an order that never succeeded) holds no certificate: nothing to serve or remove.
    if (text === undefined) return undefined;
    const meta = JSON.parse(text) as { names?: unknown };
    return Array.isArray(meta.names) && meta.names.every((n) => typeof n === 'string') ? (meta.names as string[]) : [name];
  } catch {
    return [name];
  }
}

/**
 * The stored certificates that no source asks for: not wanted, and not named by a refused request either
 * (a refused label still asks; its certificate stays until the refusal is fixed or the label goes).
 * `record`: keep when each first went unwanted (a pass); `plan` only reads.
 */
export async function findUnwanted(deps: PassDeps, wanted: WantedCert[], refused: RefusedCert[], discoveryErrors: string[], now: Date, record: boolean): Promise<UnwantedCerts & { errors: string[] }> {
  if (discoveryErrors.length > 0) return { ...NONE, errors: [] };
  const { store, config } = deps;
  const asked = new Set(wanted.map((w) => w.name));
  const refusedNames = new Set(refused.flatMap((r) => r.spec.split(/[,;]/).map((n) => n.trim().toLowerCase().replace(/^\*\./, '_.'))));
  const book = new UnwantedBook(store.backend);
  let file: UnwantedFile;
  try {
    file = await book.load();
  } catch (e) {
    return { ...NONE, errors: [(e as Error).message] };
  }
  const certs: WantedCert[] = [];
  const unwanted = new Map<string, Unwanted>();
  const since: Record<string, string> = {};
  for (const name of await store.names()) {
    if (asked.has(name) || refusedNames.has(name)) continue;
    const names = await storedNames(store, name);
    if (!names) continue;
    since[name] = file.since[name] ?? now.toISOString();
    const from = new Date(since[name]);
    const { mode, afterMs } = config.decommission;
    unwanted.set(name, { since: from, ...(mode === 'remove' ? { removeAt: new Date(from.getTime() + afterMs) } : {}), usedBy: [] });
    // No source, and the rights of the least of them (a label's): it can adopt nothing.
    certs.push({ name, names, sources: [], origin: 'label' });
  }
  const errors: string[] = [];
  if (record && JSON.stringify(since) !== JSON.stringify(file.since)) {
    await book.save({ version: 1, since }).catch((e: Error) => errors.push(`cannot record unwanted certificates in ${book.path}: ${e.message}`));
  }
  return { certs, unwanted, errors };
}

/** The balancers that still use the unwanted certificates DECOMMISSION=remove would remove now. */
export async function gatherUsedBy(deps: PassDeps, unwanted: Map<string, Unwanted>, now: Date): Promise<void> {
  const due = [...unwanted].filter(([, u]) => u.removeAt && now >= u.removeAt).map(([n]) => n);
  if (due.length === 0 || !deps.orchestrator.usedBy) return;
  const used = await deps.orchestrator.usedBy(due);
  for (const [name, users] of used) {
    const u = unwanted.get(name);
    if (u) u.usedBy = users;
  }
}

/**
 * Act: the orchestrator removes its copy (or says why not), then REVOKE_ON_REMOVE revokes, then the stored
 * copy goes to DATA_DIR/archive/. A revocation that fails leaves the stored copy, so the next pass tries again.
 */
export async function decommission(deps: PassDeps, o: Decided, r: CertResult, now: Date): Promise<CertResult> {
  const { orchestrator, store, config, log } = deps;
  const name = o.wanted.name;
  if (!orchestrator.remove) throw new Error(`the ${orchestrator.name} orchestrator cannot remove certificates; set DECOMMISSION=keep`);
  const removed = await orchestrator.remove(name);
  if (!removed.removed) {
    // Not a failure: it is served as before, and the next pass looks again.
    r.decision = { ...r.decision, action: 'none', message: `${r.decision.message.replace(/; removed from the orchestrator.*$/, '')}; not removed: ${removed.why}` };
    log.info({ cert: name, action: 'remove', reason: 'Unwanted', error: removed.why }, `${name}: unwanted, not removed: ${removed.why}`);
    return r;
  }
  log.info({ cert: name, action: 'remove', reason: 'Unwanted', target: removed.target }, `${name}: unwanted; removed ${removed.target}`);
  let revoked = '';
  const local = o.localCopy;
  if (config.decommission.revokeOnRemove && local.state === 'present' && local.kind !== 'self-signed' && local.kind !== undefined && now < local.info.notAfter) {
    const done = await revokeStored(deps, name, 'cessationOfOperation', now);
    revoked = done.already ? '; it was already revoked' : '; revoked (cessationOfOperation)';
    log.info({ cert: name, action: 'revoke', reason: 'Unwanted', serial: done.record.serialNumber }, `${name}: revoked with reason cessationOfOperation (REVOKE_ON_REMOVE)`);
  }
  const archived = await store.archive(name, now);
  log.info({ cert: name, action: 'archive', archive: archived }, `${name}: stored copy and key moved to ${archived}`);
  emit(deps, o, 'removed', r, { target: `${removed.target}${revoked}` });
  return r;
}
