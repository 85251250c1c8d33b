/**
 * Cloudflare API v4 with an API token (Zone:Read to find the zone, DNS:Edit to write the record). Every
 * answer is the envelope {success, errors, messages, result, result_info}; an error is reported with
 * Cloudflare's own codes and messages, never with the token.
 */
import axios, { type AxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import { isBusyOrDown, retryWithBackoff } from '../../../retry.js';
import { canonicalIp, type AddressRecords, type AddressType, type DnsProvider, type NameAddresses } from '../provider.js';

export interface CloudflareOptions {
  apiUrl: string;
  token: string;
  ttl: number;
  timeoutMs: number;
  /** First retry wait; tests shorten it. */
  retryBaseMs?: number;
}

interface Envelope<T> {
  success: boolean;
  errors: { code: number; message: string }[];
  result: T;
  result_info?: { page: number; per_page: number; total_pages?: number; count: number; total_count?: number };
}

interface Zone {
  id: string;
  name: string;
}

interface TxtRecord {
  id: string;
  name: string;
  content: string;
}

interface DnsRecord extends TxtRecord {
  type: string;
}

/** Cloudflare: "A record with the same settings already exists" (a POST retried after a lost answer). */
const RECORD_EXISTS = 81057;
/** Cloudflare: "Record does not exist". */
const RECORD_MISSING = 81044;
/** The zone list is read again after this long, so a zone added while certwrangler runs is found. */
const ZONE_LIST_TTL_MS = 10 * 60_000;
/** The largest page Cloudflare serves for /zones. */
const ZONES_PER_PAGE = 50;
/** A page of DNS records (Cloudflare allows more, but 100 is served everywhere); a zone is read page by page. */
const RECORDS_PER_PAGE = 100;

export class CloudflareError extends Error {
  constructor(
    message: string,
    readonly codes: number[],
  ) {
    super(message);
    this.name = 'CloudflareError';
  }
}

export class CloudflareProvider implements DnsProvider, AddressRecords {
  readonly name = 'cloudflare';
  private readonly http: AxiosInstance;
  private zoneList: { zones: Promise<Zone[]>; at: number } | undefined;
  /** fqdn|value → the record's zone and id, for cleanup. */
  private readonly records = new Map<string, { zoneId: string; id: string }>();

  constructor(private readonly opts: CloudflareOptions) {
    this.http = axios.create({
      baseURL: opts.apiUrl,
      timeout: opts.timeoutMs,
      headers: { Authorization: `Bearer ${opts.token}`, 'Content-Type': 'application/json', 'User-Agent': 'certwrangler' },
      maxRedirects: 0,
      // Cloudflare answers errors with the envelope too: a 4xx is read below, a 429 or 5xx retried first.
      validateStatus: (s) => s < 500 && s !== 429,
    });
    // 429 (1,200 requests per 5 minutes) waits for its Retry-After. A POST retried after a lost answer
    // finds its record already there (81057), which present() adopts.
    retryWithBackoff(this.http, { retries: 4, baseMs: opts.retryBaseMs ?? 1000, retryCondition: isBusyOrDown });
  }

  private async call<T>(method: 'get' | 'post' | 'patch' | 'delete', path: string, body?: unknown): Promise<Envelope<T>> {
    let res: AxiosResponse<Envelope<T>>;
    try {
      res = await this.http.request<Envelope<T>>({ method, url: path, ...(body !== undefined ? { data: body } : {}) });
    } catch (e) {
      const err = e as AxiosError<Envelope<T>>;
      if (!err.response) {
        throw new CloudflareError(`Cloudflare ${method.toUpperCase()} ${path}: ${err.code === 'ECONNABORTED' ? `no answer within ${this.opts.timeoutMs} ms` : (err.code ?? err.message)}`, []);
      }
      res = err.response; // still 429 or 5xx after the retries
    }
    const env = res.data as Envelope<T> | undefined;
    if (typeof env !== 'object' || env === null || typeof env.success !== 'boolean') {
      throw new CloudflareError(`Cloudflare ${method.toUpperCase()} ${path}: HTTP ${res.status} without Cloudflare's JSON envelope`, []);
    }
    if (!env.success || res.status >= 400) {
      const errors = Array.isArray(env.errors) ? env.errors : [];
      const said = errors.map((e) => `${e.code} ${e.message}`).join('; ') || 'no error given';
      const hint = res.status === 401 || res.status === 403 ? ' (check CLOUDFLARE_DNS_API_TOKEN: it needs Zone:Read and DNS:Edit on this zone)' : '';
      throw new CloudflareError(`Cloudflare ${method.toUpperCase()} ${path}: HTTP ${res.status}: ${said}${hint}`, errors.map((e) => e.code));
    }
    return env;
  }

  /** Every zone the token can see. Authorizations presented together share one listing. */
  private zones(fresh: boolean): Promise<Zone[]> {
    if (!fresh && this.zoneList && Date.now() - this.zoneList.at < ZONE_LIST_TTL_MS) return this.zoneList.zones;
    const listing = this.listZones();
    this.zoneList = { zones: listing, at: Date.now() };
    // A failed listing is not kept: the next certificate asks again.
    listing.catch(() => {
      if (this.zoneList?.zones === listing) this.zoneList = undefined;
    });
    return listing;
  }

  private async listZones(): Promise<Zone[]> {
    const zones: Zone[] = [];
    for (let page = 1; ; page++) {
      const env = await this.call<Zone[]>('get', `/zones?page=${page}&per_page=${ZONES_PER_PAGE}`);
      if (!Array.isArray(env.result)) throw new CloudflareError('Cloudflare GET /zones: result is not a list', []);
      zones.push(...env.result.map((z) => ({ id: z.id, name: z.name.toLowerCase() })));
      const info = env.result_info;
      const last = info?.total_pages !== undefined ? page >= info.total_pages : env.result.length < ZONES_PER_PAGE;
      if (last || env.result.length === 0) return zones;
    }
  }

  /** The zone holding `fqdn`: the longest zone name the name ends with, walking up one label at a time. */
  private async zoneOf(fqdn: string): Promise<Zone> {
    for (const fresh of [false, true]) {
      const zones = await this.zones(fresh);
      const labels = fqdn.toLowerCase().split('.');
      for (let i = 0; i < labels.length - 1; i++) {
        const zone = zones.find((z) => z.name === labels.slice(i).join('.'));
        if (zone) return zone;
      }
    }
    throw new CloudflareError(`Cloudflare: no zone that CLOUDFLARE_DNS_API_TOKEN can read holds ${fqdn} (give the token Zone:Read on that zone)`, []);
  }

  private async find(zoneId: string, fqdn: string, value: string): Promise<TxtRecord | undefined> {
    const env = await this.call<TxtRecord[]>('get', `/zones/${zoneId}/dns_records?type=TXT&name=${encodeURIComponent(fqdn)}&per_page=100`);
    // Cloudflare may hand TXT content back in quotes.
    return (env.result ?? []).find((r) => r.content === value || r.content === `"${value}"`);
  }

  /** Every record of a zone, page by page: one listing per zone serves every managed name in it. */
  private async zoneRecords(zoneId: string, filter = ''): Promise<DnsRecord[]> {
    const out: DnsRecord[] = [];
    for (let page = 1; ; page++) {
      const env = await this.call<DnsRecord[]>('get', `/zones/${zoneId}/dns_records?page=${page}&per_page=${RECORDS_PER_PAGE}${filter}`);
      if (!Array.isArray(env.result)) throw new CloudflareError(`Cloudflare GET /zones/${zoneId}/dns_records: result is not a list`, []);
      out.push(...env.result);
      const info = env.result_info;
      const last = info?.total_pages !== undefined ? page >= info.total_pages : env.result.length < RECORDS_PER_PAGE;
      if (last || env.result.length === 0) return out;
    }
  }

  async readAddresses(fqdns: string[]): Promise<Map<string, NameAddresses>> {
    const byZone = new Map<string, string[]>();
    for (const fqdn of fqdns) {
      const zone = await this.zoneOf(fqdn);
      byZone.set(zone.id, [...(byZone.get(zone.id) ?? []), fqdn.toLowerCase()]);
    }
    const out = new Map<string, NameAddresses>();
    for (const [zoneId, names] of byZone) {
      const records = await this.zoneRecords(zoneId);
      for (const fqdn of names) {
        const at = records.filter((r) => r.name.toLowerCase() === fqdn);
        const of = (type: AddressType) => at.filter((r) => r.type === type).map((r) => canonicalIp(r.content));
        out.set(fqdn, { A: of('A'), AAAA: of('AAAA'), alias: at.some((r) => r.type === 'CNAME') });
      }
    }
    return out;
  }

  /**
   * A record already there with another address is changed in place (PATCH keeps its proxied flag, TTL and
   * comment); missing values are created and left-over ones deleted. Only `type` records of `fqdn` are touched.
   */
  async writeAddresses(fqdn: string, type: AddressType, values: string[]): Promise<void> {
    const zone = await this.zoneOf(fqdn);
    const existing = await this.zoneRecords(zone.id, `&type=${type}&name=${encodeURIComponent(fqdn)}`);
    const stale = existing.filter((r) => r.type === type && !values.includes(canonicalIp(r.content)));
    const missing = values.filter((v) => !existing.some((r) => r.type === type && canonicalIp(r.content) === v));
    for (const v of missing) {
      const reuse = stale.shift();
      if (reuse) await this.call('patch', `/zones/${zone.id}/dns_records/${reuse.id}`, { content: v });
      else await this.call('post', `/zones/${zone.id}/dns_records`, { type, name: fqdn, content: v, ttl: this.opts.ttl });
    }
    for (const r of stale) await this.call('delete', `/zones/${zone.id}/dns_records/${r.id}`);
  }

  async present(fqdn: string, value: string): Promise<void> {
    const zone = await this.zoneOf(fqdn);
    let id: string;
    try {
      const env = await this.call<TxtRecord>('post', `/zones/${zone.id}/dns_records`, { type: 'TXT', name: fqdn, content: value, ttl: this.opts.ttl });
      id = env.result.id;
    } catch (e) {
      const existing = e instanceof CloudflareError && e.codes.includes(RECORD_EXISTS) ? await this.find(zone.id, fqdn, value) : undefined;
      if (!existing) throw e;
      id = existing.id;
    }
    this.records.set(`${fqdn}|${value}`, { zoneId: zone.id, id });
  }

  async cleanup(fqdn: string, value: string): Promise<void> {
    const key = `${fqdn}|${value}`;
    let rec = this.records.get(key);
    if (!rec) {
      const zone = await this.zoneOf(fqdn);
      const found = await this.find(zone.id, fqdn, value);
      if (!found) return;
      rec = { zoneId: zone.id, id: found.id };
    }
    try {
      await this.call('delete', `/zones/${rec.zoneId}/dns_records/${rec.id}`);
    } catch (e) {
      // Already gone (removed by hand, or a retried DELETE whose first answer was lost): nothing to do.
      if (!(e instanceof CloudflareError && e.codes.includes(RECORD_MISSING))) throw e;
    }
    this.records.delete(key);
  }
}
