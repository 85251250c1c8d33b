/** The Rancher orchestrator as the integration tests build it against the simulator: short timeouts, no logs. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertBundle } from '../../src/certs/store.js';
import { DEFAULT_HOSTS_LABEL } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import type { RancherOptions } from '../../src/orchestrators/rancher/rancher.js';
import type { RancherSim } from './rancher-sim.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

export function simClientOptions(sim: RancherSim, extra: Partial<RancherOptions> = {}): RancherOptions {
  return {
    url: sim.url,
    accessKey: sim.accessKey,
    secretKey: sim.secretKey,
    timeoutMs: 2000,
    retryBaseMs: 10,
    settleTimeoutMs: 2000,
    hostsLabel: DEFAULT_HOSTS_LABEL,
    readLabels: true,
    domains: { dnsProvider: false, onePerName: false, allowedSuffixes: [] },
    store: new FilesStore(mkdtempSync(join(tmpdir(), 'cw-rancher-client-'))),
    log: createLogger('silent'),
    ...extra,
  };
}

/** A self-signed key and certificate as the bundle a push takes. */
export const selfSignedBundle = (name: string, p: { cert: string; key: string }): CertBundle => ({ name, names: [name], key: p.key, cert: p.cert, chain: '', kind: 'self-signed', directoryUrl: '' });
