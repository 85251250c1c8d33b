/**
 * What a balancer serves for one name: a TLS handshake with SNI, the certificate it presents, and nothing
 * else (no HTTP request). The chain is not validated: the question is which certificate, not whether it is
 * trusted (a staging or self-signed one must be found as well).
 */
import tls from 'node:tls';
import { isIP } from '../ip.js';
import { splitHostPort } from '../env.js';

export interface Served {
  /** SHA-256 of the DER, colon hex in lower case (as CertInfo.fingerprint). */
  fingerprint: string;
  subject: string;
  notAfter: string;
}

/** SNI for a name; a wildcard is asked for with a label of our own under it. */
export function sniFor(name: string): string {
  return name.startsWith('*.') ? `certwrangler-verify.${name.slice(2)}` : name;
}

/** The certificate `address` ("host:port") presents for `name`, or why none could be read. */
export function servedAt(address: string, name: string, timeoutMs: number): Promise<Served | { error: string }> {
  const at = splitHostPort(address);
  if (!at || at.port === undefined) return Promise.resolve({ error: `${address} is not host:port` });
  return new Promise((resolve) => {
    const servername = sniFor(name);
    const socket = tls.connect({ host: at.host, port: at.port, servername: isIP(servername) ? '' : servername, rejectUnauthorized: false, timeout: timeoutMs });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    const done = (r: Served | { error: string }) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.once('secureConnect', () => {
      const x = socket.getPeerX509Certificate();
      if (!x) return done({ error: 'presented no certificate' });
      done({ fingerprint: x.fingerprint256.toLowerCase(), subject: x.subject.replace(/\n/g, ', '), notAfter: new Date(x.validTo).toISOString() });
    });
    socket.once('timeout', () => socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    socket.once('error', (e: NodeJS.ErrnoException) => done({ error: e.code === 'ECONNREFUSED' ? 'connection refused' : e.code === 'ETIMEDOUT' ? 'timed out' : e.message }));
  });
}
