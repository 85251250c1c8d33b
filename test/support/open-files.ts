import { readdirSync, readlinkSync } from 'node:fs';

/**
 * The files this process holds open under `dir`, by what each descriptor points at. A count of all of
 * /proc/self/fd moves with whatever the test runner or a closing socket does meanwhile; this does not.
 */
export function openFilesUnder(dir: string): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(dir + '/') ? [target] : [];
    } catch {
      return []; // closed between the listing and the look
    }
  });
}
