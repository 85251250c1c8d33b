import { readFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { isIP } from 'node:net';
import cronParser from 'cron-parser';
import { certName, normaliseName, parseDomainList, type ParsedDomains } from './domains.js';
import type { AdoptList } from './adopt.js';
import { DEFAULT_NEW_ORDER_BUDGET } from './limits/ledger.js';
import { LABEL_MAX_CERTS_DEFAULT, LABEL_MAX_NAMES_DEFAULT, LABEL_MAX_NEW_PER_DAY_DEFAULT, type LabelPolicy } from './label-policy.js';
import { KEY_TYPES, type KeyType } from './certs/keys.js';
import { TSIG_ALGORITHMS, type TsigKey } from './acme/dns01/rfc2136/message.js';

export const LE_PRODUCTION = 'https://acme-v02.api.letsencrypt.org/directory';
export const LE_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';
export const DEFAULT_HOSTS_LABEL = 'com.danieldent.rancher-lets-encrypt.hosts';

export type OrchestratorName = 'files' | 'rancher';
export type Challenge = 'http-01' | 'dns-01';

export interface Config {
  domains: ParsedDomains;
  domainsOnePerName: boolean;
  staging: boolean;
  email: string | undefined;
  productionDirectoryUrl: string;
  stagingDirectoryUrl: string;
  /** External account binding (ACME_EAB_KID, ACME_EAB_HMAC_KEY) for CAs that require one. */
  eab: { kid: string; hmacKey: string } | undefined;
  /** PEM text of ACME_CA_BUNDLE, already read. */
  caBundle: string | undefined;
  orchestrator: OrchestratorName;
  cattle: { url: string; accessKey: string; secretKey: string } | undefined;
  hostsLabel: string;
  /** Read HOSTS_LABEL from the orchestrator's services (the seed's DYNAMIC_CONFIG). */
  readLabels: boolean;
  /** Timeout of each orchestrator API call (RANCHER_TIMEOUT; the seed's CONNECT_TIMEOUT). */
  orchestratorTimeoutMs: number;
  webrootDir: string;
  dataDir: string;
  certsDir: string;
  /** How long `manager --once` waits for another manager's lock on DATA_DIR (LOCK_WAIT). */
  lockWaitMs: number;
  renewBeforeDays: number | undefined;
  schedule: string;
  /** The seed's LOOP_TIME: a pass every this many seconds, instead of the cron schedule. */
  passIntervalSec: number | undefined;
  keyType: KeyType;
  acmeConcurrency: number;
  acmeTimeoutMs: number;
  /** ADOPT_EXISTING: which foreign orchestrator certificates may be taken over (DESIGN §10: never a label's). */
  adoptExisting: AdoptList;
  discoveryIntervalMs: number;
  allowedDomains: string[];
  /** NEW_ORDER_BUDGET as a fraction: the share of each rate limit new certificates from labels or the API may use. */
  newOrderBudget: number;
  /** What a label may ask for (LABEL_*, LABELS_ALLOW_DNS01): labels are untrusted input. */
  labels: LabelPolicy;
  challenge: Challenge;
  /** DNS-01: the provider and how to check the record is visible; undefined without DNS_PROVIDER. */
  dns: DnsConfig | undefined;
  onChangeCommand: string | undefined;
  onFailureCommand: string | undefined;
  hookTimeoutMs: number;
  webhook: { url: string; format: 'json' | 'slack'; timeoutMs: number } | undefined;
  /** Where the status page, API and metrics listen; undefined when STATUS_ADDR=off. */
  status: { host: string; port: number; token: string | undefined } | undefined;
  port: number;
  placeholders: boolean;
  logLevel: string;
  logFormat: 'json' | 'pretty';
}

export const DNS_PROVIDERS = ['rfc2136', 'cloudflare', 'exec', 'challtestsrv'] as const;

export interface DnsConfig {
  provider: (typeof DNS_PROVIDERS)[number];
  /** challtestsrv: its management API. */
  challtestsrvUrl: string;
  /** exec: the script, called as `<path> present|cleanup <fqdn.> <value>`. */
  execPath: string | undefined;
  execTimeoutMs: number;
  /** rfc2136: the primary that takes TSIG-signed updates. */
  rfc2136: Rfc2136Config | undefined;
  /** cloudflare: API v4 with an API token. */
  cloudflare: CloudflareConfig | undefined;
  /** Servers asked whether the record is visible ("ip" or "ip:port"); undefined: the zone's authoritative servers. */
  resolvers: string[] | undefined;
  propagationTimeoutMs: number;
}

export interface Rfc2136Config {
  host: string;
  port: number;
  zone: string | undefined;
  ttl: number;
  tsig: TsigKey | undefined;
}

export interface CloudflareConfig {
  apiUrl: string;
  token: string;
  ttl: number;
}

/** A bad environment value: names the variable, the value and what is accepted. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    value: string | undefined,
    accepted: string,
    secret = false,
  ) {
    const shown = secret ? '(hidden)' : JSON.stringify(value ?? '');
    super(`config: ${variable}=${shown} is not valid; accepted: ${accepted}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

const TRUE = ['true', '1', 'yes', 'on'];
const FALSE = ['false', '0', 'no', 'off'];

export function parseBool(env: Env, name: string, dflt: boolean): boolean {
  const v = str(env, name);
  if (v === undefined) return dflt;
  const l = v.toLowerCase();
  if (TRUE.includes(l)) return true;
  if (FALSE.includes(l)) return false;
  throw new ConfigError(name, v, 'true/false, 1/0, yes/no, on/off (any case)');
}

function parseInt(env: Env, name: string, min: number, max: number): number | undefined {
  const v = str(env, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ConfigError(name, v, `a whole number from ${min} to ${max}`);
  }
  return Number(v);
}

/**
 * LOCK_WAIT's default. A daemon holds the lock while it runs, so the wait is for another `--once` (overlapping
 * cron runs): 60 s covers a pass with a few orders, and a `--once` beside a daemon gives up within a minute.
 */
export const DEFAULT_LOCK_WAIT_MS = 60_000;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "60s", "5m", "1h", "500ms", or a bare number of seconds. */
export function parseDuration(env: Env, name: string, dfltMs: number, minMs = 1): number {
  const v = str(env, name);
  if (v === undefined) return dfltMs;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v);
  const ms = m ? Number(m[1]) * UNIT_MS[m[2] ?? 's']! : NaN;
  if (!m || !Number.isFinite(ms) || ms < minMs) {
    throw new ConfigError(name, v, `a duration such as 60s, 5m, 1h or 500ms (at least ${minMs} ms)`);
  }
  return ms;
}

function parseEnum<T extends string>(env: Env, name: string, options: readonly T[], dflt: T): T {
  const v = str(env, name);
  if (v === undefined) return dflt;
  const l = v.toLowerCase() as T;
  if (!options.includes(l)) throw new ConfigError(name, v, options.join(', '));
  return l;
}

/**
 * A URL as an error may show it: never its user and password, and with `hidePath` (a Slack webhook's path
 * is its secret) only the scheme and host. A value too broken to find those in is "(hidden)".
 */
export function shownUrl(v: string, hidePath = false): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)?(?:[^/?#]*@)?([^/?#\s]*)([\s\S]*)$/i.exec(v.trim());
  if (!m) return '(hidden)';
  const rest = hidePath ? (m[3] ? '/…' : '') : m[3]!;
  return `${m[1] ?? ''}${m[2]}${rest}`;
}

function parseUrl(env: Env, name: string, dflt: string, opts: { hidePath?: boolean } = {}): string {
  const v = str(env, name) ?? dflt;
  const bad = () => new ConfigError(name, shownUrl(v, opts.hidePath), 'an absolute http:// or https:// URL');
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw bad();
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad();
  return v;
}

/** RANCHER_TIMEOUT is a duration; the seed's CONNECT_TIMEOUT, read when it is absent, is whole seconds. */
function parseRancherTimeout(env: Env): number {
  if (str(env, 'RANCHER_TIMEOUT') === undefined && str(env, 'CONNECT_TIMEOUT') !== undefined) {
    return (parseInt(env, 'CONNECT_TIMEOUT', 1, 600) ?? 10) * 1000;
  }
  return parseDuration(env, 'RANCHER_TIMEOUT', 10_000, 100);
}

/** Twice a day at a random minute, as Let's Encrypt asks clients to spread their load. */
export function randomTwiceDaily(rand: () => number = Math.random): string {
  const minute = Math.floor(rand() * 60);
  const hour = Math.floor(rand() * 12);
  return `${minute} ${hour},${hour + 12} * * *`;
}

function parseSchedule(env: Env): string {
  const v = str(env, 'SCHEDULE');
  if (v === undefined) return randomTwiceDaily();
  try {
    cronParser.parseExpression(v);
  } catch {
    throw new ConfigError('SCHEDULE', v, 'a cron expression such as "17 3,15 * * *" (minute hour day month weekday)');
  }
  return v;
}

/** "127.0.0.1:9180", "0.0.0.0:9180", "[::1]:9180", ":9180" (all addresses), or "off". */
function parseStatus(env: Env): Config['status'] {
  const v = str(env, 'STATUS_ADDR') ?? '127.0.0.1:9180';
  if (FALSE.includes(v.toLowerCase())) return undefined;
  const at = splitHostPort(v);
  if (!at || at.port === undefined || isIP(v) === 6) throw new ConfigError('STATUS_ADDR', v, 'host:port such as 127.0.0.1:9180, 0.0.0.0:9180, [::1]:9180 or :9180, or off');
  const token = str(env, 'STATUS_TOKEN');
  if (token !== undefined && token.length < 16) throw new ConfigError('STATUS_TOKEN', token, 'at least 16 characters (e.g. openssl rand -hex 16)', true);
  return { host: at.host || '0.0.0.0', port: at.port, token };
}

/** "80%" or "80": a whole percentage from 1 to 100. */
function parseBudget(env: Env): number {
  const v = str(env, 'NEW_ORDER_BUDGET');
  if (v === undefined) return DEFAULT_NEW_ORDER_BUDGET;
  const m = /^(\d{1,3})%?$/.exec(v);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 100) {
    throw new ConfigError('NEW_ORDER_BUDGET', v, 'a percentage from 1% to 100%, e.g. 80%: the share of each Let\'s Encrypt rate limit that new certificates from labels or the API may use');
  }
  return Number(m[1]) / 100;
}

/**
 * `true` adopts every certificate of DOMAINS (what it always meant); a list names the certificates to adopt,
 * by their name (first domain). A label can never adopt: a foreign certificate's key cannot be read back.
 */
function parseAdopt(env: Env): AdoptList {
  const v = str(env, 'ADOPT_EXISTING');
  if (v === undefined || FALSE.includes(v.toLowerCase())) return { domains: false, names: [] };
  if (TRUE.includes(v.toLowerCase())) return { domains: true, names: [] };
  const names: string[] = [];
  for (const raw of v.split(/[,;]/)) {
    if (raw.trim() === '') continue;
    try {
      names.push(certName([normaliseName(raw, { allowWildcard: true })]));
    } catch (e) {
      throw new ConfigError('ADOPT_EXISTING', v, `true (every certificate of DOMAINS), false, or a comma-separated list of certificate names to take over (${(e as Error).message})`);
    }
  }
  return { domains: false, names };
}

/** Comma-separated suffixes, as ALLOWED_DOMAINS takes them ("example.com", ".example.com" or "*.example.com"). */
function parseSuffixes(env: Env, name: string): string[] | undefined {
  const v = str(env, name);
  if (v === undefined) return undefined;
  const out = v.split(',').map((s) => s.trim().toLowerCase().replace(/^\*?\./, '')).filter((s) => s !== '');
  for (const s of out) {
    if (!/^(?!-)[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(s)) throw new ConfigError(name, v, `comma-separated domain suffixes such as apps.example.com,example.org ("${s}" is not one)`);
  }
  return out;
}

/** LABEL_*: what a label may ask for (issue 15.2). LABEL_ALLOWED_DOMAINS defaults to ALLOWED_DOMAINS. */
function parseLabelPolicy(env: Env, allowedDomains: string[]): LabelPolicy {
  const own = parseSuffixes(env, 'LABEL_ALLOWED_DOMAINS');
  const stacks = str(env, 'LABEL_STACKS')
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (str(env, 'LABEL_STACKS') !== undefined && stacks!.length === 0) throw new ConfigError('LABEL_STACKS', env.LABEL_STACKS, 'comma-separated Rancher stack names or ids, e.g. web-apps,1st5');
  return {
    allowedDomains: own ?? allowedDomains,
    allowedDomainsFrom: own ? 'LABEL_ALLOWED_DOMAINS' : 'ALLOWED_DOMAINS',
    allowDns01: parseBool(env, 'LABELS_ALLOW_DNS01', false),
    maxCerts: parseInt(env, 'LABEL_MAX_CERTS', 1, 1000) ?? LABEL_MAX_CERTS_DEFAULT,
    // 100: the CA's own limit of names per certificate.
    maxNames: parseInt(env, 'LABEL_MAX_NAMES', 1, 100) ?? LABEL_MAX_NAMES_DEFAULT,
    maxNewPerDay: parseInt(env, 'LABEL_MAX_NEW_PER_DAY', 0, 1000) ?? LABEL_MAX_NEW_PER_DAY_DEFAULT,
    stacks: stacks && stacks.length > 0 ? stacks : undefined,
  };
}

function parseWebhook(env: Env): Config['webhook'] {
  if (str(env, 'WEBHOOK_URL') === undefined) return undefined;
  return {
    url: parseUrl(env, 'WEBHOOK_URL', '', { hidePath: true }),
    format: parseEnum(env, 'WEBHOOK_FORMAT', ['json', 'slack'] as const, 'json'),
    timeoutMs: parseDuration(env, 'WEBHOOK_TIMEOUT', 10_000, 100),
  };
}

/**
 * Reads every variable once. Throws ConfigError on the first bad value. Names that cannot be ordered
 * do not throw: they are returned in `domains.refused` and reported per certificate.
 */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const dns = parseDns(env);
  const challenge = parseEnum(env, 'CHALLENGE', ['http-01', 'dns-01'] as const, 'http-01');
  if (challenge === 'dns-01' && !dns) throw new ConfigError('DNS_PROVIDER', '', `one of ${DNS_PROVIDERS.join(', ')} (CHALLENGE=dns-01 needs a provider to write TXT records)`);
  const allowedDomains = (str(env, 'ALLOWED_DOMAINS') ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase().replace(/^\*?\./, ''))
    .filter((s) => s !== '');
  const domainsOnePerName = parseBool(env, 'DOMAINS_ONE_PER_NAME', false);
  const productionDirectoryUrl = parseUrl(env, 'ACME_DIRECTORY_URL', LE_PRODUCTION);
  const domains = parseDomainList(str(env, 'DOMAINS') ?? '', 'DOMAINS', {
    dnsProvider: dns !== undefined,
    onePerName: domainsOnePerName,
    allowedSuffixes: allowedDomains,
    // The operator's own names, from the operator's own CA: private names are theirs to order.
    allowReservedTlds: productionDirectoryUrl !== LE_PRODUCTION,
  });

  const cattleUrl = str(env, 'CATTLE_URL');
  const orchestrator = parseEnum(env, 'ORCHESTRATOR', ['files', 'rancher'] as const, cattleUrl ? 'rancher' : 'files');
  let cattle: Config['cattle'];
  if (orchestrator === 'rancher') {
    const url = parseUrl(env, 'CATTLE_URL', cattleUrl ?? '');
    const accessKey = str(env, 'CATTLE_ACCESS_KEY');
    const secretKey = str(env, 'CATTLE_SECRET_KEY');
    if (!accessKey) throw new ConfigError('CATTLE_ACCESS_KEY', '', 'the environment API access key (Rancher injects it for a service labelled io.rancher.container.create_agent=true, io.rancher.container.agent.role=environment)');
    if (!secretKey) throw new ConfigError('CATTLE_SECRET_KEY', '', 'the environment API secret key (injected by Rancher with CATTLE_ACCESS_KEY)', true);
    cattle = { url, accessKey, secretKey };
  }

  const dataDir = resolve(cwd, str(env, 'DATA_DIR') ?? './data');
  const webrootDir = resolve(cwd, str(env, 'WEBROOT_DIR') ?? str(env, 'CERTBOT_WEBROOT') ?? join('./data', 'webroot'));

  let caBundle: string | undefined;
  const caPath = str(env, 'ACME_CA_BUNDLE');
  if (caPath) {
    try {
      caBundle = readFileSync(resolve(cwd, caPath), 'utf8');
    } catch (e) {
      throw new ConfigError('ACME_CA_BUNDLE', caPath, `a readable PEM file (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
    if (!caBundle.includes('-----BEGIN CERTIFICATE-----')) {
      throw new ConfigError('ACME_CA_BUNDLE', caPath, 'a PEM file holding at least one CERTIFICATE block');
    }
  }

  const eabKid = str(env, 'ACME_EAB_KID');
  const eabKey = str(env, 'ACME_EAB_HMAC_KEY');
  if (eabKid && !eabKey) throw new ConfigError('ACME_EAB_HMAC_KEY', '', 'the base64url HMAC key your CA issued with ACME_EAB_KID', true);
  if (eabKey && !eabKid) throw new ConfigError('ACME_EAB_KID', '', 'the key identifier your CA issued with ACME_EAB_HMAC_KEY');
  if (eabKey && !/^[A-Za-z0-9_-]+={0,2}$/.test(eabKey)) throw new ConfigError('ACME_EAB_HMAC_KEY', eabKey, 'a base64url string, as the CA issued it', true);

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const loopTime = parseInt(env, 'LOOP_TIME', 10, 7 * 86400);

  return {
    domains,
    domainsOnePerName,
    staging: parseBool(env, 'STAGING', true),
    email: str(env, 'EMAIL') ?? str(env, 'CERTBOT_EMAIL'),
    productionDirectoryUrl,
    stagingDirectoryUrl: parseUrl(env, 'ACME_STAGING_DIRECTORY_URL', LE_STAGING),
    eab: eabKid && eabKey ? { kid: eabKid, hmacKey: eabKey } : undefined,
    caBundle,
    orchestrator,
    cattle,
    hostsLabel: str(env, 'HOSTS_LABEL') ?? DEFAULT_HOSTS_LABEL,
    readLabels: parseBool(env, 'DYNAMIC_CONFIG', true),
    orchestratorTimeoutMs: parseRancherTimeout(env),
    webrootDir,
    dataDir,
    certsDir: resolve(cwd, str(env, 'CERTS_DIR') ?? join(dataDir, 'live')),
    lockWaitMs: parseDuration(env, 'LOCK_WAIT', DEFAULT_LOCK_WAIT_MS, 0),
    renewBeforeDays: parseInt(env, 'RENEW_BEFORE_DAYS', 1, 365),
    schedule: parseSchedule(env),
    passIntervalSec: loopTime,
    keyType: parseEnum(env, 'KEY_TYPE', KEY_TYPES, 'rsa-2048'),
    acmeConcurrency: parseInt(env, 'ACME_CONCURRENCY', 1, 50) ?? 4,
    acmeTimeoutMs: parseDuration(env, 'ACME_TIMEOUT', 30_000, 100),
    adoptExisting: parseAdopt(env),
    discoveryIntervalMs: parseDuration(env, 'DISCOVERY_INTERVAL', 60_000, 1000),
    allowedDomains,
    newOrderBudget: parseBudget(env),
    labels: parseLabelPolicy(env, allowedDomains),
    challenge,
    dns,
    onChangeCommand: str(env, 'ON_CHANGE_COMMAND'),
    onFailureCommand: str(env, 'ON_FAILURE_COMMAND'),
    webhook: parseWebhook(env),
    status: parseStatus(env),
    hookTimeoutMs: parseDuration(env, 'HOOK_TIMEOUT', 60_000, 100),
    port: parseInt(env, 'PORT', 1, 65535) ?? (isRoot ? 80 : 8080),
    placeholders: parseBool(env, 'PLACEHOLDERS', true),
    logLevel: parseEnum(env, 'LOG_LEVEL', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, 'info'),
    logFormat: parseEnum(env, 'LOG_FORMAT', ['json', 'pretty'] as const, 'json'),
  };
}

function parseDns(env: Env): DnsConfig | undefined {
  if (str(env, 'DNS_PROVIDER') === undefined) return undefined;
  const provider = parseEnum(env, 'DNS_PROVIDER', DNS_PROVIDERS, 'exec');
  const execPath = str(env, 'EXEC_PATH');
  if (provider === 'exec' && !execPath) throw new ConfigError('EXEC_PATH', '', 'the script that adds and removes TXT records, called as `<script> present|cleanup <fqdn.> <value>` (DNS_PROVIDER=exec)');
  const resolvers = str(env, 'DNS_RESOLVERS')
    ?.split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  for (const r of resolvers ?? []) {
    if (!isIP(splitHostPort(r)?.host ?? '')) throw new ConfigError('DNS_RESOLVERS', env.DNS_RESOLVERS, 'comma-separated IP addresses with an optional port, e.g. 1.1.1.1,8.8.8.8:53,[2606:4700::1111]:53');
  }
  return {
    provider,
    challtestsrvUrl: parseUrl(env, 'CHALLTESTSRV_URL', 'http://127.0.0.1:8055'),
    execPath,
    execTimeoutMs: parseDuration(env, 'EXEC_TIMEOUT', 60_000, 100),
    rfc2136: provider === 'rfc2136' ? parseRfc2136(env) : undefined,
    cloudflare: provider === 'cloudflare' ? parseCloudflare(env) : undefined,
    resolvers: resolvers && resolvers.length > 0 ? resolvers : undefined,
    propagationTimeoutMs: parseDuration(env, 'DNS_PROPAGATION_TIMEOUT', 120_000, 100),
  };
}

/**
 * "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address, split; the host may be empty (":9180").
 * Undefined when it is none of these or the port is out of range.
 */
function splitHostPort(v: string): { host: string; port: number | undefined } | undefined {
  if (isIP(v) === 6) return { host: v, port: undefined };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*))(?::(\d{1,5}))?$/.exec(v);
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || (port !== undefined && (port < 1 || port > 65535))) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

/** lego and cert-manager spell algorithms differently (hmac-sha256., HMACSHA256): all are taken. */
function parseTsigAlgorithm(env: Env): TsigKey['algorithm'] {
  const v = str(env, 'RFC2136_TSIG_ALGORITHM');
  if (v === undefined) return 'hmac-sha256';
  const l = v.toLowerCase().replace(/\.$/, '').replace(/\.sig-alg\.reg\.int$/, '').replace(/^hmac(?=[a-z])/, 'hmac-');
  const found = TSIG_ALGORITHMS.find((a) => a === l);
  if (!found) throw new ConfigError('RFC2136_TSIG_ALGORITHM', v, TSIG_ALGORITHMS.join(', '));
  return found;
}

function parseRfc2136(env: Env): Rfc2136Config {
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

function parseCloudflare(env: Env): CloudflareConfig {
  const token = str(env, 'CLOUDFLARE_DNS_API_TOKEN');
  if (token === undefined) throw new ConfigError('CLOUDFLARE_DNS_API_TOKEN', '', 'an API token with Zone:Read and DNS:Edit on the zones (DNS_PROVIDER=cloudflare)', true);
  const ttl = parseInt(env, 'CLOUDFLARE_TTL', 1, 86_400) ?? 120;
  if (ttl > 1 && ttl < 30) throw new ConfigError('CLOUDFLARE_TTL', String(ttl), '1 (automatic) or 60 to 86400 seconds (30 and up on Enterprise zones)');
  return { apiUrl: parseUrl(env, 'CLOUDFLARE_API_URL', 'https://api.cloudflare.com/client/v4').replace(/\/+$/, ''), token, ttl };
}
