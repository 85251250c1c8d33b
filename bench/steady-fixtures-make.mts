import { steadyCertificates } from './steady-fixtures.ts';
for (const n of process.argv.slice(2).map(Number)) {
  const t = performance.now();
  const f = await steadyCertificates(n);
  console.log(`${n}: ${f.certs.length} in ${Math.round(performance.now() - t)} ms`);
}
