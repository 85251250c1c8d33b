/**
 * The exec provider's registry entry: EXEC_PATH and EXEC_TIMEOUT read and checked, the provider built from them.
 * Apart from exec.ts, and imported only through providers.ts: exec.ts imports hooks.ts, which reads the secret
 * list the registry builds, so the registry must load before this file for that cycle to resolve.
 */
import { ConfigError, parseDuration, str } from '../../../env.js';
import type { DnsProviderEntry } from '../provider.js';
import { ExecProvider } from './exec.js';

export interface ExecOptions {
  /** The script, called as `<path> present|cleanup <fqdn.> <value>`. */
  path: string;
  /** EXEC_TIMEOUT, the script's own bound (not ACME_TIMEOUT). */
  timeoutMs: number;
}

export const exec: DnsProviderEntry<ExecOptions> = {
  fromEnv(env) {
    const path = str(env, 'EXEC_PATH');
    if (!path) throw new ConfigError('EXEC_PATH', '', 'the script that adds and removes TXT records, called as `<script> present|cleanup <fqdn.> <value>` (DNS_PROVIDER=exec)');
    return { path, timeoutMs: parseDuration(env, 'EXEC_TIMEOUT', 60_000, 100) };
  },
  create: (options) => new ExecProvider(options.path, options.timeoutMs),
  secrets: [],
};
