/**
 * The issuance benches' lab (bench/issuance.ts, issuance-compare.ts, issuance-profile.ts): a fresh folder, the
 * webroot serving its `www` on a free loopback port, and Pebble validating against that port.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startPebble } from '../test/support/pebble.js';
import { freePort } from '../test/support/ports.js';
import { createWebroot, listenWebroot } from '../src/webroot/server.js';

export async function issuanceLab(base: string) {
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const webroot = join(base, 'www');
  const httpPort = await freePort();
  const server = await listenWebroot(createWebroot(webroot), httpPort, '127.0.0.1');
  const pebble = await startPebble({ dir: join(base, 'pebble'), httpPort, nonceReject: 0 });
  return { webroot, httpPort, server, pebble };
}
