/**
 * nginx: one include file per certificate, NGINX_INCLUDE_DIR/<name>.conf, holding its `ssl_certificate` and
 * `ssl_certificate_key` lines for a server block (`include /etc/nginx/certwrangler/example.com.conf;`).
 * Both name the same version's files, so a reload that reads them while a renewal is written still finds
 * a key and certificate that match; the include changes with every renewal.
 */
import { join } from 'node:path';
import { access } from 'node:fs/promises';
import { writeIfChanged, type BalancerPaths, type KeptCert, type Output } from '../outputs.js';

export interface NginxOptions {
  /** Where certwrangler writes the include files. */
  dir: string;
}

export class NginxOutput implements Output {
  readonly name = 'nginx';
  readonly perCertificate = true;

  constructor(
    private readonly opts: NginxOptions,
    private readonly paths: BalancerPaths,
  ) {}

  render(cert: KeptCert): string {
    // Quoted: nginx reads a double-quoted path whole, spaces included (BALANCER_CERTS_DIR refuses quotes).
    return [
      `# Written by certwrangler for ${cert.name}, rewritten at every renewal: include this file in the server block that serves it.`,
      `ssl_certificate "${this.paths.pinned(cert, 'fullchain.pem')}";`,
      `ssl_certificate_key "${this.paths.pinned(cert, 'privkey.pem')}";`,
      '',
    ].join('\n');
  }

  /**
   * An nginx server block includes this file by name: moving its version away would fail the next `nginx -t`,
   * and deleting the file too. So a certificate with an include is not removed until the operator deletes it.
   */
  async pins(name: string): Promise<string | undefined> {
    const path = join(this.opts.dir, `${name}.conf`);
    return access(path).then(
      () => path,
      () => undefined,
    );
  }

  async write(certs: KeptCert[]): Promise<string[]> {
    const changed: string[] = [];
    for (const c of certs) {
      const path = join(this.opts.dir, `${c.name}.conf`);
      if (await writeIfChanged(path, this.render(c))) changed.push(path);
    }
    return changed;
  }
}
