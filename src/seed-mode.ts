/**
 * Seed-compatible mode (issue 18): a stack written for rancher-lets-encrypt (tozny's, or Daniel Dent's fork with the
 * hosts label) that only swaps the image keeps meaning what it meant. The seed's own variables are what tells us:
 * CERTBOT_EMAIL set and EMAIL not. Then every name in DOMAINS and in the hosts label is its own certificate, as
 * the seed's `certbot -d <name>` made them, and the seed's certbot store is imported at start (import/certbot.ts).
 */
import { resolve } from 'node:path';
import { FALSE, str, type Env } from './env.js';
import type { Logger } from './log.js';

/** The seed's LETSENCRYPT_ROOTDIR default (tozny PR #25): certbot's own default config dir. */
export const SEED_CERTBOT_DIR = '/etc/letsencrypt';

export interface SeedSettings {
  /** CERTBOT_EMAIL is set and EMAIL is not: the seed's variables configure the manager. */
  active: boolean;
  /**
   * The certbot store imported at start: LETSENCRYPT_ROOTDIR, or the seed's default in seed mode; undefined when
   * neither applies or LETSENCRYPT_ROOTDIR=off. `explicit`: named by LETSENCRYPT_ROOTDIR, so it must exist.
   */
  certbotDir: { path: string; explicit: boolean } | undefined;
  /** ACME_ACCOUNT_KEY_FILE: an account key (PEM or JWK) to use for a directory that has no account yet. */
  accountKeyFile: string | undefined;
}

export function parseSeedSettings(env: Env, cwd: string): SeedSettings {
  const active = str(env, 'CERTBOT_EMAIL') !== undefined && str(env, 'EMAIL') === undefined;
  const rootDir = str(env, 'LETSENCRYPT_ROOTDIR');
  const off = rootDir !== undefined && FALSE.includes(rootDir.toLowerCase());
  const certbotDir = off ? undefined : rootDir !== undefined ? { path: resolve(cwd, rootDir), explicit: true } : active ? { path: SEED_CERTBOT_DIR, explicit: false } : undefined;
  const keyFile = str(env, 'ACME_ACCOUNT_KEY_FILE');
  return { active, certbotDir, accountKeyFile: keyFile === undefined ? undefined : resolve(cwd, keyFile) };
}

/**
 * The manager's first log lines in seed mode: that it is on, what it changes, and how to leave it. An operator
 * who swapped the image reads here why `a.com,b.com` made two certificates.
 */
export function announceSeedMode(seed: SeedSettings, onePerName: boolean, hostsLabel: string, log: Logger): void {
  if (!seed.active) return;
  const shape = onePerName
    ? `every name in DOMAINS and in the ${hostsLabel} label is its own certificate, as the seed made them`
    : 'DOMAINS_ONE_PER_NAME=false: "," joins names into one certificate and ";" separates certificates';
  const store = seed.certbotDir ? `; the seed's certbot store at ${seed.certbotDir.path} (LETSENCRYPT_ROOTDIR) is imported at start` : '; no certbot store is imported (LETSENCRYPT_ROOTDIR=off)';
  log.info({ mode: 'seed-compatible' }, `seed-compatible mode: CERTBOT_EMAIL is set and EMAIL is not, so this stack is read as rancher-lets-encrypt read it: ${shape}${store}`);
  log.info(
    { mode: 'seed-compatible' },
    'to leave seed-compatible mode: set EMAIL (in place of CERTBOT_EMAIL) and write DOMAINS as certwrangler reads it, "," between the names of one certificate and ";" between certificates (DOMAINS_ONE_PER_NAME=true keeps one certificate per name); certificates already issued are kept and renewed',
  );
}
