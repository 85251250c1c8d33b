/**
 * Starts a real Pebble (Let's Encrypt's test CA) and pebble-challtestsrv on free loopback ports.
 * challtestsrv is Pebble's DNS: every name resolves to 127.0.0.1, so Pebble's HTTP-01 validation
 * reaches whatever listens on `httpPort` there (our webroot). Pebble's TLS certificate is made here at
 * run time; `caBundlePath` is what ACME_CA_BUNDLE must point at.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, basename } from 'node:path';
import https from 'node:https';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { freePort } from './ports.js';

export interface Pebble {
  directoryUrl: string;
  managementUrl: string;
  caBundlePath: string;
  httpPort: number;
  /** Pebble's root for the chains it issues (management API /roots/0). */
  /** pebble-challtestsrv's management API: the DNS every name resolves through (127.0.0.1 by default). */
  dnsManagementUrl: string;
  /** pebble-challtestsrv's DNS server, "127.0.0.1:<port>" (what DNS_RESOLVERS points at). */
  dnsAddress: string;
  root(): Promise<string>;
  /** The root of chain `i` (0 the default; 1… the alternates of PEBBLE_ALTERNATE_ROOTS). */
  rootOf(i: number): Promise<string>;
  /** SIGKILL the CA alone (challtestsrv stays): it forgets every account, order and its CA keys. */
  kill(): Promise<void>;
  /** Start the CA again on the same ports, as a new CA with new root and intermediate names. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  dir: string;
  httpPort: number;
  /** PEBBLE_WFE_NONCEREJECT: percentage of nonces refused. Pebble's default when undefined. */
  nonceReject?: number;
  /** Require external account binding with this key id and base64url HMAC key. */
  eab?: { kid: string; hmacKey: string };
  /** The DNS server Pebble resolves through ("ip:port"), e.g. a test BIND; challtestsrv's when undefined. */
  dnsServer?: string;
  /** Names the CA refuses at new-order with rejectedIdentifier (Pebble's domainBlocklist). */
  domainBlocklist?: string[];
  /** PEBBLE_ALTERNATE_ROOTS: this many more chains, each to its own root, offered as alternates. */
  alternateRoots?: number;
}

function waitExit(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 2000).unref();
  });
}

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  mkdirSync(opts.dir, { recursive: true });
  const tls = await createSelfSigned(['localhost'], { ips: ['127.0.0.1'], organization: `certwrangler test pebble ${basename(opts.dir)} ${Date.now()}` });
  const certPath = join(opts.dir, 'pebble-tls.pem');
  const keyPath = join(opts.dir, 'pebble-tls.key');
  writeFileSync(certPath, tls.cert);
  writeFileSync(keyPath, tls.key, { mode: 0o600 });
  const [acmePort, mgmtPort, tlsPort, dnsPort, dnsMgmtPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const configPath = join(opts.dir, 'pebble-config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: certPath,
        privateKey: keyPath,
        httpPort: opts.httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: opts.eab !== undefined,
        ...(opts.eab ? { externalAccountMACKeys: { [opts.eab.kid]: opts.eab.hmacKey } } : {}),
        ...(opts.domainBlocklist ? { domainBlocklist: opts.domainBlocklist } : {}),
      },
    }),
  );
  const dns = spawn(
    'pebble-challtestsrv',
    ['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${dnsMgmtPort}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
    { stdio: 'ignore' },
  );
  const env: NodeJS.ProcessEnv = { ...process.env, PEBBLE_VA_NOSLEEP: '1' };
  if (opts.nonceReject !== undefined) env.PEBBLE_WFE_NONCEREJECT = String(opts.nonceReject);
  if (opts.alternateRoots !== undefined) env.PEBBLE_ALTERNATE_ROOTS = String(opts.alternateRoots);
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const managementUrl = `https://127.0.0.1:${mgmtPort}`;
  let pebble: ChildProcess;
  const spawnCa = async () => {
    const p = spawn('pebble', ['-config', configPath, '-dnsserver', opts.dnsServer ?? `127.0.0.1:${dnsPort}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    pebble = p;
    let output = '';
    p.stdout!.on('data', (b: Buffer) => (output += b));
    p.stderr!.on('data', (b: Buffer) => (output += b));
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        if ((await get(directoryUrl, tls.cert)).status === 200) return;
      } catch {
        /* not up yet */
      }
      if (p.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`pebble did not start: ${output.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    await Promise.all([waitExit(pebble), waitExit(dns)]);
  };
  await spawnCa();
  return {
    directoryUrl,
    managementUrl,
    caBundlePath: certPath,
    httpPort: opts.httpPort,
    dnsManagementUrl: `http://127.0.0.1:${dnsMgmtPort}`,
    dnsAddress: `127.0.0.1:${dnsPort}`,
    root: async () => (await get(`${managementUrl}/roots/0`, tls.cert)).body,
    rootOf: async (i) => (await get(`${managementUrl}/roots/${i}`, tls.cert)).body,
    kill: () =>
      new Promise<void>((resolve) => {
        if (pebble.exitCode !== null || pebble.signalCode !== null) return resolve();
        pebble.once('exit', () => resolve());
        pebble.kill('SIGKILL');
      }),
    start: spawnCa,
    stop,
  };
}
