/**
 * Child process for the crash test: writes two complete certificates for one name into the local store
 * in turn, forever, and says "ready" after the first write. The test SIGKILLs it at a random moment.
 * argv: <DATA_DIR> <bundles.json holding [bundleA, bundleB]>
 */
import { readFileSync } from 'node:fs';
import { LocalStore, type CertBundle } from '../../src/certs/store.js';
import { FilesStore } from '../../src/stores/files/files-store.js';

const [dataDir, bundlesPath] = process.argv.slice(2);
const bundles = JSON.parse(readFileSync(bundlesPath!, 'utf8')) as [CertBundle, CertBundle];
const store = new LocalStore(new FilesStore(dataDir!));
await store.init();
for (let i = 0; ; i++) {
  await store.write(bundles[i % 2]!);
  if (i === 0) process.stdout.write('ready\n');
}
