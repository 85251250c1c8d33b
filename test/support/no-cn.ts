/**
 * Certificates without a subject Common Name, as Let's Encrypt's `tlsserver` and `shortlived` profiles
 * issue them, made with the openssl CLI the way issue 17 shows (`openssl req -x509 -subj / …`). Keys are
 * made at run time in a private temporary folder.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface MadeCert {
  cert: string;
  key: string;
}

export interface TestCa extends MadeCert {
  /** A leaf with an empty subject, its names only in subjectAltName, issued by this CA. */
  leaf(names: string[], opts?: { days?: number }): MadeCert;
}

const san = (names: string[]) => `subjectAltName=${names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}`;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed certificate with an empty subject (and so an empty issuer). */
export function selfSignedWithoutCn(names: string[], opts: { days?: number } = {}): MadeCert {
  const dir = mkdtempSync(join(tmpdir(), 'cw-nocn-'));
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-subj', '/', '-addext', san(names), '-days', String(opts.days ?? 6)]);
  return { cert: readFileSync(join(dir, 'c.pem'), 'utf8'), key: readFileSync(join(dir, 'k.pem'), 'utf8') };
}

/** A CA of the test's own whose leaves carry no CN. */
export function testCa(cn = 'certwrangler test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'cw-ca-'));
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', `/CN=${cn}`, '-days', '365']);
  let n = 0;
  return {
    cert: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    key: readFileSync(join(dir, 'ca.key'), 'utf8'),
    leaf(names, o = {}) {
      const i = n++;
      openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `l${i}.key`, '-out', `l${i}.pem`, '-subj', '/', '-addext', san(names), '-CA', 'ca.pem', '-CAkey', 'ca.key', '-days', String(o.days ?? 6)]);
      return { cert: readFileSync(join(dir, `l${i}.pem`), 'utf8'), key: readFileSync(join(dir, `l${i}.key`), 'utf8') };
    },
  };
}
