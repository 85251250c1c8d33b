/**
 * Imports certbot's store (the seed's LETSENCRYPT_ROOTDIR, certbot's --config-dir) into certwrangler's, so that a
 * switch from rancher-lets-encrypt orders nothing again and registers no new account:
 *   live/<lineage>/{cert,chain,fullchain,privkey}.pem   → DATA_DIR/certs/<name>/, kind from the directory that issued it
 *   renewal/<lineage>.conf (server, account)             → that directory, and the account the lineage used
 *   accounts/<host[:port]>/<path>/<id>/{private_key.json,regr.json} → DATA_DIR/accounts/<directory>/account.json:
 *                                                           the JWK as a PEM key, regr.json's URL reused
 * Nothing is ever overwritten: a certificate or an account certwrangler already holds is kept. Running it again
 * imports only what is new. Every problem names the file. Keys are written 0600 with atomic writes, never shown.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { keyMatchesCert, parseCert, splitPemChain, type CertInfo } from '../certs/parse.js';
import { LocalStore, type CertBundle } from '../certs/store.js';
import { shownPath } from '../stores/json-book.js';
import type { Store } from '../stores/store.js';
import { classifyByIssuer, type Kind } from '../certs/kind.js';
import { accountPath, type AccountFile } from '../acme/account.js';
import { certName } from '../domains.js';
import { ImportedBook } from './imported.js';

/** Where an import writes, and which directories are which kind. */
export interface ImportTarget {
  /** The STORE the manager keeps its certificates and accounts in (the certbot folder itself is read with fs). */
  store: Store;
  productionDirectoryUrl: string;
  stagingDirectoryUrl: string;
}

/** One line per thing looked at, for the CLI and the log; never a key. */
export interface ImportReport {
  certs: Array<{ name: string; from: string; outcome: 'imported' | 'already imported' | 'kept' | 'superseded'; kind?: Kind; notAfter?: string; why?: string }>;
  accounts: Array<{ directoryUrl: string; from: string; outcome: 'imported' | 'key only' | 'kept'; why?: string }>;
  /** What could not be imported, each naming the file and what to do. */
  problems: string[];
}

/** The store cannot be read at all (missing, not a certbot store, unreadable). */
export class CertbotStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertbotStoreError';
  }
}

// Let's Encrypt's own directories, ACME v1 included: a store from before 2021 may still name v1 in renewal confs.
const LE_DIRECTORIES: Record<string, Kind> = {
  'https://acme-v02.api.letsencrypt.org/directory': 'production',
  'https://acme-v01.api.letsencrypt.org/directory': 'production',
  'https://acme-staging-v02.api.letsencrypt.org/directory': 'staging',
  'https://acme-staging.api.letsencrypt.org/directory': 'staging',
};
// certbot reuses an ACME v1 account for v2 (certbot's constants.LE_REUSE_SERVERS): its folder may be under v1's path.
const LE_REUSED: Record<string, string> = {
  'https://acme-v02.api.letsencrypt.org/directory': 'https://acme-v01.api.letsencrypt.org/directory',
  'https://acme-staging-v02.api.letsencrypt.org/directory': 'https://acme-staging.api.letsencrypt.org/directory',
};
// accounts/<host>/<path>/<id>/: deep enough for any directory path, shallow enough to stop on a symlink loop.
const MAX_ACCOUNT_DEPTH = 8;

const norm = (url: string) => url.trim().replace(/\/+$/, '');

/** The kind of the certificates a directory issues: the configured ones by their role, Let's Encrypt's by name. */
export function kindOfServer(server: string, target: Pick<ImportTarget, 'productionDirectoryUrl' | 'stagingDirectoryUrl'>): Kind | undefined {
  const s = norm(server);
  if (s === norm(target.productionDirectoryUrl)) return 'production';
  if (s === norm(target.stagingDirectoryUrl)) return 'staging';
  return LE_DIRECTORIES[s];
}

function why(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'missing';
  if (code === 'EACCES' || code === 'EPERM') {
    return "permission denied: certbot (the seed ran as root) leaves keys readable by root only; give certwrangler's user read access to the store (the image runs as uid 1000: chown -R 1000 on the volume's folder)";
  }
  return (e as Error).message;
}

async function readText(path: string): Promise<string> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch (e) {
    // A live/ link into archive/ that is not there: say where it points.
    const target = await fs.readlink(path).catch(() => undefined);
    throw new Error(`${path}: ${why(e)}${target ? ` (a link to ${target})` : ''}`);
  }
}

async function isDir(path: string): Promise<boolean> {
  return fs.stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** certbot's renewal conf (configobj): the few `key = value` lines we need, from any section. */
export function parseRenewalConf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m && !(m[1]! in out)) out[m[1]!] = m[2]!;
  }
  return out;
}

/** A private key as certwrangler keeps keys: PKCS#8 PEM. Takes a PEM key or a JWK (certbot's private_key.json). */
export function privateKeyPem(text: string, path: string): string {
  let key: KeyObject;
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith('{') || path.endsWith('.json')) {
      const jwk = JSON.parse(trimmed) as { kty?: unknown; d?: unknown };
      if (typeof jwk.kty !== 'string' || typeof jwk.d !== 'string') throw new Error('a JWK with "kty" and the private part "d" is expected');
      key = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    } else {
      if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)) throw new Error('no PRIVATE KEY block');
      key = createPrivateKey(trimmed);
    }
  } catch (e) {
    // The parser's message may quote the input: only ours is shown.
    const detail = e instanceof SyntaxError ? 'not valid JSON' : /JWK with|no PRIVATE KEY/.test((e as Error).message) ? (e as Error).message : 'the key does not parse';
    throw new Error(`${path}: not a private key (${detail}); accepted: a PEM private key (RSA or EC) or a private JWK such as certbot's private_key.json`);
  }
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec') {
    throw new Error(`${path}: a ${key.asymmetricKeyType} key; ACME accounts take RSA or EC (P-256, P-384) keys`);
  }
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

interface Lineage {
  lineage: string;
  dir: string;
  bundle: CertBundle;
  info: CertInfo;
  server: string;
  accountId: string | undefined;
  /** Fingerprints of every version in the lineage's archive/ folder, the live one included. */
  history: string[];
}

/**
 * The fingerprints of every certificate certbot kept for a lineage (archive/<lineage>/certN.pem). The seed pushed
 * after each certbot run and never checked the answer, so Rancher may still hold an older version than live/: that
 * copy came from this store too, and is certwrangler's to replace. What cannot be read is left out.
 */
async function archiveFingerprints(certPath: string): Promise<string[]> {
  try {
    const dir = dirname(await fs.realpath(certPath));
    const files = (await fs.readdir(dir)).filter((f) => /^cert\d+\.pem$/.test(f));
    const out: string[] = [];
    for (const f of files) {
      try {
        out.push(parseCert(splitPemChain(await fs.readFile(join(dir, f), 'utf8'))[0] ?? '').fingerprint);
      } catch {
        /* not a certificate: not one the seed could have pushed */
      }
    }
    return out;
  } catch {
    return [];
  }
}

async function readLineage(root: string, lineage: string, target: Pick<ImportTarget, 'productionDirectoryUrl' | 'stagingDirectoryUrl'>, known: Record<string, Kind>): Promise<Lineage> {
  const dir = join(root, 'live', lineage);
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'privkey.pem');
  const [certText, key] = await Promise.all([readText(certPath), readText(keyPath)]);
  const leaf = splitPemChain(certText)[0];
  if (!leaf) throw new Error(`${certPath}: no PEM certificate in it`);
  let info: CertInfo;
  try {
    info = parseCert(leaf);
  } catch (e) {
    throw new Error(`${certPath}: not a readable certificate (${(e as Error).message})`);
  }
  let matches: boolean;
  try {
    matches = keyMatchesCert(key, leaf);
  } catch {
    throw new Error(`${keyPath}: not a readable private key`);
  }
  if (!matches) throw new Error(`${keyPath} does not match ${certPath}: the lineage is half-written; let certbot finish it, or remove the lineage`);
  // The seed wanted all four files; chain.pem missing is taken from fullchain.pem, which holds the leaf first.
  let chain: string;
  try {
    chain = await readText(join(dir, 'chain.pem'));
  } catch {
    chain = splitPemChain(await readText(join(dir, 'fullchain.pem'))).slice(1).join('');
  }
  // Intermediates only (certwrangler's CertBundle): a leaf in the chain would be served twice.
  chain = splitPemChain(chain).filter((c) => c.trim() !== leaf.trim()).join('');
  const confPath = join(root, 'renewal', `${lineage}.conf`);
  const conf = parseRenewalConf(await readText(confPath));
  const server = conf.server;
  if (!server) throw new Error(`${confPath}: no "server =" line, so the directory that issued ${certPath} is unknown`);
  const kind = info.selfSigned ? 'self-signed' : (kindOfServer(server, target) ?? classifyByIssuer(info, known));
  if (kind === undefined) {
    throw new Error(`${confPath}: server ${server} is neither ACME_DIRECTORY_URL (${target.productionDirectoryUrl}) nor ACME_STAGING_DIRECTORY_URL (${target.stagingDirectoryUrl}), so the kind of ${certPath} is unknown; set the variable that names it`);
  }
  const names = info.commonName && info.names.includes(info.commonName) ? [info.commonName, ...info.names.filter((n) => n !== info.commonName)] : info.names;
  if (names.length === 0) throw new Error(`${certPath}: the certificate names no DNS name`);
  return {
    lineage,
    dir,
    info,
    server,
    accountId: conf.account,
    history: [...new Set([info.fingerprint, ...(await archiveFingerprints(certPath))])],
    bundle: { name: certName(names), names, key, cert: leaf, chain, kind, directoryUrl: server },
  };
}

interface CertbotAccount {
  /** The directory, rebuilt from the folder: accounts/<host[:port]>/<path>/<id> → https://<host[:port]>/<path>. */
  server: string;
  id: string;
  dir: string;
}

async function findAccounts(root: string): Promise<CertbotAccount[]> {
  const base = join(root, 'accounts');
  const out: CertbotAccount[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > MAX_ACCOUNT_DEPTH) return;
    let entries: string[];
    try {
      entries = await fs.readdir(dir);
    } catch (e) {
      throw new Error(`${dir}: ${why(e)}`);
    }
    if (entries.includes('private_key.json') || entries.includes('regr.json')) {
      const rel = relative(base, dir).split(sep);
      out.push({ server: `https://${rel.slice(0, -1).join('/')}`, id: rel.at(-1)!, dir });
      return;
    }
    for (const e of entries) if (await isDir(join(dir, e))) await walk(join(dir, e), depth + 1);
  };
  if (await isDir(base)) await walk(base, 0);
  return out;
}

/** The account folder certbot used for a directory, or undefined when it kept none; throws when it cannot tell. */
function accountFor(directoryUrl: string, accounts: CertbotAccount[], lineages: Lineage[]): CertbotAccount | undefined {
  const d = norm(directoryUrl);
  const servers = [d, LE_REUSED[d]].filter((s): s is string => s !== undefined);
  const candidates = accounts.filter((a) => servers.includes(norm(a.server)));
  if (candidates.length <= 1) return candidates[0];
  // Several: the one the lineages of this directory renew with.
  const uses = (a: CertbotAccount) => lineages.filter((l) => l.accountId === a.id && servers.includes(norm(l.server))).length;
  const ranked = [...candidates].sort((a, b) => uses(b) - uses(a));
  if (uses(ranked[0]!) > uses(ranked[1]!)) return ranked[0];
  throw new Error(`${join(candidates[0]!.dir, '..')}: certbot holds ${candidates.length} accounts for ${directoryUrl} (${candidates.map((a) => a.id).join(', ')}) and no renewal conf says which is in use; move the unused ones out of the store`);
}

async function readAccount(account: CertbotAccount, directoryUrl: string): Promise<{ key: string; url: string }> {
  const keyPath = join(account.dir, 'private_key.json');
  const regrPath = join(account.dir, 'regr.json');
  const key = privateKeyPem(await readText(keyPath), keyPath);
  let uri: unknown;
  try {
    uri = (JSON.parse(await readText(regrPath)) as { uri?: unknown }).uri;
  } catch (e) {
    throw new Error(e instanceof SyntaxError ? `${regrPath}: not valid JSON` : (e as Error).message);
  }
  if (typeof uri !== 'string' || !/^https?:\/\//.test(uri)) throw new Error(`${regrPath}: no "uri" (the account's URL) in it`);
  // An ACME v1 account's URL (acme-v01…/acme/reg/…) is not its v2 URL: keep the key, and the CA answers with
  // the account that key already has when it is registered (RFC 8555 §7.3.1), so still no new account.
  const url = new URL(uri).origin === new URL(directoryUrl).origin ? uri : '';
  return { key, url };
}

/** certbot has made an account or a certificate here (its live/ or accounts/ folder exists). */
export async function holdsCertbotState(root: string): Promise<boolean> {
  return (await isDir(join(root, 'live'))) || (await isDir(join(root, 'accounts')));
}

/**
 * Imports certbot's store at `root` into the STORE (DATA_DIR on files). Throws CertbotStoreError when `root` is not a readable certbot
 * store; otherwise imports what it can and lists the rest in `problems`.
 */
export async function importCertbot(root: string, target: ImportTarget, now = new Date()): Promise<ImportReport> {
  const report: ImportReport = { certs: [], accounts: [], problems: [] };
  let top: string[];
  try {
    top = await fs.readdir(root);
  } catch (e) {
    throw new CertbotStoreError(`certbot store ${root}: ${why(e)}`);
  }
  if (top.length > 0 && !top.includes('live') && !top.includes('accounts')) {
    throw new CertbotStoreError(`certbot store ${root} holds neither live/ nor accounts/: it is not certbot's config dir (the seed's LETSENCRYPT_ROOTDIR, /etc/letsencrypt on its letsencrypt-certs volume)`);
  }
  const store = new LocalStore(target.store);
  await store.init();
  const known = await store.knownIssuers();

  // Certificates: every lineage, the newest of those that share a name (certbot's x and x-0001).
  const lineages: Lineage[] = [];
  const liveDir = join(root, 'live');
  const names = (await isDir(liveDir))
    ? (
        await fs.readdir(liveDir).catch((e: unknown) => {
          throw new CertbotStoreError(`certbot store ${liveDir}: ${why(e)}`);
        })
      ).sort()
    : [];
  for (const lineage of names) {
    if (!(await isDir(join(liveDir, lineage)))) continue; // live/README
    try {
      lineages.push(await readLineage(root, lineage, target, known));
    } catch (e) {
      report.problems.push((e as Error).message);
    }
  }
  const byName = new Map<string, Lineage>();
  for (const l of lineages) {
    const seen = byName.get(l.bundle.name);
    if (!seen || l.info.notAfter > seen.info.notAfter) {
      if (seen) report.certs.push({ name: seen.bundle.name, from: seen.dir, outcome: 'superseded', why: `${l.dir} is newer` });
      byName.set(l.bundle.name, l);
    } else report.certs.push({ name: l.bundle.name, from: l.dir, outcome: 'superseded', why: `${seen.dir} is newer` });
  }
  const book = new ImportedBook(target.store);
  const record: Array<{ name: string; fingerprint: string; from: string }> = [];
  // Every version certbot kept under a name, from every lineage of that name, is the seed's and so ours to replace.
  const owned = (name: string) => {
    for (const l of lineages.filter((x) => x.bundle.name === name)) for (const fingerprint of l.history) record.push({ name, fingerprint, from: l.dir });
  };
  for (const l of byName.values()) {
    const { name } = l.bundle;
    const row = { name, from: l.dir, kind: l.bundle.kind, notAfter: l.info.notAfter.toISOString() };
    const local = await store.read(name);
    if (local.state === 'present' && local.info.fingerprint === l.info.fingerprint) {
      owned(name);
      report.certs.push({ ...row, outcome: 'already imported' });
      continue;
    }
    if (local.state !== 'absent') {
      // Never overwrite: what certwrangler holds is its own (or a broken copy an operator must look at).
      report.certs.push({ ...row, outcome: 'kept', why: local.state === 'present' ? `certwrangler's own copy (expires ${local.info.notAfter.toISOString()}) is kept` : `${store.shown(name)} is unreadable (${local.error}); left as it is` });
      continue;
    }
    try {
      await store.write(l.bundle, { issuedAt: l.info.notBefore });
      if (l.bundle.kind !== 'self-signed') await store.rememberIssuer(l.info.issuer, l.bundle.kind);
    } catch (e) {
      report.problems.push(`${l.dir}: cannot be written to ${store.shown(name)} (${(e as Error).message})`);
      continue;
    }
    owned(name);
    report.certs.push({ ...row, outcome: 'imported' });
  }
  await book.record(record, now);

  // Accounts: one per configured directory, the one certbot used there.
  let accounts: CertbotAccount[] = [];
  try {
    accounts = await findAccounts(root);
  } catch (e) {
    report.problems.push((e as Error).message);
  }
  for (const directoryUrl of new Set([target.productionDirectoryUrl, target.stagingDirectoryUrl])) {
    try {
      const account = accountFor(directoryUrl, accounts, lineages);
      if (!account) continue;
      const { key, url } = await readAccount(account, directoryUrl);
      const outcome = await writeAccount(target.store, directoryUrl, key, url, now);
      report.accounts.push({ directoryUrl, from: account.dir, ...outcome });
    } catch (e) {
      report.problems.push((e as Error).message);
    }
  }
  return report;
}

/**
 * Writes the store's account for a directory unless it has one. `url` '' keeps the key alone: AccountBook then
 * registers with it, and the CA answers with the account the key already has.
 */
export async function writeAccount(store: Store, directoryUrl: string, key: string, url: string, now = new Date()): Promise<{ outcome: 'imported' | 'key only' | 'kept'; why?: string }> {
  const path = accountPath(directoryUrl);
  const shown = shownPath(store, path);
  const existing = await store.read(path).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${shown}: ${why(e)}`);
  });
  if (existing !== undefined) return { outcome: 'kept', why: `${shown} exists; certwrangler's account is kept` };
  const record: AccountFile = { directoryUrl, url, key, createdAt: url ? now.toISOString() : '' };
  await store.write(path, `${JSON.stringify(record, null, 2)}\n`, { secret: true });
  return url ? { outcome: 'imported' } : { outcome: 'key only', why: 'the CA is asked for the account this key has when it is first used' };
}

/** ACME_ACCOUNT_KEY_FILE: the key (PEM or JWK) becomes the account key of every configured directory without one. */
export async function importAccountKeyFile(path: string, target: ImportTarget): Promise<ImportReport> {
  const report: ImportReport = { certs: [], accounts: [], problems: [] };
  const key = privateKeyPem(await readText(path), path);
  for (const directoryUrl of new Set([target.productionDirectoryUrl, target.stagingDirectoryUrl])) {
    report.accounts.push({ directoryUrl, from: path, ...(await writeAccount(target.store, directoryUrl, key, '')) });
  }
  return report;
}

/** One line per row of the report, for the CLI and the log. */
export function describeImport(report: ImportReport): string[] {
  const lines: string[] = [];
  for (const c of report.certs) {
    const detail = [c.kind, c.notAfter ? `expires ${c.notAfter}` : undefined, c.why].filter(Boolean).join(', ');
    lines.push(`certificate ${c.name} from ${c.from}: ${c.outcome}${detail ? ` (${detail})` : ''}`);
  }
  for (const a of report.accounts) lines.push(`account for ${a.directoryUrl} from ${a.from}: ${a.outcome}${a.why ? ` (${a.why})` : ''}`);
  for (const p of report.problems) lines.push(`not imported: ${p}`);
  return lines;
}
