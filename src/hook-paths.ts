/**
 * The certificate files a hook is given (CERTWRANGLER_CERT, CERTWRANGLER_KEY, …): the files a balancer reads.
 * CERTS_DIR's for the files and docker orchestrators; else the local copy, on STORE=files, in DATA_DIR; else
 * none: another store (Redis) keeps no files on this host, so the hook gets the certificate's names and no paths.
 */
import type { LocalStore } from './certs/store.js';
import { filePaths } from './orchestrators/files/files.js';

export function hookPaths(store: LocalStore, filesTarget: { dir(name: string): string } | undefined, name: string): Record<string, string> {
  if (filesTarget) return filePaths(filesTarget.dir(name), true);
  const dir = store.localDir(name);
  return dir !== undefined ? filePaths(dir, false) : {};
}
