/**
 * ACME_DIRECTORY_URLS (issue 19 item 3): an ordered list of production CAs, the first preferred. Each CA's
 * own external account binding and CA bundle are numbered by its place in the list (ACME_EAB_KID_2,
 * ACME_EAB_HMAC_KEY_2, ACME_CA_BUNDLE_2); the unnumbered ACME_EAB_KID/ACME_EAB_HMAC_KEY are the first CA's,
 * as they are the one CA's without the list. Without ACME_DIRECTORY_URLS there is one CA,
 * ACME_DIRECTORY_URL, exactly as before.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, parseUrl, shownUrl, str, type Env } from '../env.js';

export interface Eab {
  kid: string;
  hmacKey: string;
}

export interface AcmeCa {
  directoryUrl: string;
  eab: Eab | undefined;
  /** PEM text of this CA's ACME_CA_BUNDLE_<n>, already read. */
  caBundle: string | undefined;
}

/** Reads one PEM bundle variable, or undefined when it is not set. */
export function readCaBundle(env: Env, name: string, cwd: string): string | undefined {
  const path = str(env, name);
  if (!path) return undefined;
  let pem: string;
  try {
    pem = readFileSync(resolve(cwd, path), 'utf8');
  } catch (e) {
    throw new ConfigError(name, path, `a readable PEM file (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(name, path, 'a PEM file holding at least one CERTIFICATE block');
  return pem;
}

/** One key id and HMAC key pair, both or neither. */
export function readEab(env: Env, kidName: string, keyName: string): Eab | undefined {
  const kid = str(env, kidName);
  const key = str(env, keyName);
  if (kid && !key) throw new ConfigError(keyName, '', `the base64url HMAC key your CA issued with ${kidName}`, true);
  if (key && !kid) throw new ConfigError(kidName, '', `the key identifier your CA issued with ${keyName}`);
  if (key && !/^[A-Za-z0-9_-]+={0,2}$/.test(key)) throw new ConfigError(keyName, key, 'a base64url string, as the CA issued it', true);
  return kid && key ? { kid, hmacKey: key } : undefined;
}

/**
 * The production CAs in order of preference; `single` is the one CA of ACME_DIRECTORY_URL (with
 * ACME_EAB_KID/ACME_EAB_HMAC_KEY) when ACME_DIRECTORY_URLS is not set.
 */
export function parseCas(env: Env, single: AcmeCa, cwd: string): AcmeCa[] {
  const list = str(env, 'ACME_DIRECTORY_URLS');
  if (list === undefined) return [single];
  if (str(env, 'ACME_DIRECTORY_URL') !== undefined) {
    throw new ConfigError('ACME_DIRECTORY_URL', shownUrl(env.ACME_DIRECTORY_URL!), 'unset when ACME_DIRECTORY_URLS lists the CAs (its first entry is the preferred one)');
  }
  const urls = list.split(',').map((u) => u.trim()).filter((u) => u !== '');
  if (urls.length === 0) throw new ConfigError('ACME_DIRECTORY_URLS', list, 'comma-separated ACME directory URLs, the preferred CA first');
  const seen = new Set<string>();
  return urls.map((_, i) => {
    const n = i + 1;
    // Each entry checked with the same parser, named by its place in the list.
    const directoryUrl = parseUrl({ [`ACME_DIRECTORY_URLS entry ${n}`]: urls[i] }, `ACME_DIRECTORY_URLS entry ${n}`, '');
    if (seen.has(directoryUrl)) throw new ConfigError('ACME_DIRECTORY_URLS', list, `each directory once (${shownUrl(directoryUrl)} is listed twice)`);
    seen.add(directoryUrl);
    const numbered = readEab(env, `ACME_EAB_KID_${n}`, `ACME_EAB_HMAC_KEY_${n}`);
    return {
      directoryUrl,
      eab: numbered ?? (n === 1 ? single.eab : undefined),
      caBundle: readCaBundle(env, `ACME_CA_BUNDLE_${n}`, cwd),
    };
  });
}
