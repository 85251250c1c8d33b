/** verify.json in the store: whether the balancers serve each certificate that was pushed, by fingerprint. */
import { JsonBook } from '../stores/json-book.js';
import type { Store } from '../stores/store.js';

export interface VerifyRecord {
  fingerprint: string;
  served: boolean;
  checkedAt: string;
  detail?: string;
}

export type VerifyBook = Record<string, VerifyRecord>;

interface VerifyFile {
  version: 1;
  certs: VerifyBook;
}

// One book per store, so a write that changes nothing is skipped (JsonBook remembers what it wrote).
const books = new WeakMap<Store, JsonBook<VerifyFile>>();

function book(store: Store): JsonBook<VerifyFile> {
  let b = books.get(store);
  if (!b) books.set(store, (b = newBook(store)));
  return b;
}

function newBook(store: Store): JsonBook<VerifyFile> {
  return new JsonBook<VerifyFile>(store, {
    path: 'verify.json',
    empty: () => ({ version: 1, certs: {} }),
    validate: (parsed) => {
      const data = parsed as { version?: number; certs?: VerifyBook };
      return { version: 1, certs: data?.version === 1 && data.certs && typeof data.certs === 'object' ? data.certs : {} };
    },
    indent: 1,
    // A record of what was served is no reason to stop: the next check writes it again.
    lenient: true,
  });
}

export async function readVerifyBook(store: Store): Promise<VerifyBook> {
  return (await book(store).load()).certs;
}

export async function writeVerifyBook(store: Store, certs: VerifyBook): Promise<void> {
  await book(store).save({ version: 1, certs });
}
