/**
 * What the manager imports before its first pass: the seed's certbot store (LETSENCRYPT_ROOTDIR, or the seed's
 * default in seed-compatible mode) and an account key alone (ACME_ACCOUNT_KEY_FILE). Both are idempotent: a
 * restart imports only what is new, and never overwrites what certwrangler holds.
 */
import { promises as fs } from 'node:fs';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Store } from '../stores/store.js';
import { CertbotStoreError, describeImport, holdsCertbotState, importAccountKeyFile, importCertbot, type ImportReport } from './certbot.js';

const OPT_OUT = 'set LETSENCRYPT_ROOTDIR=off to start without importing';

function logReport(report: ImportReport, log: Logger): void {
  for (const line of describeImport(report)) {
    if (line.startsWith('not imported: ')) log.error({ step: 'import' }, line);
    else log.info({ step: 'import' }, line);
  }
}

/**
 * Throws when the store named cannot be imported whole: a half import would register a new account or order
 * again what the seed already holds, which is what the switch must not do.
 */
export async function importAtStart(config: Config, log: Logger, store: Store): Promise<void> {
  const target = { store, productionDirectoryUrl: config.productionDirectoryUrl, stagingDirectoryUrl: config.stagingDirectoryUrl };
  const dir = config.seed.certbotDir;
  if (dir) {
    const exists = await fs.stat(dir.path).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!exists && dir.explicit) throw new Error(`LETSENCRYPT_ROOTDIR=${dir.path}: no such directory; mount the seed's letsencrypt-certs volume there, or ${OPT_OUT}`);
    // The seed's default, not asked for by name: Debian's certbot package leaves a cli.ini there and nothing else.
    if (!exists || (!dir.explicit && !(await holdsCertbotState(dir.path)))) log.info({ step: 'import' }, `no certbot store at ${dir.path} (the seed's LETSENCRYPT_ROOTDIR): nothing to import`);
    else {
      let report: ImportReport;
      try {
        report = await importCertbot(dir.path, target);
      } catch (e) {
        if (e instanceof CertbotStoreError) throw new Error(`${e.message}; ${OPT_OUT}`);
        throw e;
      }
      logReport(report, log);
      if (report.problems.length > 0) {
        throw new Error(`the certbot store at ${dir.path} could not be imported whole (${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}, each logged above naming its file); what could be was imported. Fix them and start again, or ${OPT_OUT}`);
      }
    }
  }
  if (config.seed.accountKeyFile) {
    const report = await importAccountKeyFile(config.seed.accountKeyFile, target).catch((e: Error) => {
      throw new Error(`ACME_ACCOUNT_KEY_FILE: ${e.message}`);
    });
    logReport(report, log);
  }
}
