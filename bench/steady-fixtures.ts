/**
 * Fixtures of the steady-state bench, fast enough for 100,000 certificates (issue 22 item 3).
 *
 * Certificates: one self-signed certificate is built by createSelfSigned (RSA-2048, the shared placeholder key,
 * 365 days) for a name of fixed width; each fixture is that certificate with the name and the serial replaced
 * in the DER (same lengths) and signed again by node:crypto. Every fixture is a valid self-signed certificate,
 * as before, at about 1 ms each instead of forge's several. They are cached by size under
 * $BENCH_FIXTURES (default: the temp folder), so a 100,000 run pays for them once.
 *
 * Stores: `files` writes DATA_DIR's layout (src/certs/store.ts) without fsync: the bench needs the files, not
 * their durability, and 100,000 × 6 fsyncs took the better part of an hour here. The manager then reads them
 * as it reads any store, and the bench checks it finds every certificate up to date.
 * `redis`: the hook for the Redis store of issue 20 (being written by another helper): it must write the same
 * certificates through that store and return the manager's environment (STORE=redis, REDIS_URL, …).
 */
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSelfSigned } from '../src/certs/placeholder.js';
import { readTlv, childrenOf } from '../src/certs/der.js';

export interface SteadyCertificates {
  /** The one key every fixture certificate is for (PEM). */
  key: string;
  names: string[];
  /** PEM of each, in the order of `names`. */
  certs: string[];
}

const TEMPLATE_NAME = 's0000000.steady-example.com';
const nameOf = (i: number) => `s${String(i).padStart(7, '0')}.steady-example.com`;
// A serial no real certificate has, to find it in the template's DER.
const TEMPLATE_SERIAL = Buffer.from('5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a', 'hex');

function toPem(der: Buffer): string {
  const b64 = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

function replaceAll(buf: Buffer, from: Buffer, to: Buffer): void {
  for (let at = buf.indexOf(from); at >= 0; at = buf.indexOf(from, at + to.length)) to.copy(buf, at);
}

async function build(n: number): Promise<SteadyCertificates> {
  const t = await createSelfSigned([TEMPLATE_NAME], { sharedKey: true, days: 365, serialBytes: TEMPLATE_SERIAL });
  const key = createPrivateKey(t.key);
  const template = Buffer.from(t.cert.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const [tbs, , sig] = childrenOf(template, readTlv(template, 0));
  const names: string[] = [];
  const certs: string[] = [];
  for (let i = 0; i < n; i++) {
    const der = Buffer.from(template);
    const name = nameOf(i);
    replaceAll(der, Buffer.from(TEMPLATE_NAME), Buffer.from(name));
    const serial = randomBytes(TEMPLATE_SERIAL.length);
    serial[0] = (serial[0]! & 0x7f) || 0x01;
    replaceAll(der, TEMPLATE_SERIAL, serial);
    // The BIT STRING's first content byte counts unused bits (0); the RSA signature follows, same length.
    sign('sha256', der.subarray(tbs!.start, tbs!.end), key).copy(der, sig!.contentStart + 1);
    names.push(name);
    certs.push(toPem(der));
  }
  return { key: t.key, names, certs };
}

/** `n` fixture certificates, from the cache when it holds them. */
export async function steadyCertificates(n: number): Promise<SteadyCertificates> {
  const dir = process.env.BENCH_FIXTURES ?? join(tmpdir(), 'certwrangler-bench-fixtures');
  const file = join(dir, `steady-${n}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as SteadyCertificates;
  const made = await build(n);
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify(made));
  return made;
}

export const FIXTURE_DIRECTORY = 'https://127.0.0.1:9/directory';

/** DATA_DIR's layout as LocalStore.write leaves it (src/certs/store.ts), without fsync. */
async function writeFilesStore(dataDir: string, f: SteadyCertificates): Promise<NodeJS.ProcessEnv> {
  await mkdir(join(dataDir, 'certs'), { recursive: true, mode: 0o700 });
  const issuedAt = new Date().toISOString();
  let next = 0;
  const worker = async () => {
    while (next < f.names.length) {
      const i = next++;
      const name = f.names[i]!;
      const dir = join(dataDir, 'certs', name);
      await mkdir(dir, { mode: 0o700 });
      const meta = { name, names: [name], kind: 'production', directoryUrl: FIXTURE_DIRECTORY, issuedAt };
      await writeFile(join(dir, 'privkey.pem'), f.key, { mode: 0o600 });
      await Promise.all([
        writeFile(join(dir, 'cert.pem'), f.certs[i]!, { mode: 0o644 }),
        writeFile(join(dir, 'chain.pem'), '', { mode: 0o644 }),
        writeFile(join(dir, 'fullchain.pem'), f.certs[i]!, { mode: 0o644 }),
        writeFile(join(dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o644 }),
      ]);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  await chmod(dataDir, 0o700);
  return { DATA_DIR: dataDir };
}

export type BenchStore = 'files' | 'redis';

/** Writes the fixtures into a store of the kind asked for; returns the manager's environment for it. */
export const fixtureStores: Record<BenchStore, (dataDir: string, f: SteadyCertificates) => Promise<NodeJS.ProcessEnv>> = {
  files: writeFilesStore,
  redis: () => {
    throw new Error('bench steady: STORE=redis is not wired yet: the Redis store (issue 20) is being written; write the fixtures through it here and return { STORE: "redis", REDIS_URL: … }');
  },
};
