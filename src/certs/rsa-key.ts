import { createPrivateKey, createPublicKey, generatePrime, sign, verify, type KeyObject } from 'node:crypto';

/**
 * An RSA key built from two primes that OpenSSL generates (`crypto.generatePrime`, 64 Miller–Rabin
 * rounds), by the method of FIPS 186-4 B.3.3 ("random probable primes"), which is what OpenSSL 1.1.1 and
 * Go's crypto/rsa do.
 *
 * Why not `crypto.generateKeyPair('rsa')`: OpenSSL 3.0 makes 2-prime keys of 2048 bits and more with
 * e = 65537 by SP 800-56B's auxiliary-prime method (FIPS 186-4 B.3.6), which costs about 2.5 times the
 * CPU here (RSA-2048: ~0.2 s against ~0.08 s). A pass that orders many certificates is bound by that CPU.
 *
 * Every condition of B.3.3 is checked, and the finished key must sign and verify before it is returned,
 * so an arithmetic mistake can never hand out a key that does not work.
 */

const E = 65537n;

function primeOf(bits: number): Promise<bigint> {
  return new Promise((resolve, reject) => {
    // OpenSSL sets the top two bits, so p·q has exactly 2·bits bits and p, q ≥ √2·2^(bits−1) (B.3.3 step 4.4).
    generatePrime(bits, { bigint: true }, (err, prime) => (err ? reject(err) : resolve(prime as bigint)));
  });
}

/** A prime p with gcd(p − 1, e) = 1 (B.3.3 step 4.5); with e prime, that is p mod e ≠ 1. */
async function rsaPrime(bits: number): Promise<bigint> {
  for (;;) {
    const p = await primeOf(bits);
    if (p % E !== 1n) return p;
  }
}

function gcd(a: bigint, b: bigint): bigint {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** a⁻¹ mod m, for gcd(a, m) = 1. */
function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [a % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new Error('rsa-key: not invertible');
  return ((s0 % m) + m) % m;
}

function bitLength(n: bigint): number {
  return n.toString(2).length;
}

function b64u(n: bigint): string {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, 'hex').toString('base64url');
}

/** Assembles the key from p and q, or returns undefined when they fail a condition and must be redrawn. */
export function rsaKeyFromPrimes(p: bigint, q: bigint, modulusBits: number): KeyObject | undefined {
  // p > q, as OpenSSL's own keys have always been: a CRT implementation that assumes it gets what it expects.
  if (p < q) [p, q] = [q, p];
  const half = modulusBits / 2;
  if (p % E === 1n || q % E === 1n) return undefined;
  // B.3.3 step 5.4: p and q far apart, so that n cannot be factored by Fermat's method.
  if (p - q <= 2n ** BigInt(half - 100)) return undefined;
  const n = p * q;
  if (bitLength(n) !== modulusBits) return undefined;
  const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
  const d = modInverse(E, lambda);
  // B.3.1 criterion 3: d > 2^(nlen/2).
  if (d <= 2n ** BigInt(half)) return undefined;
  return createPrivateKey({
    format: 'jwk',
    key: {
      kty: 'RSA',
      n: b64u(n),
      e: b64u(E),
      d: b64u(d),
      p: b64u(p),
      q: b64u(q),
      dp: b64u(d % (p - 1n)),
      dq: b64u(d % (q - 1n)),
      qi: b64u(modInverse(q, p)),
    },
  });
}

/** Assembles a key from two primes, or undefined to draw again (`rsaKeyFromPrimes`; tests pass their own). */
export type RsaKeyBuilder = (p: bigint, q: bigint, modulusBits: number) => KeyObject | undefined;

/** A new RSA private key of `modulusBits` bits (2048, 3072 or 4096), e = 65537. */
export async function generateRsaKey(modulusBits: number, build: RsaKeyBuilder = rsaKeyFromPrimes): Promise<KeyObject> {
  for (;;) {
    // The two primes are drawn at once, on two threads of the pool.
    const [p, q] = await Promise.all([rsaPrime(modulusBits / 2), rsaPrime(modulusBits / 2)]);
    const key = build(p, q, modulusBits);
    if (!key) continue;
    const probe = Buffer.from('certwrangler rsa pairwise check');
    if (!verify('sha256', probe, createPublicKey(key), sign('sha256', probe, key))) {
      throw new Error('rsa-key: the new key failed its sign/verify check; no key was written');
    }
    return key;
  }
}
