/**
 * What answers a challenge: HTTP-01 writes a file the webroot serves, DNS-01 a TXT record. The order
 * code sees only this interface; which one answers a certificate is decided per certificate.
 */
export type ChallengeType = 'http-01' | 'dns-01';

export interface ChallengeSolver {
  readonly type: ChallengeType;
  /**
   * Makes the answer visible to the CA. `keyAuthorization` is what acme-client computed for this challenge
   * type: the key authorization itself for HTTP-01, its base64url SHA-256 digest (the TXT value) for DNS-01.
   */
  present(identifier: string, token: string, keyAuthorization: string): Promise<void>;
  cleanup(identifier: string, token: string, keyAuthorization: string): Promise<void>;
  /** Removes whatever this process presented and has not cleaned up (shutdown). */
  cleanupAll(): Promise<void>;
}

/** The challenge a certificate uses: a wildcard can only be validated over DNS. */
export function challengeFor(names: string[], asked: ChallengeType | undefined, dflt: ChallengeType): ChallengeType {
  if (names.some((n) => n.startsWith('*.'))) return 'dns-01';
  return asked ?? dflt;
}
