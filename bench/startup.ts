/**
 * Start-up: how long a `certwrangler manager --once` with nothing to do takes, from exec to exit (the `files`
 * orchestrator, no DOMAINS), as installed (dist/cli.js: the esbuild bundle) and as tsc's one file per module
 * (compiled here into a folder of its own, as `npm run build` made it before the bundle), beside the start of
 * `certbot --version` and `lego --version`. Wall and CPU from bash's `time`, peak RSS from GNU time's %M (the
 * process's baseline: what a start costs in memory before any certificate), medians.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { median, timed } from './lib.js';

export interface StartupResult {
  subject: string;
  command: string;
  wallMs: number;
  cpuMs: number;
  /** Peak resident set size, MB. */
  rssMb: number;
  runs: number;
}

export async function benchStartup(opts: { runs: number; base: string }): Promise<StartupResult[]> {
  rmSync(opts.base, { recursive: true, force: true });
  mkdirSync(opts.base, { recursive: true });
  // tsc's per-module output in a folder of its own, beside a package.json (the CLI reads its version there)
  // and node_modules, as dist/ was before the bundle.
  const modules = join(opts.base, 'modules');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--outDir', join(modules, 'dist'), '--sourceMap', 'false'], { stdio: 'inherit' });
  copyFileSync('package.json', join(modules, 'package.json'));
  symlinkSync(resolve('node_modules'), join(modules, 'node_modules'));
  const state = join(opts.base, 'state');
  const env = { ...process.env, ORCHESTRATOR: 'files', DOMAINS: '', DATA_DIR: join(state, 'data'), CERTS_DIR: join(state, 'live'), WEBROOT_DIR: join(state, 'www'), LOG_LEVEL: 'error' };
  const subjects: [string, string][] = [
    ['certwrangler (bundle)', `node ${resolve('dist/cli.js')} manager --once`],
    ['certwrangler (one file per module)', `node ${join(modules, 'dist/cli.js')} manager --once`],
    ['certbot', 'certbot --version'],
    ['lego', 'lego --version'],
  ];
  const samples = new Map<string, { wallMs: number; cpuMs: number; rssMb: number }[]>();
  // GNU time around the command itself (not bash's subshell), written to a file of its own.
  const rssFile = join(opts.base, 'rss');
  const withRss = (command: string) => `/usr/bin/time -o ${rssFile} -f %M ${command}`;
  // A first, unrecorded run of each fills the page cache; then the subjects take turns.
  for (const [, command] of subjects) await timed(command, env);
  for (let run = 0; run < opts.runs; run++) {
    for (const [subject, command] of subjects) {
      const t = await timed(withRss(command), env);
      if (t.code !== 0) throw new Error(`${command} failed:\n${t.output.slice(-2000)}`);
      samples.set(subject, [...(samples.get(subject) ?? []), { ...t, rssMb: Number(readFileSync(rssFile, 'utf8').trim().split('\n').at(-1)) / 1024 }]);
    }
  }
  return subjects.map(([subject, command]) => {
    const s = samples.get(subject)!;
    return { subject, command, wallMs: median(s.map((x) => x.wallMs)), cpuMs: median(s.map((x) => x.cpuMs)), rssMb: median(s.map((x) => x.rssMb)), runs: s.length };
  });
}
