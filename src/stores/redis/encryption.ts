/**
 * STORE_ENCRYPTION_KEY: private keys encrypted at rest in Redis (issue 20 item 1), AES-256-GCM, with the key's id
 * stored beside each value so that a manager given no key, or another key, says so instead of reading garbage.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { ConfigError, str, type Env } from '../../env.js';

export const ENCRYPTION_SECRETS = ['STORE_ENCRYPTION_KEY'];

/** AES-256: 32 bytes. GCM's standard 96-bit IV and 128-bit tag (NIST SP 800-38D §5.2.1.1, §5.2.1.2). */
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** The value's format version, so a later format can be read beside this one. */
const FORMAT = 'enc:v1';

export interface EncryptionKey {
  key: Buffer;
  /** A short hash of the key: tells which key a value was sealed with, and reveals nothing of the key. */
  id: string;
}

export function keyId(key: Buffer): string {
  return createHash('sha256').update('certwrangler store key id\0').update(key).digest('hex').slice(0, 12);
}

/** STORE_ENCRYPTION_KEY: 32 bytes as 64 hex digits or as base64 (44 characters); undefined when unset. */
export function encryptionKeyFromEnv(env: Env): EncryptionKey | undefined {
  const v = str(env, 'STORE_ENCRYPTION_KEY');
  if (v === undefined) return undefined;
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(v)) key = Buffer.from(v, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(v)) key = Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== KEY_BYTES) {
    throw new ConfigError('STORE_ENCRYPTION_KEY', v, '32 random bytes as 64 hex digits or as base64, e.g. the output of `openssl rand -base64 32`', true);
  }
  return { key, id: keyId(key) };
}

/**
 * STORE=files keeps privkey.pem readable in DATA_DIR on purpose (hooks and balancers read it there), so a key
 * given with it would protect nothing: refused rather than silently ignored.
 */
export function refuseEncryptionKeyWithFiles(env: Env): void {
  if (str(env, 'STORE_ENCRYPTION_KEY') !== undefined) {
    throw new ConfigError('STORE_ENCRYPTION_KEY', env.STORE_ENCRYPTION_KEY, 'unset with STORE=files: DATA_DIR keeps privkey.pem in the clear (mode 0600) for hooks to read; encryption at rest is for STORE=redis', true);
  }
}

/** "enc:v1:<key id>:<iv>:<tag>:<ciphertext>", base64 parts. */
export function seal(k: EncryptionKey, plain: string): string {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', k.key, iv, { authTagLength: TAG_BYTES });
  const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
  return [FORMAT, k.id, iv.toString('base64'), c.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
}

export function isSealed(v: string): boolean {
  return v.startsWith(`${FORMAT}:`);
}

/** The key id a sealed value names. */
export function sealedKeyId(v: string): string | undefined {
  return isSealed(v) ? v.split(':')[2] : undefined;
}

/** Opens a sealed value; `what` names it in errors (the store path). */
export function open(k: EncryptionKey | undefined, v: string, what: string): string {
  const parts = v.split(':');
  const [, , id, iv, tag, ct] = parts;
  if (parts.length !== 6 || !id || iv === undefined || tag === undefined || ct === undefined) throw new Error(`store: ${what} is not a value certwrangler sealed (${FORMAT}:<key id>:<iv>:<tag>:<ciphertext>): it was changed outside certwrangler`);
  if (!k) throw new Error(`store: ${what} is encrypted with the key whose id is ${id}, and STORE_ENCRYPTION_KEY is not set: set it to that key (certwrangler refuses to run against an encrypted store without it)`);
  if (k.id !== id) throw new Error(`store: ${what} is encrypted with the key whose id is ${id}, but STORE_ENCRYPTION_KEY is another key (id ${k.id}): set STORE_ENCRYPTION_KEY to the key the store was written with`);
  try {
    const d = createDecipheriv('aes-256-gcm', k.key, Buffer.from(iv, 'base64'), { authTagLength: TAG_BYTES });
    d.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64')), d.final()]).toString('utf8');
  } catch {
    throw new Error(`store: ${what} fails its integrity check under key ${id} (AES-256-GCM): it was changed outside certwrangler; restore it or remove it so that it is issued again`);
  }
}
