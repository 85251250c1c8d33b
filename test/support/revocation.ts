/** What Pebble itself says of a certificate: its management API's /cert-status-by-serial (Pebble 2.4). */
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { Pebble } from './pebble.js';

export interface PebbleCertStatus {
  /** "Valid" or "Revoked". */
  Status: string;
  /** RFC 5280 CRLReason code, when revoked with one. */
  Reason?: number;
  RevokedAt?: string;
}

/** `serial`: decimal, as CertInfo.serialNumber holds it. */
export function pebbleCertStatus(pebble: Pebble, serial: string): Promise<PebbleCertStatus> {
  const url = `${pebble.managementUrl}/cert-status-by-serial/${BigInt(serial).toString(16)}`;
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: readFileSync(pebble.caBundlePath, 'utf8'), timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`pebble ${url}: ${res.statusCode} ${body}`));
        try {
          resolve(JSON.parse(body) as PebbleCertStatus);
        } catch (e) {
          reject(new Error(`pebble ${url}: not JSON: ${body.slice(0, 200)} (${(e as Error).message})`));
        }
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`pebble ${url}: timeout`)));
  });
}
