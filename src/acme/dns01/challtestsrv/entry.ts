/** The challtestsrv provider's registry entry: CHALLTESTSRV_URL read and checked, the provider built from it. */
import { parseUrl } from '../../../env.js';
import type { DnsProviderEntry } from '../provider.js';
import { ChalltestsrvProvider } from './challtestsrv.js';

export const challtestsrv: DnsProviderEntry<{ url: string }> = {
  /** CHALLTESTSRV_URL: its management API. */
  fromEnv: (env) => ({ url: parseUrl(env, 'CHALLTESTSRV_URL', 'http://127.0.0.1:8055') }),
  create: (options, timeoutMs) => new ChalltestsrvProvider(options.url, timeoutMs),
  secrets: [],
};
