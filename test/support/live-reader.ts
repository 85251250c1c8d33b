/**
 * Child process for the reader test: reads CERTS_DIR/<name>/ as fast as it can until its stdin closes, then
 * prints {reads, mismatches, missing} as JSON. Each read resolves the folder once, as a reader that loads a
 * set must (nginx's reload reads two paths; Traefik and HAProxy reload a folder), then reads privkey.pem and
 * cert.pem from it and checks that the key is the certificate's.
 * argv: <CERTS_DIR> <name>
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { keyMatchesCert } from '../../src/certs/parse.js';

const [certsDir, name] = process.argv.slice(2);
let stop = false;
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => (stop = true));
let reads = 0;
let mismatches = 0;
let missing = 0;
process.stdout.write('ready\n');
while (!stop) {
  try {
    const dir = await fs.realpath(join(certsDir!, name!));
    const key = await fs.readFile(join(dir, 'privkey.pem'), 'utf8');
    const cert = await fs.readFile(join(dir, 'cert.pem'), 'utf8');
    reads += 1;
    if (!keyMatchesCert(key, cert)) mismatches += 1;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    missing += 1;
  }
}
process.stdout.write(`${JSON.stringify({ reads, mismatches, missing })}\n`);
