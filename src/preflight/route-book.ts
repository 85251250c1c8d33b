/**
 * preflight.json in the store: the certificates whose route failed its probe, with the backoff before the next
 * probe. Kept across restarts so that a crash loop does not probe (and log) every few seconds.
 */
import { JsonBook } from '../stores/json-book.js';
import type { Store } from '../stores/store.js';

export interface RouteFailure {
  failures: number;
  lastError: string;
  nextAttempt: string;
}

export type RouteBook = Record<string, RouteFailure>;

interface RouteFile {
  version: 1;
  certs: RouteBook;
}

// One book per store, so a write that changes nothing is skipped (JsonBook remembers what it wrote).
const books = new WeakMap<Store, JsonBook<RouteFile>>();

function book(store: Store): JsonBook<RouteFile> {
  let b = books.get(store);
  if (!b) books.set(store, (b = newBook(store)));
  return b;
}

function newBook(store: Store): JsonBook<RouteFile> {
  return new JsonBook<RouteFile>(store, {
    path: 'preflight.json',
    empty: () => ({ version: 1, certs: {} }),
    validate: (parsed) => {
      const data = parsed as { version?: number; certs?: RouteBook };
      if (data?.version !== 1 || typeof data.certs !== 'object' || data.certs === null) throw new Error('not version 1');
      return data as RouteFile;
    },
    indent: 1,
    unreadable: (_shown, why) => why,
    invalid: (shown, why) => (why === 'not version 1' ? `${shown} is not a version 1 preflight book; move it aside` : why),
  });
}

export async function readRouteBook(store: Store): Promise<RouteBook> {
  return (await book(store).load()).certs;
}

export async function writeRouteBook(store: Store, certs: RouteBook): Promise<void> {
  await book(store).save({ version: 1, certs });
}
