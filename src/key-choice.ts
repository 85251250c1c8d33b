/**
 * Which private key an order uses (issue 17 item 4). By default every order has a fresh key, as
 * cert-manager now does (its rotationPolicy: Always): a key that leaked lives no longer than its certificate.
 * REUSE_KEY=true, or a service's `<HOSTS_LABEL>.reuse_key=true`, keeps the key across renewals for those who
 * pin it (DANE/TLSA "3 1 1" records, HPKP-style pins), unless keeping it would be wrong: no key of ours yet
 * (a placeholder's key is shared by every placeholder), the key type asked for changed, or the certificate
 * was revoked for keyCompromise.
 */
import { createPrivateKey } from 'node:crypto';
import type { Config } from './config.js';
import type { KeyType } from './certs/keys.js';
import type { Decided } from './observe.js';

export interface KeyChoice {
  keyType: KeyType;
  /** The stored key to order with; undefined: a fresh one. */
  reuse?: string;
  /** Why a key that REUSE_KEY would keep is not kept (logged). */
  fresh?: string;
}

/** The key type of a PEM private key, when it is one certwrangler makes. */
export function keyTypeOf(pem: string): KeyType | undefined {
  const k = createPrivateKey(pem);
  const d = k.asymmetricKeyDetails;
  if (k.asymmetricKeyType === 'rsa' && (d?.modulusLength === 2048 || d?.modulusLength === 3072 || d?.modulusLength === 4096)) return `rsa-${d.modulusLength}` as KeyType;
  if (k.asymmetricKeyType === 'ec' && d?.namedCurve === 'prime256v1') return 'ecdsa-p256';
  if (k.asymmetricKeyType === 'ec' && d?.namedCurve === 'secp384r1') return 'ecdsa-p384';
  return undefined;
}

export function chooseKey(o: Pick<Decided, 'wanted' | 'local' | 'localCopy' | 'input'>, config: Pick<Config, 'keyType' | 'reuseKey'>): KeyChoice {
  const keyType = o.wanted.keyType ?? config.keyType;
  if (!(o.wanted.reuseKey ?? config.reuseKey)) return { keyType };
  const { local, localCopy } = o;
  if (local.state !== 'present' || localCopy.state !== 'present' || localCopy.kind === 'self-signed' || local.info.selfSigned) return { keyType };
  if (!local.keyMatches) return { keyType, fresh: 'the stored key does not match its certificate' };
  if (o.input.revoked?.reason === 'keyCompromise') return { keyType, fresh: 'the certificate was revoked for keyCompromise: its key is never used again' };
  let stored: KeyType | undefined;
  try {
    stored = keyTypeOf(local.bundle.key);
  } catch {
    return { keyType, fresh: 'the stored key does not parse' };
  }
  if (stored !== keyType) return { keyType, fresh: `the stored key is ${stored ?? 'of another type'}, and ${keyType} is asked for` };
  return { keyType, reuse: local.bundle.key };
}
