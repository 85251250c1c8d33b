import { generateKeyPair, createPrivateKey, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { generateRsaKey } from './rsa-key.js';

export const KEY_TYPES = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ecdsa-p256', 'ecdsa-p384'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

const generate = promisify(generateKeyPair);

/**
 * A new private key as PEM. RSA keys are written as PKCS#1 ("RSA PRIVATE KEY") and EC keys as SEC1
 * ("EC PRIVATE KEY"): the traditional forms that every balancer, including Rancher 1.x's HAProxy, reads.
 */
export async function generatePrivateKey(type: KeyType): Promise<string> {
  if (type.startsWith('rsa-')) {
    const privateKey = await generateRsaKey(Number(type.slice(4)));
    return privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  }
  const namedCurve = type === 'ecdsa-p256' ? 'prime256v1' : 'secp384r1';
  const { privateKey } = await generate('ec', { namedCurve });
  return privateKey.export({ type: 'sec1', format: 'pem' }).toString();
}

export function loadPrivateKey(pem: string): KeyObject {
  return createPrivateKey(pem);
}
