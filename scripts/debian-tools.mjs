// Makes sure the Debian programs the demo and the end-to-end tests need are installed: installs them
// when this process may (root or password-less sudo, with apt-get), otherwise says the one command to run.
import { execFileSync, spawnSync } from 'node:child_process';

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** tools: [{ command, pkg }]. Returns true when all are present afterwards. */
export function ensureDebianTools(tools, { quiet = false } = {}) {
  const missing = tools.filter((t) => !has(t.command));
  if (missing.length === 0) return true;
  const pkgs = [...new Set(missing.map((t) => t.pkg))];
  const cmd = `apt-get update && apt-get install -y ${pkgs.join(' ')}`;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudoOk = !isRoot && has('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
  if (!has('apt-get') || (!isRoot && !sudoOk)) {
    console.error(`missing: ${missing.map((t) => t.command).join(', ')}. Install with:\n  sudo sh -c '${cmd}'`);
    return false;
  }
  if (!quiet) console.error(`installing Debian packages: ${pkgs.join(' ')}`);
  const prefix = isRoot ? '' : 'sudo -n ';
  execFileSync('sh', ['-c', `${prefix}apt-get update -qq && ${prefix}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkgs.join(' ')}`], { stdio: quiet ? 'ignore' : 'inherit' });
  return tools.every((t) => has(t.command));
}

/**
 * Every Debian program the tests and the demo start: the one list `npm test` installs from (.ci/run installs
 * nothing itself). test/unit/test-tools.test.ts fails when a test starts a program missing here.
 */
export const TEST_TOOLS = [
  { command: 'pebble', pkg: 'pebble' },
  { command: 'pebble-challtestsrv', pkg: 'pebble' },
  { command: 'nginx', pkg: 'nginx' },
  { command: 'named', pkg: 'bind9' },
  { command: 'named-journalprint', pkg: 'bind9' },
  { command: 'openssl', pkg: 'openssl' },
  // The status page and its cross-site refusals are checked in a real headless browser (playwright-core).
  { command: 'chromium', pkg: 'chromium' },
  // The switch from the seed service makes the seed's store with the real certbot, as the seed did.
  { command: 'certbot', pkg: 'certbot' },
  // The image is built from the real Dockerfile and run on an isolated daemon (test/support/docker-daemon.ts).
  { command: 'dockerd', pkg: 'docker.io' },
  { command: 'docker', pkg: 'docker.io' },
  // The stand-in base image's shell and tools, and the init process the image runs under.
  { command: 'busybox', pkg: 'busybox-static' },
  { command: 'tini', pkg: 'tini' },
  // ORCHESTRATOR=docker runs against the same isolated dockerd. The compose files, the catalog template and
  // the single-host stack are validated with a real parser of the v2 format.
  { command: 'docker-compose', pkg: 'docker-compose' },
  // Swarm's docker_gwbridge outlives `swarm leave`: the Docker test removes it with ip(8).
  { command: 'ip', pkg: 'iproute2' },
  // Balancer outputs: a real HAProxy updated through its runtime API while wrk keeps connections open on it.
  { command: 'haproxy', pkg: 'haproxy' },
  { command: 'wrk', pkg: 'wrk' },
  // STORE=redis (the store contract, the lease, migration), the webroot's token source and the NethServer export
  // run against a real Redis; what is at rest and consumers' reads are checked with redis-cli (HGET … | base64 -d,
  // SUBSCRIBE).
  { command: 'redis-server', pkg: 'redis-server' },
  { command: 'redis-cli', pkg: 'redis-tools' },
];
