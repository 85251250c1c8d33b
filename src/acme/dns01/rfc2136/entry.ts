/** The rfc2136 provider's registry entry: RFC2136_* read and checked, the provider built from them. */
import { ConfigError, parseInt, splitHostPort, str, type Env } from '../../../env.js';
import type { DnsProviderEntry } from '../provider.js';
import { TSIG_ALGORITHMS, type TsigKey } from './message.js';
import { Rfc2136Provider, type Rfc2136Options } from './rfc2136.js';

/** lego and cert-manager spell algorithms differently (hmac-sha256., HMACSHA256): all are taken. */
function parseTsigAlgorithm(env: Env): TsigKey['algorithm'] {
  const v = str(env, 'RFC2136_TSIG_ALGORITHM');
  if (v === undefined) return 'hmac-sha256';
  const l = v.toLowerCase().replace(/\.$/, '').replace(/\.sig-alg\.reg\.int$/, '').replace(/^hmac(?=[a-z])/, 'hmac-');
  const found = TSIG_ALGORITHMS.find((a) => a === l);
  if (!found) throw new ConfigError('RFC2136_TSIG_ALGORITHM', v, TSIG_ALGORITHMS.join(', '));
  return found;
}

/** RFC2136_*: the primary that takes TSIG-signed updates. */
function fromEnv(env: Env): Omit<Rfc2136Options, 'timeoutMs'> {
  if (str(env, 'RFC2136_NAMESERVER') === undefined) throw new ConfigError('RFC2136_NAMESERVER', '', 'the primary DNS server that takes dynamic updates, as host or host:port (DNS_PROVIDER=rfc2136)');
  const nameserver = str(env, 'RFC2136_NAMESERVER')!;
  const at = splitHostPort(nameserver);
  if (!at || at.host === '') throw new ConfigError('RFC2136_NAMESERVER', nameserver, 'the DNS server as host, host:port, ip:port or [ipv6]:port, e.g. 192.0.2.53 or ns1.example.com:53');
  const keyName = str(env, 'RFC2136_TSIG_KEY');
  const secret = str(env, 'RFC2136_TSIG_SECRET');
  if ((keyName === undefined) !== (secret === undefined)) {
    const missing = keyName === undefined ? 'RFC2136_TSIG_KEY' : 'RFC2136_TSIG_SECRET';
    throw new ConfigError(missing, '', 'set both RFC2136_TSIG_KEY (the key name) and RFC2136_TSIG_SECRET (its base64 secret), or neither for unsigned updates', missing === 'RFC2136_TSIG_SECRET');
  }
  if (secret !== undefined && (!/^[A-Za-z0-9+/]+={0,2}$/.test(secret) || Buffer.from(secret, 'base64').length === 0)) {
    throw new ConfigError('RFC2136_TSIG_SECRET', secret, 'the key\'s secret in base64, as in the `secret "…";` line tsig-keygen prints', true);
  }
  const zone = str(env, 'RFC2136_ZONE')?.replace(/\.$/, '').toLowerCase();
  return {
    host: at.host,
    port: at.port ?? 53,
    zone,
    ttl: parseInt(env, 'RFC2136_TTL', 1, 86_400) ?? 60,
    tsig: keyName !== undefined && secret !== undefined ? { name: keyName.replace(/\.$/, ''), algorithm: parseTsigAlgorithm(env), secret: Buffer.from(secret, 'base64') } : undefined,
  };
}

export const rfc2136: DnsProviderEntry<Omit<Rfc2136Options, 'timeoutMs'>> = {
  fromEnv,
  create: (options, timeoutMs) => new Rfc2136Provider({ ...options, timeoutMs }),
  secrets: ['RFC2136_TSIG_SECRET'],
};
