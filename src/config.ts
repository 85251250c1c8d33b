/**
 * The core variables, each read once (DESIGN §8). A DNS provider's or an orchestrator's own variables are read by
 * its registry entry, in its folder; the parsers all share live in env.ts.
 */
import { resolve, join } from 'node:path';
import { isIP } from './ip.js';
import cronParser from 'cron-parser';
import { certName, normaliseName, parseDomainList, type ParsedDomains } from './domains.js';
import type { AdoptList } from './adopt.js';
import { DEFAULT_NEW_ORDER_BUDGET } from './limits/ledger.js';
import { PROFILE_NAME_RE } from './acme/directory.js';
import { LABEL_MAX_CERTS_DEFAULT, LABEL_MAX_NAMES_DEFAULT, LABEL_MAX_NEW_PER_DAY_DEFAULT, type LabelPolicy } from './label-policy.js';
import { KEY_TYPES, type KeyType } from './certs/keys.js';
import { DNS_PROVIDERS, dnsProviderFromEnv, type DnsProviderChoice } from './acme/dns01/providers.js';
import { ORCHESTRATORS, orchestratorFromEnv, type OrchestratorName, type OrchestratorOptions } from './orchestrators/registry.js';
import { STORES, storeFromEnv, type StoreName, type StoreOptions } from './stores/registry.js';
import { dataDirFromEnv } from './stores/files/files-store.js';
import { parseSeedSettings, type SeedSettings } from './seed-mode.js';
import { outputsFromEnv, type OutputsConfig } from './outputs/config.js';
import { tokenRedisFromEnv, type TokenRedisConfig } from './webroot/token-source.js';
import { dnsUpkeepFromEnv, type DnsUpkeepConfig } from './dns-upkeep/config.js';
import { parsePreflight, parseResolvers, type PreflightConfig } from './preflight/config.js';
import { parseVerify, type VerifyConfig } from './verify/config.js';
import { parseCas, readCaBundle, readEab, type AcmeCa } from './multica/config.js';
import { ConfigError, FALSE, TRUE, parseBool, parseDuration, parseEnum, parseInt, parseUrl, splitHostPort, str, type Env } from './env.js';

// Imported from here before env.ts and the registries took them over.
export { ConfigError, parseBool, parseDuration, shownUrl } from './env.js';
export { DNS_PROVIDERS } from './acme/dns01/providers.js';
export type { OrchestratorName } from './orchestrators/registry.js';

export const LE_PRODUCTION = 'https://acme-v02.api.letsencrypt.org/directory';
export const LE_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';
export const DEFAULT_HOSTS_LABEL = 'com.danieldent.rancher-lets-encrypt.hosts';

export type Challenge = 'http-01' | 'dns-01';

export interface Config {
  domains: ParsedDomains;
  domainsOnePerName: boolean;
  /** Seed-compatible mode and the certbot store to import (seed-mode.ts). */
  seed: SeedSettings;
  staging: boolean;
  email: string | undefined;
  productionDirectoryUrl: string;
  stagingDirectoryUrl: string;
  /** External account binding (ACME_EAB_KID, ACME_EAB_HMAC_KEY) for CAs that require one. */
  eab: { kid: string; hmacKey: string } | undefined;
  /** PEM text of ACME_CA_BUNDLE, already read: trusted for every CA (a listed CA's own ACME_CA_BUNDLE_<n> is in `cas`, for that CA only). */
  caBundle: string | undefined;
  /** The production CAs in order of preference (ACME_DIRECTORY_URLS); one, ACME_DIRECTORY_URL, without it. The first is `productionDirectoryUrl`. */
  cas: AcmeCa[];
  /** PREFERRED_CHAIN: the issuer CN of the top certificate of the chain wanted among a CA's alternates. */
  preferredChain: string | undefined;
  orchestrator: OrchestratorName;
  /** The orchestrator's own variables, as its registry entry read them (rancher: CATTLE_URL, its key, RANCHER_TIMEOUT; docker: DOCKER_*). */
  orchestratorOptions: OrchestratorOptions;
  hostsLabel: string;
  /** Read HOSTS_LABEL from the orchestrator's services (the seed's DYNAMIC_CONFIG). */
  readLabels: boolean;
  webrootDir: string;
  /** HTTP-01 tokens through Redis (STORE=redis publishes; a webroot with REDIS_URL reads): src/webroot/token-source.ts. */
  tokenRedis: TokenRedisConfig | undefined;
  /** STORE: where everything the manager keeps goes (src/stores/registry.ts; files, the default, is DATA_DIR). */
  store: StoreName;
  /** The store's own variables, as its registry entry read them (files: DATA_DIR). */
  storeOptions: StoreOptions;
  /** DATA_DIR: the files store's folder, and the default home of CERTS_DIR and the status token whatever the STORE. */
  dataDir: string;
  certsDir: string;
  /** Balancer-native files beside CERTS_DIR's (OUTPUTS, HAPROXY_*, TRAEFIK_*, NGINX_*), written by the files target. */
  outputs: OutputsConfig;
  /** How long `manager --once` waits for another manager's lock on DATA_DIR (LOCK_WAIT). */
  lockWaitMs: number;
  renewBeforeDays: number | undefined;
  schedule: string;
  /** The seed's LOOP_TIME: a pass every this many seconds, instead of the cron schedule. */
  passIntervalSec: number | undefined;
  keyType: KeyType;
  /** REUSE_KEY: a renewal keeps the certificate's key (DANE/TLSA pinning); otherwise every order has a fresh one. */
  reuseKey: boolean;
  /** What becomes of a certificate no source asks for any more (DECOMMISSION, DECOMMISSION_AFTER, REVOKE_ON_REMOVE). */
  decommission: DecommissionConfig;
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
  /** DNS_UPKEEP: keep the managed names' A/AAAA records at the public address, through the DNS provider. */
  dnsUpkeep: DnsUpkeepConfig | undefined;
  onChangeCommand: string | undefined;
  onFailureCommand: string | undefined;
  hookTimeoutMs: number;
  webhook: { url: string; format: 'json' | 'slack'; timeoutMs: number } | undefined;
  /** Where the status page, API and metrics listen; undefined when STATUS_ADDR=off. */
  status: { host: string; port: number; token: string | undefined } | undefined;
  port: number;
  placeholders: boolean;
  /** PREFLIGHT and its variables: prove each HTTP-01 route before ordering (src/preflight/). */
  preflight: PreflightConfig;
  /** VERIFY and its variables: check what the balancers serve after a push (src/verify/). */
  verify: VerifyConfig;
  /** PROFILE: the ACME profile to order (draft-ietf-acme-profiles), checked against the CA's meta.profiles. */
  profile: string | undefined;
  logLevel: string;
  logFormat: 'json' | 'pretty';
}

export interface DecommissionConfig {
  /** `keep`: served as it is and never renewed; `remove`: taken out of the orchestrator once nothing uses it. */
  mode: 'keep' | 'remove';
  /** How long it must have been unwanted before it is removed: a label that flickers (a service re-created) must not remove it. */
  afterMs: number;
  /** Revoke it (cessationOfOperation) once removed. */
  revokeOnRemove: boolean;
}

/**
 * DECOMMISSION_AFTER's default: a day, so that a service re-created, a stack upgraded or a label edited
 * by hand is back before its certificate is removed (and, with REVOKE_ON_REMOVE, revoked for good).
 */
export const DEFAULT_DECOMMISSION_AFTER_MS = 24 * 3_600_000;

/** DNS-01: the provider with its own options (read by its registry entry), and how to check a record is visible. */
export type DnsConfig = DnsProviderChoice & {
  /** Servers asked whether the record is visible ("ip" or "ip:port"); undefined: the zone's authoritative servers. */
  resolvers: string[] | undefined;
  propagationTimeoutMs: number;
};

/**
 * LOCK_WAIT's default. A daemon holds the lock while it runs, so the wait is for another `--once` (overlapping
 * cron runs): 60 s covers a pass with a few orders, and a `--once` beside a daemon gives up within a minute.
 */
export const DEFAULT_LOCK_WAIT_MS = 60_000;

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
  if (str(env, 'LABEL_STACKS') !== undefined && stacks!.length === 0) throw new ConfigError('LABEL_STACKS', env.LABEL_STACKS, 'comma-separated stack names or ids (Rancher stacks, Compose projects, Swarm stacks), e.g. web-apps,1st5');
  return {
    allowedDomains: own ?? allowedDomains,
    allowedDomainsFrom: own ? 'LABEL_ALLOWED_DOMAINS' : 'ALLOWED_DOMAINS',
    allowDns01: parseBool(env, 'LABELS_ALLOW_DNS01', false),
    maxCerts: parseInt(env, 'LABEL_MAX_CERTS', 1, 1000) ?? LABEL_MAX_CERTS_DEFAULT,
    // 100: the CA's own limit of names per certificate.
    maxNames: parseInt(env, 'LABEL_MAX_NAMES', 1, 100) ?? LABEL_MAX_NAMES_DEFAULT,
    maxNewPerDay: parseInt(env, 'LABEL_MAX_NEW_PER_DAY', 0, 1000) ?? LABEL_MAX_NEW_PER_DAY_DEFAULT,
    stacks: stacks && stacks.length > 0 ? stacks : undefined,
    // Unset: LABEL_PROFILES_DEFAULT, applied where the label is checked.
    ...(str(env, 'LABEL_PROFILES') !== undefined ? { profiles: parseProfileList(env, 'LABEL_PROFILES')! } : {}),
  };
}

function parseProfileList(env: Env, name: string): string[] | undefined {
  const v = str(env, name);
  if (v === undefined) return undefined;
  const list = v.split(',').map((p) => p.trim()).filter((p) => p !== '');
  const bad = list.find((p) => !PROFILE_NAME_RE.test(p));
  if (bad !== undefined) throw new ConfigError(name, v, 'comma-separated profile names, e.g. classic,tlsserver (or "none": labels may not choose one)');
  return list.filter((p) => p !== 'none');
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
/** A Let's Encrypt directory, by its host (a trailing slash or a path variant is still Let's Encrypt). */
function isLetsEncrypt(url: string): boolean {
  return /(^|\.)letsencrypt\.org$/.test(new URL(url).hostname);
}

export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const dns = parseDns(env);
  const challenge = parseEnum(env, 'CHALLENGE', ['http-01', 'dns-01'] as const, 'http-01');
  if (challenge === 'dns-01' && !dns) throw new ConfigError('DNS_PROVIDER', '', `one of ${DNS_PROVIDERS.join(', ')} (CHALLENGE=dns-01 needs a provider to write TXT records)`);
  const allowedDomains = (str(env, 'ALLOWED_DOMAINS') ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase().replace(/^\*?\./, ''))
    .filter((s) => s !== '');
  const seed = parseSeedSettings(env, cwd);
  // Seed-compatible mode reads DOMAINS and labels as the seed did: one certificate per name.
  const domainsOnePerName = parseBool(env, 'DOMAINS_ONE_PER_NAME', seed.active);
  const eab = readEab(env, 'ACME_EAB_KID', 'ACME_EAB_HMAC_KEY');
  const cas = parseCas(env, { directoryUrl: parseUrl(env, 'ACME_DIRECTORY_URL', LE_PRODUCTION), eab, caBundle: undefined }, cwd);
  const productionDirectoryUrl = cas[0]!.directoryUrl;
  const domains = parseDomainList(str(env, 'DOMAINS') ?? '', 'DOMAINS', {
    dnsProvider: dns !== undefined,
    onePerName: domainsOnePerName,
    allowedSuffixes: allowedDomains,
    // The operator's own names, from the operator's own CA: private names are theirs to order. Only when no
    // order can go to Let's Encrypt: STAGING picks the staging directory, and never-downgrade the production one.
    allowReservedTlds: !cas.some((ca) => isLetsEncrypt(ca.directoryUrl)) && !isLetsEncrypt(parseUrl(env, 'ACME_STAGING_DIRECTORY_URL', LE_STAGING)),
    // RFC 8738: Let's Encrypt issues IP certificates in its shortlived profile only.
    allowIps: str(env, 'PROFILE') === SHORTLIVED_PROFILE,
  });

  // As the seed did: inside Rancher (CATTLE_URL injected) the orchestrator is Rancher unless told otherwise.
  const orchestrator = parseEnum(env, 'ORCHESTRATOR', ORCHESTRATORS, str(env, 'CATTLE_URL') ? 'rancher' : 'files');
  const orchestratorOptions = orchestratorFromEnv(orchestrator, env);

  const store = parseEnum(env, 'STORE', STORES, 'files');
  const storeOptions = storeFromEnv(store, env);
  const dataDir = dataDirFromEnv(env, cwd);
  const webrootDir = resolve(cwd, str(env, 'WEBROOT_DIR') ?? str(env, 'CERTBOT_WEBROOT') ?? join('./data', 'webroot'));

  // One trust store for the ACME TLS: ACME_CA_BUNDLE and every listed CA's own bundle.
  // ACME_CA_BUNDLE is trusted for every CA; each listed CA's own bundle only for that CA (acme/transport.ts).
  const caBundle = readCaBundle(env, 'ACME_CA_BUNDLE', cwd);

  const certsDir = resolve(cwd, str(env, 'CERTS_DIR') ?? join(dataDir, 'live'));
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const loopTime = parseInt(env, 'LOOP_TIME', 10, 7 * 86400);
  const outputs = outputsFromEnv(env, certsDir, cwd);
  // The export is written from CERTS_DIR's versions, which only the files target (files, docker) writes.
  if (outputs.nethserver && orchestrator === 'rancher') throw new ConfigError('REDIS_EXPORT', env.REDIS_EXPORT, 'unset with ORCHESTRATOR=rancher: the NethServer export is written from CERTS_DIR, which ORCHESTRATOR=files and docker write');

  return {
    domains,
    domainsOnePerName,
    seed,
    staging: parseBool(env, 'STAGING', true),
    email: str(env, 'EMAIL') ?? str(env, 'CERTBOT_EMAIL'),
    productionDirectoryUrl,
    stagingDirectoryUrl: parseUrl(env, 'ACME_STAGING_DIRECTORY_URL', LE_STAGING),
    eab: cas[0]!.eab,
    caBundle,
    cas,
    preferredChain: str(env, 'PREFERRED_CHAIN'),
    orchestrator,
    orchestratorOptions,
    hostsLabel: str(env, 'HOSTS_LABEL') ?? DEFAULT_HOSTS_LABEL,
    readLabels: parseBool(env, 'DYNAMIC_CONFIG', true),
    webrootDir,
    tokenRedis: tokenRedisFromEnv(env),
    store,
    storeOptions,
    dataDir,
    certsDir,
    outputs,
    lockWaitMs: parseDuration(env, 'LOCK_WAIT', DEFAULT_LOCK_WAIT_MS, 0),
    renewBeforeDays: parseInt(env, 'RENEW_BEFORE_DAYS', 1, 365),
    schedule: parseSchedule(env),
    passIntervalSec: loopTime,
    keyType: parseEnum(env, 'KEY_TYPE', KEY_TYPES, 'rsa-2048'),
    reuseKey: parseBool(env, 'REUSE_KEY', false),
    decommission: {
      mode: parseEnum(env, 'DECOMMISSION', ['keep', 'remove'] as const, 'keep'),
      afterMs: parseDuration(env, 'DECOMMISSION_AFTER', DEFAULT_DECOMMISSION_AFTER_MS, 0),
      revokeOnRemove: parseBool(env, 'REVOKE_ON_REMOVE', false),
    },
    acmeConcurrency: parseInt(env, 'ACME_CONCURRENCY', 1, 50) ?? 4,
    acmeTimeoutMs: parseDuration(env, 'ACME_TIMEOUT', 30_000, 100),
    adoptExisting: parseAdopt(env),
    discoveryIntervalMs: parseDuration(env, 'DISCOVERY_INTERVAL', 60_000, 1000),
    allowedDomains,
    newOrderBudget: parseBudget(env),
    labels: parseLabelPolicy(env, allowedDomains),
    challenge,
    dns,
    dnsUpkeep: dnsUpkeepFromEnv(env, dns !== undefined),
    onChangeCommand: str(env, 'ON_CHANGE_COMMAND'),
    onFailureCommand: str(env, 'ON_FAILURE_COMMAND'),
    webhook: parseWebhook(env),
    status: parseStatus(env),
    hookTimeoutMs: parseDuration(env, 'HOOK_TIMEOUT', 60_000, 100),
    port: parseInt(env, 'PORT', 1, 65535) ?? (isRoot ? 80 : 8080),
    placeholders: parseBool(env, 'PLACEHOLDERS', true),
    verify: parseVerify(env),
    preflight: parsePreflight(env, { staging: parseBool(env, 'STAGING', true), productionDirectoryUrl }),
    profile: parseProfile(env, 'PROFILE'),
    logLevel: parseEnum(env, 'LOG_LEVEL', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, 'info'),
    logFormat: parseEnum(env, 'LOG_FORMAT', ['json', 'pretty'] as const, 'json'),
  };
}

/** Let's Encrypt's 160-hour profile, the only one that takes IP-address identifiers (https://letsencrypt.org/docs/profiles/). */
export const SHORTLIVED_PROFILE = 'shortlived';


function parseProfile(env: Env, name: string): string | undefined {
  const v = str(env, name);
  if (v === undefined) return undefined;
  if (!PROFILE_NAME_RE.test(v)) throw new ConfigError(name, v, "a profile name the CA lists in its directory's meta.profiles, e.g. classic, tlsserver or shortlived (Let's Encrypt)");
  return v;
}

/** The shared DNS-01 variables; the provider's own are read by its registry entry. */
function parseDns(env: Env): DnsConfig | undefined {
  if (str(env, 'DNS_PROVIDER') === undefined) return undefined;
  const provider = parseEnum(env, 'DNS_PROVIDER', DNS_PROVIDERS, 'exec');
  const resolvers = parseResolvers(env);
  return {
    ...dnsProviderFromEnv(provider, env),
    resolvers: resolvers && resolvers.length > 0 ? resolvers : undefined,
    propagationTimeoutMs: parseDuration(env, 'DNS_PROPAGATION_TIMEOUT', 120_000, 100),
  };
}
