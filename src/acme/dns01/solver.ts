/** DNS-01: the TXT record at `_acme-challenge.<name>` (or where its CNAME points), visible before validation. */
import type { ChallengeSolver } from '../challenge.js';
import type { DnsProvider } from './provider.js';
import { challengeTarget, waitForTxt, type LookupOptions } from './propagation.js';

export class Dns01Solver implements ChallengeSolver {
  readonly type = 'dns-01';
  /** identifier|value → where the record was written, for cleanup and shutdown. */
  private readonly presented = new Map<string, { fqdn: string; value: string }>();

  constructor(
    private readonly provider: DnsProvider,
    private readonly lookup: LookupOptions,
  ) {}

  async present(identifier: string, _token: string, value: string): Promise<void> {
    // A wildcard's authorization is for the bare name: *.example.com is validated at _acme-challenge.example.com.
    const name = identifier.replace(/^\*\./, '');
    const fqdn = await challengeTarget(`_acme-challenge.${name}`, this.lookup.resolvers);
    this.presented.set(`${identifier}|${value}`, { fqdn, value });
    await this.provider.present(fqdn, value);
    await waitForTxt(fqdn, value, this.lookup);
  }

  async cleanup(identifier: string, _token: string, value: string): Promise<void> {
    const key = `${identifier}|${value}`;
    const at = this.presented.get(key);
    if (!at) return;
    this.presented.delete(key);
    await this.provider.cleanup(at.fqdn, at.value);
  }

  async cleanupAll(): Promise<void> {
    const all = [...this.presented.values()];
    this.presented.clear();
    await Promise.all(all.map((r) => this.provider.cleanup(r.fqdn, r.value).catch(() => undefined)));
  }
}
