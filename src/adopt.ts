/**
 * Which foreign orchestrator certificates certwrangler may take over (ADOPT_EXISTING). Adopting replaces a
 * certificate in place, and a Rancher certificate's key can never be read back, so it is the operator's
 * explicit choice: every certificate of DOMAINS (`true`), or a list of names. A label never adopts.
 */
export interface AdoptList {
  /** ADOPT_EXISTING=true: the certificates asked for in DOMAINS. */
  domains: boolean;
  /** Certificate names (first domain, `_.` for a wildcard) listed in ADOPT_EXISTING. */
  names: string[];
}

export const ADOPT_NONE: AdoptList = { domains: false, names: [] };

/** May this wanted certificate take over a foreign copy of the same name? Only for the operator's own sources. */
export function mayAdopt(adopt: AdoptList, cert: { name: string; sources: string[] }): boolean {
  const fromDomains = cert.sources.includes('DOMAINS');
  if (adopt.domains && fromDomains) return true;
  return adopt.names.includes(cert.name) && (fromDomains || cert.sources.includes('api'));
}
