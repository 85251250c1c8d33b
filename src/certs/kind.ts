import { dnCommonName } from './parse.js';
import type { CertInfo } from './parse.js';

export type Kind = 'self-signed' | 'staging' | 'production';

/** Kinds rank self-signed < staging < production: a certificate is never replaced by a lower kind. */
export const RANK: Record<Kind, number> = { 'self-signed': 0, staging: 1, production: 2 };

/** Issuer DN (RFC 2253) → the kind of the directory it was seen issuing from. */
export type KnownIssuers = Record<string, Kind>;

/**
 * The kind of a certificate found only in the orchestrator, from the certificate itself. Never from an
 * allow-list of intermediate names: those change (R3 → R10…), and a client that matched on them once
 * re-issued every certificate in a loop. Returns undefined for an issuer nobody here has seen.
 */
export function classifyByIssuer(info: CertInfo, known: KnownIssuers): Kind | undefined {
  if (info.selfSigned) return 'self-signed';
  const seen = known[info.issuer];
  if (seen) return seen;
  // Let's Encrypt's staging hierarchy marks itself in the issuer CN: "(STAGING) …" now, "Fake LE …" before.
  const cn = dnCommonName(info.issuer.split(',').reverse().join('\n')) ?? '';
  if (cn.includes('(STAGING)') || cn.includes('Fake LE')) return 'staging';
  return undefined;
}

/** The kind of a certificate this process issued, from the directory that issued it. */
export function kindOfDirectory(
  directoryUrl: string,
  dirs: { productionDirectoryUrl: string; stagingDirectoryUrl: string },
  recorded: Kind,
): Kind {
  if (directoryUrl === dirs.productionDirectoryUrl) return 'production';
  if (directoryUrl === dirs.stagingDirectoryUrl) return 'staging';
  return recorded;
}
