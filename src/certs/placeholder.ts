import forge from 'node-forge';
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { generatePrivateKey } from './keys.js';

// Long enough to outlive a run of failed orders with backoff (§6: up to 24 h between tries).
const PLACEHOLDER_DAYS = 90;

export interface SelfSigned {
  cert: string;
  key: string;
}

/**
 * A self-signed certificate for `names` so a balancer has something to serve before the first real one
 * arrives. The key pair comes from node:crypto (many times faster than forge's JS RSA); forge builds the
 * certificate. Always RSA-2048: what every balancer accepts.
 */
export async function createSelfSigned(
  names: string[],
  opts: { ips?: string[]; days?: number; now?: Date; organization?: string; sharedKey?: boolean; serialBytes?: Buffer } = {},
): Promise<SelfSigned> {
  const key = opts.sharedKey ? await placeholderKey() : await signingKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = key.forgePublic;
  cert.serialNumber = serialHex(opts.serialBytes ?? randomBytes(16));
  const now = opts.now ?? new Date();
  cert.validity.notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now.getTime() + (opts.days ?? PLACEHOLDER_DAYS) * 86_400_000);
  const subject = [
    { name: 'commonName', value: names[0] ?? opts.ips?.[0] ?? 'certwrangler' },
    { name: 'organizationName', value: opts.organization ?? 'certwrangler placeholder' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...names.map((value) => ({ type: 2, value })),
        ...(opts.ips ?? []).map((ip) => ({ type: 7, ip })),
      ],
    },
  ]);
  signNatively(cert, key.signer);
  return { cert: forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n'), key: key.pem };
}

/**
 * A positive serial (RFC 5280 §4.1.2.2) whose DER INTEGER is minimal: the first byte is 0x01–0x7f.
 * forge writes the hex as given, dropping one leading zero byte at most, and OpenSSL refuses a serial
 * that starts 00 00 ("illegal padding"): with only the top bit cleared, one placeholder in 65,536 was
 * unreadable, and its certificate was then not ordered in that pass.
 */
function serialHex(random: Buffer): string {
  const serial = Buffer.from(random);
  serial[0] = (serial[0]! & 0x7f) || 0x01;
  return serial.toString('hex');
}

/** A new key, parsed once for forge (the certificate's public key) and for node:crypto (the signature). */
interface SigningKey {
  pem: string;
  forgePublic: forge.pki.rsa.PublicKey;
  signer: KeyObject;
}

async function signingKey(): Promise<SigningKey> {
  const pem = await generatePrivateKey('rsa-2048');
  const k = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { pem, forgePublic: forge.pki.setRsaPublicKey(k.n, k.e), signer: createPrivateKey(pem) };
}

let sharedPlaceholderKey: Promise<SigningKey> | undefined;

/**
 * One RSA key for every placeholder this process makes. A placeholder is self-signed and trusted by
 * no one, so sharing its key hides nothing, while an RSA-2048 key costs about 0.2 s of CPU here: for a
 * first pass over many names, placeholder keys were half of all the CPU spent. Real certificates always
 * get a key of their own.
 */
function placeholderKey(): Promise<SigningKey> {
  sharedPlaceholderKey ??= signingKey();
  sharedPlaceholderKey.catch(() => (sharedPlaceholderKey = undefined));
  return sharedPlaceholderKey;
}

/**
 * What forge's `cert.sign()` does, with the RSA operation done by node:crypto: forge's pure-JS signing
 * takes about 100 ms of blocked event loop per certificate, the native one well under 1 ms.
 */
function signNatively(cert: forge.pki.Certificate, key: KeyObject): void {
  const oid = forge.pki.oids.sha256WithRSAEncryption!;
  const c = cert as forge.pki.Certificate & { md: forge.md.MessageDigest; tbsCertificate: forge.asn1.Asn1 };
  c.md = forge.md.sha256.create();
  c.signatureOid = oid;
  c.siginfo.algorithmOid = oid;
  // getTBSCertificate is public in forge but missing from its type definitions.
  c.tbsCertificate = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  const tbs = Buffer.from(forge.asn1.toDer(c.tbsCertificate).getBytes(), 'binary');
  c.signature = sign('sha256', tbs, key).toString('binary');
}
