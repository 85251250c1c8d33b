/**
 * One ACME account per directory, created once and reused across restarts. The account URL is kept with
 * the key and handed to acme-client as `accountUrl`: calling createAccount() again for a known key makes
 * acme-client send an account update, which Pebble rejects. Registration happens once, before any order
 * starts, so parallel orders never race to register (acme-client's auto() on a fresh client does).
 */
import { createPrivateKey } from 'node:crypto';
import * as acme from 'acme-client';
import { generatePrivateKey } from '../certs/keys.js';
import { shownPath } from '../stores/json-book.js';
import type { Store } from '../stores/store.js';
import { poolNonces } from './nonces.js';

/** accounts/<directory id>/account.json in the store: what AccountBook keeps (and an import writes). Secret: it holds the key. */
export interface AccountFile {
  directoryUrl: string;
  url: string;
  key: string;
  createdAt: string;
}

// acme-client's own waits (we poll authorizations and orders ourselves, see poll.ts) start soon too:
// its default first wait is 5 s.
export const POLL = { backoffMin: 250, backoffMax: 4000, backoffAttempts: 20 };

/**
 * An acme-client Client that reuses nonces (nonces.ts) and signs with the account key parsed once:
 * acme-client hands the PEM to node:crypto for every signed request, which parses it again each time
 * (about 1 ms per request: 0.13 s of the main thread in a pass that orders 20 certificates).
 */
function newClient(opts: acme.ClientOptions): acme.Client {
  const client = poolNonces(new acme.Client(opts));
  const http = (client as unknown as { http: { accountKey: unknown } }).http;
  http.accountKey = createPrivateKey(opts.accountKey);
  return client;
}

/** "https://acme-v02.api.letsencrypt.org/directory" → "acme-v02.api.letsencrypt.org_443_directory". */
export function directoryId(directoryUrl: string): string {
  const u = new URL(directoryUrl);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  const path = u.pathname.replace(/^\/+|\/+$/g, '').replace(/[^A-Za-z0-9._-]+/g, '_');
  return `${u.hostname}_${port}${path ? `_${path}` : ''}`;
}

/** Where the account for a directory is kept: its store path. */
export function accountPath(directoryUrl: string): string {
  return `accounts/${directoryId(directoryUrl)}/account.json`;
}

export class AccountBook {
  private readonly clients = new Map<string, Promise<acme.Client>>();
  private readonly replacements = new WeakMap<acme.Client, Promise<acme.Client>>();

  constructor(
    private readonly store: Store,
    private readonly email: string | undefined,
    /**
     * Sent once, when the account is registered; a CA that requires it refuses registration without. One
     * binding for every directory, or each directory's own (ACME_DIRECTORY_URLS).
     */
    private readonly eabs?: { kid: string; hmacKey: string } | ((directoryUrl: string) => { kid: string; hmacKey: string } | undefined),
  ) {}

  private eabFor(directoryUrl: string): { kid: string; hmacKey: string } | undefined {
    return typeof this.eabs === 'function' ? this.eabs(directoryUrl) : this.eabs;
  }

  private file(directoryUrl: string): string {
    return accountPath(directoryUrl);
  }

  /** The client for a directory, registering the account the first time. Concurrent callers share one. */
  client(directoryUrl: string): Promise<acme.Client> {
    let p = this.clients.get(directoryUrl);
    if (!p) {
      p = this.load(directoryUrl);
      this.clients.set(directoryUrl, p);
      p.catch(() => this.clients.delete(directoryUrl)); // let the next pass try again
    }
    return p;
  }

  /**
   * The CA answered accountDoesNotExist for `stale` (it lost or deactivated the account): the old
   * account file is kept aside as `account.json.gone-<time>` and a new account registered. However many
   * orders noticed it together, one new account is made.
   */
  replace(directoryUrl: string, stale: acme.Client): Promise<acme.Client> {
    let p = this.replacements.get(stale);
    if (!p) {
      p = (async () => {
        const path = this.file(directoryUrl);
        if ((await this.store.stamp(path)) !== undefined) await this.store.move(path, `${path}.gone-${new Date().toISOString().replace(/[:.]/g, '')}`);
        this.clients.delete(directoryUrl);
        return this.client(directoryUrl);
      })();
      this.replacements.set(stale, p);
    }
    return p;
  }

  private async load(directoryUrl: string): Promise<acme.Client> {
    const path = this.file(directoryUrl);
    let saved: AccountFile | undefined;
    try {
      const text = await this.store.read(path);
      if (text !== undefined) saved = JSON.parse(text) as AccountFile;
    } catch (e) {
      throw new Error(`account: ${shownPath(this.store, path)} is unreadable (${(e as Error).message}); move it aside to register a new account`);
    }
    if (saved?.url && saved.key) {
      return newClient({ directoryUrl, accountKey: saved.key, accountUrl: saved.url, ...POLL });
    }
    // Keep the key we generated if registration must be retried: the CA may have created the account.
    const key = saved?.key ?? (await generatePrivateKey('ecdsa-p256'));
    if (!saved) {
      await this.store.write(path, JSON.stringify({ directoryUrl, url: '', key, createdAt: '' }), { secret: true });
    }
    const eab = this.eabFor(directoryUrl);
    const client = newClient({ directoryUrl, accountKey: key, ...POLL, ...(eab ? { externalAccountBinding: eab } : {}) });
    // A key kept without its URL (an imported one: ACME_ACCOUNT_KEY_FILE, an ACME v1 certbot account) may have an
    // account already: ask for it first (RFC 8555 §7.3.1 onlyReturnExisting), so none is made beside it.
    if (saved?.key && (await findExisting(client))) {
      const record: AccountFile = { directoryUrl, url: client.getAccountUrl(), key, createdAt: new Date().toISOString() };
      await this.store.write(path, `${JSON.stringify(record, null, 2)}\n`, { secret: true });
      return client;
    }
    try {
      await client.createAccount({
        termsOfServiceAgreed: true,
        ...(this.email ? { contact: [`mailto:${this.email}`] } : {}),
      });
    } catch (e) {
      const detail = (e as Error).message;
      // A CA such as ZeroSSL or a company CA binds accounts to one it issued: say which variables do that.
      const hint = /externalAccount|external account/i.test(detail)
        ? eab
          ? '; check ACME_EAB_KID and ACME_EAB_HMAC_KEY against what the CA issued'
          : '; this CA requires external account binding: set ACME_EAB_KID and ACME_EAB_HMAC_KEY'
        : '';
      throw new Error(`account registration at ${directoryUrl} refused: ${detail}${hint}`);
    }
    const record: AccountFile = { directoryUrl, url: client.getAccountUrl(), key, createdAt: new Date().toISOString() };
    await this.store.write(path, `${JSON.stringify(record, null, 2)}\n`, { secret: true });
    return client;
  }
}

/** The account this key already has, if any; false when the CA knows none (accountDoesNotExist) or will not say. */
async function findExisting(client: acme.Client): Promise<boolean> {
  try {
    await client.createAccount({ onlyReturnExisting: true });
    return true;
  } catch {
    // accountDoesNotExist, or a CA that refuses the lookup: registration below says what is wrong, if anything.
    return false;
  }
}
