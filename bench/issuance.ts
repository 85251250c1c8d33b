/**
 * Issuance: 20 single-name certificates, and one certificate with 10 names, from a local Pebble
 * (PEBBLE_VA_NOSLEEP=1, no nonce rejection), by certwrangler (`manager --once`), lego and certbot in the
 * same run, against the same Pebble and the same webroot. Each tool starts from an empty state directory,
 * so every run registers an account and orders every certificate.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startPebble } from '../test/support/pebble.js';
import { freePort } from '../test/support/ports.js';
import { createWebroot, listenWebroot } from '../src/webroot/server.js';
import { median, timed, type Timing } from './lib.js';

export interface IssuanceResult {
  tool: string;
  workload: string;
  wallMs: number;
  cpuMs: number;
  runs: number;
}

const CLI = resolve('dist/cli.js');

export async function benchIssuance(opts: { runs: number; tools: string[]; base: string }): Promise<IssuanceResult[]> {
  const base = opts.base;
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const webroot = join(base, 'www');
  const httpPort = await freePort();
  const server = await listenWebroot(createWebroot(webroot), httpPort, '127.0.0.1');
  const pebble = await startPebble({ dir: join(base, 'pebble'), httpPort, nonceReject: 0 });
  const env = { ...process.env, LEGO_CA_CERTIFICATES: pebble.caBundlePath, REQUESTS_CA_BUNDLE: pebble.caBundlePath };
  let seq = 0;
  const workloads = {
    '20 × 1 name': (tag: string) => Array.from({ length: 20 }, (_, i) => [`c${i}.${tag}.bench.example`]),
    '1 × 10 names': (tag: string) => [Array.from({ length: 10 }, (_, i) => `n${i}.${tag}.bench.example`)],
  };

  const tools: Record<string, (certs: string[][], dir: string) => string> = {
    certwrangler: (certs, dir) =>
      [
        `DOMAINS='${certs.map((c) => c.join(',')).join(';')}'`,
        `STAGING=false ACME_DIRECTORY_URL=${pebble.directoryUrl} ACME_CA_BUNDLE=${pebble.caBundlePath}`,
        `DATA_DIR=${dir}/data CERTS_DIR=${dir}/live WEBROOT_DIR=${webroot} LOG_LEVEL=warn ORCHESTRATOR=files`,
        `node ${CLI} manager --once`,
      ].join(' '),
    // lego and certbot issue one certificate per invocation, which is how a script drives them for many.
    lego: (certs, dir) =>
      certs
        .map((c) => `lego --server ${pebble.directoryUrl} --accept-tos --email bench@example.com --path ${dir} --http --http.webroot ${webroot} ${c.map((n) => `-d ${n}`).join(' ')} run`)
        .join(' && '),
    certbot: (certs, dir) =>
      certs
        .map(
          (c) =>
            `certbot certonly --non-interactive --agree-tos -m bench@example.com --server ${pebble.directoryUrl} --config-dir ${dir}/etc --work-dir ${dir}/work --logs-dir ${dir}/logs --webroot -w ${webroot} ${c.map((n) => `-d ${n}`).join(' ')}`,
        )
        .join(' && '),
  };

  const out: IssuanceResult[] = [];
  try {
    for (const [workload, names] of Object.entries(workloads)) {
      const samples = new Map<string, Timing[]>();
      // Interleave the tools run by run, so drift on a shared machine hits all of them alike.
      for (let run = 0; run < opts.runs; run++) {
        for (const tool of opts.tools) {
          const dir = join(base, `${tool}-${++seq}`);
          const t = await timed(tools[tool]!(names(`r${seq}`), dir), env);
          if (t.code !== 0) throw new Error(`${tool} failed (${workload}, run ${run + 1}):\n${t.output.slice(-3000)}`);
          samples.set(tool, [...(samples.get(tool) ?? []), t]);
        }
      }
      for (const [tool, ts] of samples) {
        out.push({ tool, workload, wallMs: median(ts.map((t) => t.wallMs)), cpuMs: median(ts.map((t) => t.cpuMs)), runs: ts.length });
      }
    }
  } finally {
    await pebble.stop();
    server.close();
  }
  return out;
}
