/**
 * `certwrangler revoke <name> [--reason …] [--no-renew]`: revokes a stored certificate with the account key
 * (src/revoke.ts), which marks it for renewal (reason `Revoked`), then runs one pass, which replaces it,
 * unless --no-renew (the next pass of the manager replaces it then). Holds DATA_DIR's lock as `--once` does.
 */
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { assemble, openStore } from './assemble.js';
import type { Store } from './stores/store.js';
import { lockForManager } from './lock.js';
import { moveToVersions } from './orchestrators/files/files.js';
import { runPass } from './reconciler.js';
import { revokeStored, RevokeError, type RevocationReason } from './revoke.js';

export interface RevokeArgs {
  name: string;
  reason: RevocationReason;
  renew: boolean;
  at?: Date;
}

/** Exit code: 0 revoked (and renewed, unless --no-renew), 1 not revoked or not renewed, 2 no such certificate. */
export async function revokeCommand(config: Config, log: Logger, args: RevokeArgs): Promise<number> {
  const store = await openStore(config, log);
  try {
    return await revokeLocked(config, log, args, store);
  } finally {
    await store.close();
  }
}

async function revokeLocked(config: Config, log: Logger, args: RevokeArgs, store: Store): Promise<number> {
  const lock = await lockForManager(store, config, log, true);
  try {
    if (config.orchestrator === 'files' || config.orchestrator === 'docker') await moveToVersions(config.certsDir, log);
    const deps = await assemble(config, log, { store, ...(args.at ? { now: () => args.at! } : {}) });
    let done;
    try {
      done = await revokeStored(deps, args.name, args.reason, deps.now?.() ?? new Date());
    } catch (e) {
      process.stderr.write(`certwrangler: ${(e as Error).message}\n`);
      return e instanceof RevokeError && /no certificate named|placeholder/.test(e.message) ? 2 : 1;
    }
    const { record } = done;
    log.warn({ cert: args.name, action: 'revoke', reason: 'Revoked', revocationReason: record.reason, serial: record.serialNumber }, `${args.name}: revoked (${record.reason})`);
    console.log(`${args.name}: ${done.already ? 'was already revoked' : 'revoked'} (serial ${record.serialNumber}, reason ${record.reason}) at ${record.directoryUrl}`);
    if (!args.renew) {
      console.log(`${args.name}: marked for renewal; the next pass of the manager replaces it (--no-renew)`);
      return 0;
    }
    const report = await runPass(deps);
    await Promise.all([deps.solver.cleanupAll(), deps.dnsSolver?.cleanupAll()]);
    await deps.events.drain();
    const r = report.results.find((x) => x.name === args.name);
    if (!r || r.decision.reason === 'Unwanted') {
      console.log(`${args.name}: not renewed: no source asks for it any more`);
      return 0;
    }
    if (r.issued) {
      console.log(`${args.name}: renewed: a new ${r.kind ?? ''} certificate, expires ${r.notAfter ?? '?'}${r.pushed ? '' : `; not pushed yet: ${r.error ?? ''}`}`.replace(/ {2,}/g, ' '));
      return r.pushed ? 0 : 1;
    }
    console.log(`${args.name}: not renewed yet: ${r.error ?? r.decision.message}; the next pass tries again`);
    return 1;
  } finally {
    await lock.release();
  }
}
