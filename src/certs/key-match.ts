/**
 * Whether an RSA private key is the certificate's, from the DER alone (issue 22 item 1). The profile of a first
 * pass over 10,000 certificates found half its CPU in node:crypto's createPrivateKey (OpenSSL 3's decoders) and
 * in parsing each certificate a second time to compare. OpenSSL's own check (X509_check_private_key, which
 * X509Certificate.checkPrivateKey calls) compares the public halves: for RSA the modulus and the public
 * exponent. This compares the same two integers, as encoded in the certificate's SubjectPublicKeyInfo
 * (RFC 5280 §4.1.2.7, RFC 8017 A.1.1) and in the key (PKCS#1 RSAPrivateKey, RFC 8017 A.1.2, bare or inside
 * PKCS#8, RFC 5208 §5). DER integers are minimal, so equal numbers are equal bytes.
 * Anything else (an EC key, an encrypted key, a form not recognised) is `undefined`: the caller asks OpenSSL.
 */
import { childrenOf, contentOf, oidOf, OID_EC_PUBLIC_KEY, OID_RSA_ENCRYPTION, readTlv, strictBase64, TAG, tbsParts, type Tlv } from './der.js';

const { SEQUENCE, INTEGER, OCTET_STRING, BIT_STRING, OID } = TAG;

/**
 * The body of the file's FIRST private key block, when that block has `label`: OpenSSL and every TLS server
 * load the first one, so a later block of this label beside another kind first must not be the one compared.
 * undefined (ask OpenSSL) when the first block has another label, or its base64 is not canonical.
 */
function pemBody(pem: string, label: string): Buffer | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----([^-]*)-----END ([A-Z0-9 ]*PRIVATE KEY)-----/.exec(pem);
  if (!m || m[1] !== label || m[3] !== label) return undefined;
  return strictBase64(m[2]!);
}

function seq(buf: Buffer, t: Tlv | undefined): Tlv[] {
  if (!t || t.tag !== SEQUENCE) throw new Error('not a SEQUENCE');
  return childrenOf(buf, t);
}

/** n and e of a PKCS#1 RSAPrivateKey: SEQUENCE { version, modulus, publicExponent, … }. */
function pkcs1Public(der: Buffer): [Buffer, Buffer] {
  const [version, n, e] = seq(der, readTlv(der, 0));
  if (version?.tag !== INTEGER || n?.tag !== INTEGER || e?.tag !== INTEGER) throw new Error('not an RSAPrivateKey');
  return [contentOf(der, n), contentOf(der, e)];
}

function keyPublic(keyPem: string): [Buffer, Buffer] | undefined {
  const pkcs1 = pemBody(keyPem, 'RSA PRIVATE KEY');
  if (pkcs1) return pkcs1Public(pkcs1);
  const pkcs8 = pemBody(keyPem, 'PRIVATE KEY');
  if (!pkcs8) return undefined;
  // PrivateKeyInfo: SEQUENCE { version, AlgorithmIdentifier, OCTET STRING privateKey, … }
  const [, alg, key] = seq(pkcs8, readTlv(pkcs8, 0));
  const oid = seq(pkcs8, alg)[0];
  if (oid?.tag !== OID || oidOf(contentOf(pkcs8, oid)) !== OID_RSA_ENCRYPTION || key?.tag !== OCTET_STRING) return undefined;
  return pkcs1Public(contentOf(pkcs8, key));
}

function certPublic(certDer: Buffer): [Buffer, Buffer] | undefined {
  const spki = tbsParts(certDer).spki;
  const [alg, bits] = seq(spki, readTlv(spki, 0));
  const oid = seq(spki, alg)[0];
  if (oid?.tag !== OID || oidOf(contentOf(spki, oid)) !== OID_RSA_ENCRYPTION || bits?.tag !== BIT_STRING) return undefined;
  // The BIT STRING's first content byte counts unused bits (0); RSAPublicKey ::= SEQUENCE { modulus, publicExponent }.
  const rsa = contentOf(spki, bits).subarray(1);
  const [n, e] = seq(rsa, readTlv(rsa, 0));
  if (n?.tag !== INTEGER || e?.tag !== INTEGER) return undefined;
  return [contentOf(rsa, n), contentOf(rsa, e)];
}


/**
 * The curve and public point of an EC private key: SEC1 ECPrivateKey (RFC 5915 §3: SEQUENCE { version 1,
 * privateKey OCTET STRING, [0] curve OID, [1] publicKey BIT STRING }), bare or inside PKCS#8 (whose
 * AlgorithmIdentifier names the curve). undefined when the key carries no public point: OpenSSL derives it.
 */
function ecPublic(keyPem: string): [string, Buffer] | undefined {
  let der = pemBody(keyPem, 'EC PRIVATE KEY');
  let curve: string | undefined;
  if (!der) {
    const pkcs8 = pemBody(keyPem, 'PRIVATE KEY');
    if (!pkcs8) return undefined;
    const [, alg, key] = seq(pkcs8, readTlv(pkcs8, 0));
    const [oid, params] = seq(pkcs8, alg);
    if (oid?.tag !== OID || oidOf(contentOf(pkcs8, oid)) !== OID_EC_PUBLIC_KEY || params?.tag !== OID || key?.tag !== OCTET_STRING) return undefined;
    curve = oidOf(contentOf(pkcs8, params));
    der = contentOf(pkcs8, key);
  }
  const [version, , ...tagged] = seq(der, readTlv(der, 0));
  if (version?.tag !== INTEGER) return undefined;
  const params = tagged.find((t) => t.tag === 0xa0);
  const inner = params ? childrenOf(der, params)[0] : undefined;
  if (inner) {
    if (inner.tag !== OID) return undefined;
    const named = oidOf(contentOf(der, inner));
    if (curve !== undefined && curve !== named) return undefined;
    curve = named;
  }
  const pub = tagged.find((t) => t.tag === 0xa1);
  const bits = pub ? childrenOf(der, pub)[0] : undefined;
  if (curve === undefined || bits?.tag !== BIT_STRING) return undefined;
  return [curve, contentOf(der, bits)];
}

/** The curve and the public key's BIT STRING content of an EC certificate's SubjectPublicKeyInfo. */
function certEcPublic(certDer: Buffer): [string, Buffer] | undefined {
  const spki = tbsParts(certDer).spki;
  const [alg, bits] = seq(spki, readTlv(spki, 0));
  const [oid, params] = seq(spki, alg);
  if (oid?.tag !== OID || oidOf(contentOf(spki, oid)) !== OID_EC_PUBLIC_KEY || params?.tag !== OID || bits?.tag !== BIT_STRING) return undefined;
  return [oidOf(contentOf(spki, params)), contentOf(spki, bits)];
}

/**
 * An EC key against its certificate (issue 22: an ECDSA fleet paid OpenSSL's key and certificate decoders, about
 * 1 ms, per certificate per cold pass). OpenSSL compares the curves and the public points; so does this, when
 * both points are uncompressed (0x04: equal points are equal bytes). Anything else is undefined: ask OpenSSL.
 */
export function ecKeyMatchesCert(keyPem: string, certDer: Buffer): boolean | undefined {
  try {
    const key = ecPublic(keyPem);
    if (!key) return undefined;
    const cert = certEcPublic(certDer);
    if (!cert) return false;
    // The BIT STRING's first byte counts unused bits (0), then the point.
    const [kp, cp] = [key[1], cert[1]];
    if (kp[0] !== 0 || cp[0] !== 0 || kp[1] !== 0x04 || cp[1] !== 0x04) return undefined;
    return key[0] === cert[0] && kp.equals(cp);
  } catch {
    return undefined;
  }
}

/** RSA, then EC: true or false when the DER tells; undefined when OpenSSL must. */
export function keyMatchesCertFast(keyPem: string, certDer: Buffer): boolean | undefined {
  return rsaKeyMatchesCert(keyPem, certDer) ?? ecKeyMatchesCert(keyPem, certDer);
}

/** true or false for an RSA key and certificate; undefined when this cannot tell (ask OpenSSL then). */
export function rsaKeyMatchesCert(keyPem: string, certDer: Buffer): boolean | undefined {
  try {
    const key = keyPublic(keyPem);
    if (!key) return undefined;
    const cert = certPublic(certDer);
    // An RSA key beside a certificate for another kind of key is no match.
    if (!cert) return false;
    return key[0].equals(cert[0]) && key[1].equals(cert[1]);
  } catch {
    return undefined;
  }
}
