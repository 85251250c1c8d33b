/**
 * Pebble's challenge test server (pebble-challtestsrv) through its management API: for local runs, the
 * demo and tests, where it is the DNS server Pebble resolves with. Its API can only clear every TXT value
 * of a name at once, and a wildcard and its apex share one name: the name is cleared when the last value
 * this process put there is cleaned up, never under a validation still running.
 */
import axios, { type AxiosInstance } from 'axios';
import type { DnsProvider } from '../provider.js';

export class ChalltestsrvProvider implements DnsProvider {
  readonly name = 'challtestsrv';
  private readonly http: AxiosInstance;

  constructor(url: string, timeoutMs: number) {
    this.http = axios.create({ baseURL: url.replace(/\/+$/, ''), timeout: timeoutMs });
  }

  private async post(path: string, body: Record<string, string>): Promise<void> {
    try {
      await this.http.post(path, body);
    } catch (e) {
      const err = e as { response?: { status: number }; code?: string; message: string };
      throw new Error(`challtestsrv ${path}: ${err.response ? `HTTP ${err.response.status}` : (err.code ?? err.message)}`);
    }
  }

  private readonly live = new Map<string, Set<string>>();

  async present(fqdn: string, value: string): Promise<void> {
    const values = this.live.get(fqdn) ?? new Set<string>();
    this.live.set(fqdn, values.add(value));
    await this.post('/set-txt', { host: `${fqdn}.`, value });
  }

  async cleanup(fqdn: string, value: string): Promise<void> {
    const values = this.live.get(fqdn);
    values?.delete(value);
    if (values && values.size > 0) return;
    this.live.delete(fqdn);
    await this.post('/clear-txt', { host: `${fqdn}.` });
  }
}
