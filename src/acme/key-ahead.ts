/**
 * Order keys made ahead of their order. A first order waits for its placeholder to be stored and pushed (a
 * placeholder that cannot be stored means the certificate could not be either), and its RSA key (about 80 ms of
 * CPU for RSA-2048, on the thread pool) used to be started only once the order was: the key then held back the
 * first answered challenge. Started while the placeholder is stored and pushed, it is ready when the order is.
 *
 * A key made ahead is held in memory only (a promise of its PEM) until its order takes it; it is never logged,
 * and it reaches the disk only as an order's key does (the store's atomic writes, mode 0600). One that no order
 * takes (the ledger said no, an order left by an earlier run was carried on with its own key) is dropped at the
 * end of the pass. At most `limit` are made in a pass (ACME_CONCURRENCY: the orders that start at once), so a
 * first pass over many names does not spend its CPU on keys while its placeholders still wait.
 */
import { generatePrivateKey, type KeyType } from '../certs/keys.js';

export class KeysAhead {
  private readonly ahead = new Map<string, { keyType: KeyType; key: Promise<string> }>();
  private started = 0;

  constructor(
    private readonly limit: number,
    private readonly generate: (type: KeyType) => Promise<string> = generatePrivateKey,
  ) {}

  /** Starts a key for the order of certificate `name`, unless this pass made its share already. */
  start(name: string, keyType: KeyType): void {
    if (this.started >= this.limit || this.ahead.has(name)) return;
    this.started += 1;
    const key = this.generate(keyType);
    key.catch(() => undefined); // a failure is the order's to report, when it takes the key
    this.ahead.set(name, { keyType, key });
  }

  /** The key made ahead for `name`, if one of `keyType` was: it is the order's from now on (handed out once). */
  take(name: string, keyType: KeyType): Promise<string> | undefined {
    const a = this.ahead.get(name);
    if (!a) return undefined;
    this.ahead.delete(name);
    return a.keyType === keyType ? a.key : undefined;
  }

  /** Forgets the keys no order took (end of the pass). */
  clear(): void {
    this.ahead.clear();
  }
}
