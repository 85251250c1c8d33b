/**
 * The host's public addresses for DNS upkeep: PUBLIC_IP when the operator gives them, otherwise an
 * ipify-compatible service (a GET answering the caller's address as plain text) with a fallback, one
 * for IPv4 and one for IPv6. A service that fails or answers anything but one address of its family
 * is skipped for the next; with none answering, that family is unknown and its records are left alone.
 */
import axios from 'axios';
import { isIP } from '../ip.js';
import { canonicalIp } from '../acme/dns01/provider.js';
import { shownUrl } from '../env.js';

export interface PublicAddresses {
  v4?: string;
  v6?: string;
  /** Why the IPv4 address is unknown: every service tried, and what it answered. */
  errors: string[];
  /** Why there is no IPv6 address; not an error: many hosts have none. */
  noV6?: string;
}

export interface PublicIpSource {
  /** PUBLIC_IP: fixed addresses; no service is asked. */
  fixed?: { v4?: string; v6?: string };
  /** PUBLIC_IP_URL then PUBLIC_IP_FALLBACK_URL. */
  v4Urls: string[];
  /** PUBLIC_IPV6_URL then PUBLIC_IPV6_FALLBACK_URL; empty: no AAAA upkeep. */
  v6Urls: string[];
  timeoutMs: number;
}

/** The longest answer read: an address is at most 45 characters, and a service answering a page is not one. */
const MAX_ANSWER_BYTES = 256;

async function ask(url: string, family: 4 | 6, timeoutMs: number): Promise<string> {
  const res = await axios.get<string>(url, { timeout: timeoutMs, responseType: 'text', maxRedirects: 2, maxContentLength: MAX_ANSWER_BYTES, headers: { 'User-Agent': 'certwrangler', Accept: 'text/plain' }, validateStatus: (s) => s === 200 });
  const text = String(res.data).trim();
  if (isIP(text) !== family) throw new Error(`answered ${JSON.stringify(text.slice(0, 60))}, not an IPv${family} address`);
  return canonicalIp(text);
}

async function firstAnswer(urls: string[], family: 4 | 6, timeoutMs: number, errors: string[]): Promise<string | undefined> {
  if (urls.length === 0) return undefined;
  const tried: string[] = [];
  for (const url of urls) {
    try {
      return await ask(url, family, timeoutMs);
    } catch (e) {
      const ax = e as { code?: string; response?: { status: number }; message: string };
      tried.push(`${shownUrl(url)} ${ax.response ? `answered HTTP ${ax.response.status}` : ax.code === 'ECONNABORTED' ? `gave no answer within ${timeoutMs} ms` : (ax.code ?? ax.message)}`);
    }
  }
  errors.push(`no public IPv${family} address: ${tried.join('; ')}`);
  return undefined;
}

export async function findPublicAddresses(src: PublicIpSource): Promise<PublicAddresses> {
  if (src.fixed) return { ...src.fixed, errors: [] };
  const errors: string[] = [];
  const v6Errors: string[] = [];
  const [v4, v6] = await Promise.all([firstAnswer(src.v4Urls, 4, src.timeoutMs, errors), firstAnswer(src.v6Urls, 6, src.timeoutMs, v6Errors)]);
  return { ...(v4 ? { v4 } : {}), ...(v6 ? { v6 } : {}), errors, ...(v6Errors.length > 0 ? { noV6: v6Errors.join('; ') } : {}) };
}
