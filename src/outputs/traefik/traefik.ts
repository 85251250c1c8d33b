/**
 * Traefik: one dynamic-configuration file (`tls.certificates`) for its file provider. Each entry names a
 * version's own files (never the CERTS_DIR/<name> link), so the file changes with every renewal: the file
 * provider watches the file, not the certificates it names, and reloads only when the file changes.
 */
import { writeIfChanged, type BalancerPaths, type KeptCert, type Output } from '../outputs.js';

export interface TraefikOptions {
  /** Where certwrangler writes the dynamic configuration (YAML). */
  file: string;
}

export class TraefikOutput implements Output {
  readonly name = 'traefik';

  constructor(
    private readonly opts: TraefikOptions,
    private readonly paths: BalancerPaths,
  ) {}

  render(certs: KeptCert[]): string {
    const sorted = [...certs].sort((a, b) => a.name.localeCompare(b.name));
    // JSON strings are YAML double-quoted scalars: a path needs no escaping rules of its own.
    const entries = sorted.map((c) => `    - certFile: ${JSON.stringify(this.paths.pinned(c, 'fullchain.pem'))}\n      keyFile: ${JSON.stringify(this.paths.pinned(c, 'privkey.pem'))}\n`);
    return `# Written by certwrangler for Traefik's file provider; rewritten at every renewal.\ntls:\n  certificates:${sorted.length === 0 ? ' []' : ''}\n${entries.join('')}`;
  }

  async write(certs: KeptCert[]): Promise<string[]> {
    return (await writeIfChanged(this.opts.file, this.render(certs))) ? [this.opts.file] : [];
  }
}
