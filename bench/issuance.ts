/**
 * Issuance: 20 single-name certificates, and one certificate with 10 names, from a local Pebble
 * (PEBBLE_VA_NOSLEEP=1, no nonce rejection), by certwrangler (`manager --once`), lego and certbot in the
 * same run, against the same Pebble and the same webroot. Each tool starts from an empty state directory,
 * so every run registers an account and orders every certificate. Every tool is told the key type: lego
 * and certbot default to ECDSA P-256 and certwrangler to RSA-2048, and an RSA key costs about a thousand
 * times the CPU of an EC one, so a comparison across key types would measure the key, not the client.
 */
import { join, resolve } from 'node:path';
import { issuanceLab } from './issuance-lab.js';
import { median, timed, type Timing } from './lib.js';

export type BenchKey = 'rsa-2048' | 'ecdsa-p256';

export interface IssuanceResult {
  tool: string;
  workload: string;
  keyType: BenchKey;
  wallMs: number;
  cpuMs: number;
  runs: number;
}

const CLI = resolve('dist/cli.js');

/** The workloads and the key types each is measured with. */
export type IssuanceWorkload = '20 × 1 name' | '1 × 10 names';

export async function benchIssuance(opts: { runs: number; tools: string[]; base: string; cases: [IssuanceWorkload, BenchKey][] }): Promise<IssuanceResult[]> {
  const base = opts.base;
  const { webroot, server, pebble } = await issuanceLab(base);
  const env = { ...process.env, LEGO_CA_CERTIFICATES: pebble.caBundlePath, REQUESTS_CA_BUNDLE: pebble.caBundlePath };
  let seq = 0;
  const workloads: Record<IssuanceWorkload, (tag: string) => string[][]> = {
    '20 × 1 name': (tag: string) => Array.from({ length: 20 }, (_, i) => [`c${i}.${tag}.bench-example.com`]),
    '1 × 10 names': (tag: string) => [Array.from({ length: 10 }, (_, i) => `n${i}.${tag}.bench-example.com`)],
  };

  const certwrangler = (certs: string[][], dir: string, key: BenchKey, extra: string) =>
    [
      `DOMAINS='${certs.map((c) => c.join(',')).join(';')}' KEY_TYPE=${key} ${extra}`,
      `STAGING=false ACME_DIRECTORY_URL=${pebble.directoryUrl} ACME_CA_BUNDLE=${pebble.caBundlePath}`,
      `DATA_DIR=${dir}/data CERTS_DIR=${dir}/live WEBROOT_DIR=${webroot} LOG_LEVEL=warn ORCHESTRATOR=files`,
      `node ${CLI} manager --once`,
    ].join(' ');
  const tools: Record<string, (certs: string[][], dir: string, key: BenchKey) => string> = {
    certwrangler: (certs, dir, key) => certwrangler(certs, dir, key, ''),
    // The same run with PLACEHOLDERS=false: without the self-signed placeholder certwrangler stores (and pushes)
    // before each first order;
    // the work certbot and lego do, so the ratio compares like with like.
    'certwrangler-no-placeholder': (certs, dir, key) => certwrangler(certs, dir, key, 'PLACEHOLDERS=false'),
    // lego and certbot issue one certificate per invocation, which is how a script drives them for many.
    lego: (certs, dir, key) =>
      certs
        .map((c) => `lego --server ${pebble.directoryUrl} --accept-tos --email bench@example.com --path ${dir} --key-type ${key === 'rsa-2048' ? 'rsa2048' : 'ec256'} --http --http.webroot ${webroot} ${c.map((n) => `-d ${n}`).join(' ')} run`)
        .join(' && '),
    certbot: (certs, dir, key) =>
      certs
        .map(
          (c) =>
            `certbot certonly --non-interactive --agree-tos -m bench@example.com --server ${pebble.directoryUrl} --config-dir ${dir}/etc --work-dir ${dir}/work --logs-dir ${dir}/logs ${key === 'rsa-2048' ? '--key-type rsa --rsa-key-size 2048' : '--key-type ecdsa --elliptic-curve secp256r1'} --webroot -w ${webroot} ${c.map((n) => `-d ${n}`).join(' ')}`,
        )
        .join(' && '),
  };

  const out: IssuanceResult[] = [];
  try {
    for (const [workload, keyType] of opts.cases) {
      const names = workloads[workload];
      const samples = new Map<string, Timing[]>();
      // Interleave the tools run by run, so drift on a shared machine hits all of them alike.
      for (let run = 0; run < opts.runs; run++) {
        for (const tool of opts.tools) {
          const dir = join(base, `${tool}-${++seq}`);
          const t = await timed(tools[tool]!(names(`r${seq}`), dir, keyType), env);
          if (t.code !== 0) throw new Error(`${tool} failed (${workload}, ${keyType}, run ${run + 1}):\n${t.output.slice(-3000)}`);
          samples.set(tool, [...(samples.get(tool) ?? []), t]);
        }
      }
      for (const [tool, ts] of samples) {
        out.push({ tool, workload, keyType, wallMs: median(ts.map((t) => t.wallMs)), cpuMs: median(ts.map((t) => t.cpuMs)), runs: ts.length });
      }
    }
  } finally {
    await pebble.stop();
    server.close();
  }
  return out;
}
