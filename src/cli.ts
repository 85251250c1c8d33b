#!/usr/bin/env node
/**
 * certwrangler webroot | manager [--once] | plan [--json] | request <name>… [--wait N] | reconcile [--wait N]
 *   | revoke <name> [--reason keyCompromise|superseded|cessationOfOperation] [--no-renew]
 *   | import certbot <dir> | reload-local | store migrate --from <store> --to <store> [--force]
 * Exit codes: 0 fine, 1 a certificate needs attention (--once: a failure, a held order, a refused name, or a foreign
 * certificate within 14 days of expiry; request, reconcile) or the orchestrator cannot be read (plan) or no manager
 * answers (request, reconcile), 2 bad configuration or usage, or the manager refused the request.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfig, ConfigError, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { assemble, openStore } from './assemble.js';
import type { Store } from './stores/store.js';
import { planPass, runPass, type PassReport } from './reconciler.js';
import { describeBudget } from './report.js';
import { observeAcmeRequests } from './acme/transport.js';
import { lockForManager } from './lock.js';
import { moveToVersions } from './orchestrators/files/files.js';
import { checkDnsCredentials } from './preflight/dns-credentials.js';
import type { Server } from 'node:http';
import { CLI_REASONS, type RevocationReason } from './revoke.js';
import { announceSeedMode } from './seed-mode.js';

const USAGE = `usage: certwrangler <command> [options]

commands:
  webroot              serve /.well-known/acme-challenge/ from WEBROOT_DIR (and Redis, with REDIS_URL) on PORT
  manager              keep certificates issued and pushed, forever
  manager --once       one pass, then exit 0 when every certificate is fine, 1 otherwise
  plan [--json]        show what the next pass would do for each certificate and why; changes nothing
  request <name>…      ask the running manager for a certificate for these names (the first is its name)
  reconcile            ask the running manager for a pass now
  revoke <name>        revoke a stored certificate with the ACME account key, then renew it in the same run
  import certbot <dir> import certbot's store (the seed's /etc/letsencrypt): account, keys and certificates
  store migrate --from files --to redis [--force]
                       copy every key, certificate and book from one store to the other (or back) and verify it
  reload-local         reload this Docker host's containers labelled certwrangler.reload (the Swarm reload job runs it)

options:
  --at <ISO date>      (manager --once, plan) decide as if it were this time, e.g. --at 2027-01-20
  --wait <seconds>     (request, reconcile) wait up to this long (at most 600) for the outcome
  --reason <reason>    (revoke) keyCompromise, superseded or cessationOfOperation; none: unspecified
  --no-renew           (revoke) only revoke and mark it; the manager's next pass renews it
  --from, --to <store> (store migrate) files or redis; --force copies over a target that is not empty
  --help, --version

request and reconcile talk to STATUS_ADDR with STATUS_TOKEN, or with the token the manager keeps in
DATA_DIR/status-token; exit 0 done (or accepted, without --wait), 1 failed, unfinished or no manager, 2 refused.

configuration is read from the environment; see the README.`;

class UsageError extends Error {}

/** Longest --wait, as the status API's `?wait=` allows. */
const MAX_WAIT_SEC = 600;

function parseArgs(argv: string[]): { command: string; flags: Set<string>; at?: Date; names: string[]; waitSec: number; reason?: RevocationReason; stores: Record<string, string> } {
  const [command = '', ...rest] = argv;
  const flags = new Set<string>();
  const names: string[] = [];
  let waitSec = 0;
  let at: Date | undefined;
  let reason: RevocationReason | undefined;
  const stores: Record<string, string> = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--wait' && (command === 'request' || command === 'reconcile')) {
      const v = rest[++i] ?? '';
      if (!/^\d+$/.test(v) || Number(v) > MAX_WAIT_SEC) throw new UsageError(`--wait needs whole seconds from 0 to ${MAX_WAIT_SEC}, got ${JSON.stringify(v)}`);
      waitSec = Number(v);
    } else if ((command === 'request' || command === 'revoke' || command === 'import' || command === 'store') && !a.startsWith('-')) names.push(a);
    else if ((a === '--from' || a === '--to') && command === 'store') stores[a.slice(2)] = rest[++i] ?? '';
    else if (a === '--force' && command === 'store') flags.add(a);
    else if (a === '--reason' && command === 'revoke') {
      const v = rest[++i] ?? '';
      if (!(CLI_REASONS as readonly string[]).includes(v)) throw new UsageError(`--reason needs one of ${CLI_REASONS.join(', ')}, got ${JSON.stringify(v)}`);
      reason = v as RevocationReason;
    } else if (a === '--no-renew' && command === 'revoke') flags.add(a);
    else if (a === '--at') {
      const v = rest[++i];
      at = v ? new Date(v) : undefined;
      if (!at || Number.isNaN(at.getTime())) throw new UsageError(`--at needs a date such as 2027-01-20 or 2027-01-20T12:00:00Z, got ${JSON.stringify(v ?? '')}`);
    } else if (['--once', '--json'].includes(a)) flags.add(a);
    else throw new UsageError(`unknown option ${a}`);
  }
  return { command, flags, ...(at ? { at } : {}), names, waitSec, ...(reason ? { reason } : {}), stores };
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function webroot(config: Config, log: Logger): Promise<void> {
  // Loaded here so that the manager does not pay for express at start.
  const { createWebroot, listenWebroot } = await import('./webroot/server.js');
  const onError = (err: Error) => log.error({ error: err.message }, `webroot: ${err.message}`);
  let handler = createWebroot(config.webrootDir, { onError });
  // REDIS_URL or STORE=redis: every token any manager publishes, the folder as the fallback (webroot/redis-webroot.ts).
  const redis = config.tokenRedis ? (await import('./webroot/redis-webroot.js')).withRedisTokens(handler, config.webrootDir, config.tokenRedis.connection, log, { onError }) : undefined;
  if (redis) handler = redis.handler;
  const server = await listenWebroot(handler, config.port);
  const from = config.tokenRedis ? `Redis ${config.tokenRedis.connection.shown}, then ${config.webrootDir}` : config.webrootDir;
  log.info({ port: config.port, webroot: config.webrootDir, ...(config.tokenRedis ? { redis: config.tokenRedis.connection.shown } : {}) }, `webroot serving ${from} on port ${config.port}`);
  const stop = () => server.close(() => void (redis?.close() ?? Promise.resolve()).finally(() => process.exit(0)));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

function warnIfNothingWanted(config: Config, log: Logger): void {
  if (config.domains.certs.length === 0 && config.domains.refused.length === 0 && config.orchestrator === 'files') {
    log.warn('no certificates wanted: set DOMAINS (e.g. DOMAINS="example.com,www.example.com;api.example.com") or PUT /api/certificates/<name> on the status API');
  }
}

/** The decision's message, which says why an order is held (the gate is the policy's), and when it may go. */
function why(r: PassReport['results'][number]): string {
  const { message } = r.decision;
  const error = r.error && !message.includes(r.error.replace(/^not ordered: /, '')) ? `; ${r.error}` : '';
  const w = r.renewalWindow;
  const timing = `${r.profile ? `; profile ${r.profile}` : ''}${w ? `; the CA's renewal window ${w.start} – ${w.end}${w.early ? ' (early: the CA wants it replaced)' : ''}` : ''}`;
  return `${message}${error}${r.nextAttempt ? ` until ${r.nextAttempt}` : ''}${r.pendingReloads?.length ? `; pushed, balancer reload pending: ${r.pendingReloads.join(', ')}` : ''}${timing}`;
}

function printPlan(report: PassReport): void {
  const rows = report.results.map((r) => [r.name, r.decision.action, why(r), r.names.join(',')]);
  const widths = [0, 1].map((i) => Math.max(...rows.map((row) => row[i]!.length), i === 0 ? 11 : 6));
  console.log(`${'CERTIFICATE'.padEnd(widths[0]!)}  ${'ACTION'.padEnd(widths[1]!)}  WHY  [NAMES]`);
  for (const row of rows) console.log(`${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]}  [${row[3]}]`);
  for (const r of report.results) {
    for (const c of r.serving ?? []) {
      const what = c.error ?? `sha256 ${c.fingerprint!.slice(0, 23)}… ${c.subject}, until ${c.notAfter}${c.matches ? ' (the local copy)' : ' (NOT the local copy)'}`;
      console.log(`serves: ${r.name} at ${c.balancer} ${c.address}: ${what}`);
    }
  }
  for (const r of report.refused) console.log(`refused: ${r.spec} (${r.source}): ${r.error}`);
  for (const e of report.errors) console.log(`error: ${e}`);
  for (const b of report.budgets ?? []) {
    if (b.error) console.log(`rate limits of ${b.directory}: ${b.error}`);
    for (const row of b.rows) console.log(`budget (${b.directory}): ${describeBudget(row)}`);
  }
  if (rows.length === 0 && report.refused.length === 0 && report.errors.length === 0) console.log('no certificates wanted: set DOMAINS or label a service (HOSTS_LABEL)');
}

async function manager(config: Config, log: Logger, once: boolean, store: Store, at?: Date): Promise<number> {
  if (once) {
    const deps = await assemble(config, log, { store, ...(at ? { now: () => at } : {}) });
    warnIfNothingWanted(config, log);
    const report = await runPass(deps);
    await Promise.all([deps.solver.cleanupAll(), deps.dnsSolver?.cleanupAll()]);
    await deps.events.drain();
    return report.ok ? 0 : 1;
  }
  // The status endpoint's parts and the scheduler (node-schedule): loaded only for a long-running manager.
  const [{ Scheduler }, { StatusBook }, { Metrics }, { listenStatus }, { loadOrCreateStatusToken }] = await Promise.all([
    import('./scheduler.js'),
    import('./status/book.js'),
    import('./status/metrics.js'),
    import('./status/server.js'),
    import('./status/token.js'),
  ]);
  const metrics = new Metrics();
  const book = new StatusBook(version());
  const shutdownSignal = new AbortController();
  const deps = {
    ...(await assemble(config, log, {
      store,
      ...(at ? { now: () => at } : {}),
      observeOrchestrator: (r) => metrics.orchestratorRequest(config.orchestrator, r),
      onEvent: (e) => book.onEvent(e),
    })),
    signal: shutdownSignal.signal,
  };
  observeAcmeRequests((r) => metrics.acmeRequest(r));
  warnIfNothingWanted(config, log);
  const pass = async (): Promise<PassReport> => {
    const report = await runPass(deps);
    if (report.wakeAt) scheduler.wakeAt(new Date(report.wakeAt), 'a renewal moment, a renewal-information check, a balancer reload or a retry is due');
    book.record(report);
    const now = new Date();
    metrics.recordPass(report, (name) => book.health(name, now));
    return report;
  };
  const scheduler = new Scheduler(pass, {
    cron: config.schedule,
    ...(config.passIntervalSec ? { intervalSec: config.passIntervalSec } : {}),
    discovery: {
      intervalMs: config.discoveryIntervalMs,
      fingerprint: async () => JSON.stringify((await deps.orchestrator.discover()).certs.map((c) => [c.name, c.names])),
    },
    log,
  });
  book.nextPassAt = () => scheduler.nextRunAt();
  // Docker's /events: a service that starts, stops or changes is looked at within seconds, not at the next poll.
  const unwatch = deps.orchestrator.watch?.((why) => scheduler.rediscover(why));
  let status: Server | undefined;
  if (config.status) {
    const s = config.status;
    let token = s.token;
    if (token === undefined) {
      // Every change needs a token; without STATUS_TOKEN the CLI on this host reads the generated one.
      const t = await loadOrCreateStatusToken(config.dataDir);
      token = t.token;
      log.info({ tokenFile: t.path }, `status API: changes need the token ${t.created ? 'generated into' : 'kept in'} ${t.path} (certwrangler request and reconcile read it), or set STATUS_TOKEN`);
    }
    status = await listenStatus({ host: s.host, port: s.port, token, book, metrics, requests: deps.requests, reconcile: (why) => scheduler.requestPass(why), log });
    log.info({ statusAddr: `${s.host}:${s.port}` }, `status page, API and metrics on http://${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}/`);
  }
  scheduler.start();
  // Between passes, the addresses are checked for the names of the last pass (DNS_UPKEEP_INTERVAL).
  const upkeep = deps.dnsUpkeep;
  const upkeepTimer = upkeep && config.dnsUpkeep ? setInterval(() => void upkeep.run().catch((e: Error) => log.error({ action: 'dns-upkeep', error: e.message }, `DNS upkeep failed: ${e.message}`)), config.dnsUpkeep.intervalMs) : undefined;
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, `${signal}: finishing the pass in flight, then exiting`);
      unwatch?.();
      clearInterval(upkeepTimer);
      status?.close();
      status?.closeAllConnections();
      // Orders still validating are abandoned now (the CA lets them expire); an order past validation
      // gets the grace period to finish, since its certificate counts against the limits either way.
      // Hooks and webhooks get what is left of the 10 s a container runtime waits.
      shutdownSignal.abort(new Error(`abandoned: the manager is shutting down (${signal})`));
      scheduler
        .stop(8000)
        .then(() => Promise.all([deps.solver.cleanupAll(), deps.dnsSolver?.cleanupAll()]))
        .then(() => Promise.race([deps.events.drain(), new Promise((r) => setTimeout(r, 1500))]))
        .finally(resolve);
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  return 0;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
    console.log(USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  if (argv.includes('--version')) {
    console.log(version());
    return 0;
  }
  const args = parseArgs(argv);
  const config = loadConfig();
  const log = createLogger(config.logLevel, undefined, config.logFormat);
  switch (args.command) {
    case 'webroot':
      await webroot(config, log);
      return -1; // keeps running
    case 'manager': {
      const once = args.flags.has('--once');
      announceSeedMode(config.seed, config.domainsOnePerName, config.hostsLabel, log);
      const store = await openStore(config, log);
      try {
        // A standby (STORE=redis) answers on STATUS_ADDR with its role and leader until it takes the lease.
        let standby: Promise<import('./status/standby.js').StandbyStatus | undefined> | undefined;
        const status = config.status;
        const onStandby = (leader: string) => {
          if (!status) return;
          if (standby) return void standby.then((s) => s?.setLeader(leader));
          standby = import('./status/standby.js')
            .then(({ listenStandby }) => listenStandby({ host: status.host, port: status.port, version: version(), where: store.where, leader }))
            .catch((e: Error) => void log.warn(`standby status endpoint on ${status.host}:${status.port}: ${e.message}`));
        };
        const lock = await lockForManager(store, config, log, once, onStandby); // before anything writes to the store
        if (standby) {
          await (await standby)?.close();
          log.info({ role: 'leader' }, `took the lease in ${store.where}: this manager is the leader`);
        }
        try {
          if (config.orchestrator === 'files' || config.orchestrator === 'docker') await moveToVersions(config.certsDir, log);
          // Loaded only when there is something to import: most starts have nothing, and pay nothing for it.
          if (config.seed.certbotDir || config.seed.accountKeyFile) await (await import('./import/at-start.js')).importAtStart(config, log, store);
          // PREFLIGHT: wrong DNS credentials stop here, naming the variable, not at the first renewal.
          await checkDnsCredentials(config, log);
          return await manager(config, log, once, store, args.at);
        } finally {
          await lock.release();
        }
      } finally {
        await store.close();
      }
    }
    case 'reload-local': {
      // The Swarm reload job's command: this node's labelled containers, through its own socket.
      const [{ DockerApi }, { dockerFromEnv }, { reloadLocal }] = await Promise.all([import('./orchestrators/docker/api.js'), import('./orchestrators/docker/env.js'), import('./orchestrators/docker/reloads.js')]);
      const d = dockerFromEnv(process.env);
      return reloadLocal(new DockerApi({ endpoint: d.endpoint, hostText: d.hostText, timeoutMs: d.timeoutMs }), log, config.hookTimeoutMs);
    }
    case 'request':
    case 'reconcile': {
      const client = await import('./status/client.js');
      try {
        return args.command === 'request' ? await client.requestCertificate(config, args.names, args.waitSec) : await client.requestReconcile(config, args.waitSec);
      } catch (e) {
        if (e instanceof client.ClientUsageError) {
          process.stderr.write(`certwrangler: ${e.message}\n`);
          return 2;
        }
        throw e;
      }
    }
    case 'revoke': {
      if (args.names.length !== 1) throw new UsageError(`revoke needs one certificate name (its first domain, as plan lists it), got ${args.names.length}`);
      const { revokeCommand } = await import('./revoke-command.js');
      return revokeCommand(config, log, { name: args.names[0]!.toLowerCase().replace(/^\*\./, '_.'), reason: args.reason ?? 'unspecified', renew: !args.flags.has('--no-renew'), ...(args.at ? { at: args.at } : {}) });
    }
    case 'import': {
      const [what, dir, ...extra] = args.names;
      if (what !== 'certbot' || !dir || extra.length > 0) throw new UsageError('import takes: import certbot <dir> (certbot\'s config dir, e.g. /etc/letsencrypt)');
      const { importCertbot, describeImport } = await import('./import/certbot.js');
      const store = await openStore(config, log);
      try {
        const lock = await lockForManager(store, config, log, true); // as a --once: wait for a pass in flight
        try {
          const report = await importCertbot(resolve(dir), { store, productionDirectoryUrl: config.productionDirectoryUrl, stagingDirectoryUrl: config.stagingDirectoryUrl });
          for (const line of describeImport(report)) console.log(line);
          return report.problems.length > 0 ? 1 : 0;
        } finally {
          await lock.release();
        }
      } finally {
        await store.close();
      }
    }
    case 'store': {
      const { MIGRATE_STORES, migrateCommand } = await import('./stores/migrate-command.js');
      const { from = '', to = '' } = args.stores;
      const known = (s: string): s is (typeof MIGRATE_STORES)[number] => (MIGRATE_STORES as readonly string[]).includes(s);
      if (args.names.join(' ') !== 'migrate' || !known(from) || !known(to) || from === to) throw new UsageError(`store takes: store migrate --from <store> --to <store> [--force], the two stores among ${MIGRATE_STORES.join(', ')} and different; got ${JSON.stringify([...args.names, from, to].join(' '))}`);
      return migrateCommand(config, log, { from, to, force: args.flags.has('--force') });
    }
    case 'plan': {
      const deps = await assemble(config, createLogger('silent'), { dryRun: true, ...(args.at ? { now: () => args.at! } : {}) });
      const report = await planPass(deps).finally(() => deps.store.backend.close());
      if (args.flags.has('--json')) console.log(JSON.stringify(report, null, 2));
      else printPlan(report);
      // A plan that could not see the orchestrator is not a plan: say so in the exit code too.
      return report.errors.length > 0 ? 1 : 0;
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(args.command)}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e: unknown) => {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    if (e instanceof UsageError) {
      process.stderr.write(`certwrangler: ${e.message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`certwrangler: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
