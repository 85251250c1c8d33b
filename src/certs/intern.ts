/**
 * One copy of a string many certificates share (a CA's directory URL and issuer, a kind, a profile): JSON.parse
 * and the certificate parser make a new string per certificate, and the store index holds 100,000 entries
 * between passes (issue 22). Bounded: past the limit the table starts again, which costs only sharing.
 */
const LIMIT = 4096;
const held = new Map<string, string>();

export function intern<T extends string | undefined>(s: T): T {
  if (s === undefined) return s;
  const same = held.get(s);
  if (same !== undefined) return same as T;
  if (held.size >= LIMIT) held.clear();
  held.set(s, s);
  return s;
}
