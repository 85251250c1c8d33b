/**
 * HAProxy: a crt-list naming every certificate's bundle.pem (certificate, chain and key in one file, read
 * once, so never half of a renewal), for `bind :443 ssl crt-list <file>`. With HAPROXY_RUNTIME_API, the
 * running HAProxy is also given each new bundle without a reload (management guide §9.3): `set ssl cert`
 * and `commit ssl cert` for a certificate it has loaded, and for a new name `new ssl cert` first and
 * `add ssl crt-list` after, so that it is served at once and is in the file for the next start.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { splitPemChain } from '../../certs/parse.js';
import { writeIfChanged, type BalancerPaths, type KeptCert, type Output } from '../outputs.js';
import { RuntimeApi, RuntimeApiError } from './runtime-api.js';

export interface HaproxyOptions {
  /** Where certwrangler writes the crt-list. */
  crtList: string;
  /** The crt-list as HAProxy names it (its `crt-list` argument), for `add ssl crt-list`. */
  balancerCrtList: string;
  runtime: RuntimeApi | undefined;
}

/** The certificate's SHA-1 as HAProxy's `show ssl cert <file>` prints it ("SHA1 FingerPrint: 0A1B…"). */
function sha1Of(bundle: string): string {
  const leaf = splitPemChain(bundle)[0];
  if (!leaf) throw new Error('the bundle holds no certificate');
  return createHash('sha1').update(new X509Certificate(leaf).raw).digest('hex').toUpperCase();
}

/** `set ssl cert`'s answer names the certificate whose transaction now holds the payload. */
const TRANSACTION = /Transaction (?:created|updated) for certificate (.+)!/;

export class HaproxyOutput implements Output {
  readonly name = 'haproxy';
  /**
   * HAProxy keeps one certificate transaction for the whole process: a `set ssl cert` of another file while one
   * is open puts its payload into the open one (2.6 answers "Transaction updated for certificate <the other>"),
   * and the next commit would serve it under the wrong name. Updates therefore go one at a time.
   */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly opts: HaproxyOptions,
    private readonly paths: BalancerPaths,
  ) {}

  get balancer(): string | undefined {
    return this.opts.runtime ? `HAProxy runtime API ${this.opts.runtime.where}` : undefined;
  }

  /** One line per certificate, by name; HAProxy takes each certificate's names from the certificate itself. */
  render(certs: KeptCert[]): string {
    const lines = [...certs].sort((a, b) => a.name.localeCompare(b.name)).map((c) => this.paths.current(c.name, 'bundle.pem'));
    return `# Written by certwrangler; rewritten whenever a certificate is added. The first line is the default certificate.\n${lines.join('\n')}\n`;
  }

  async write(certs: KeptCert[]): Promise<string[]> {
    return (await writeIfChanged(this.opts.crtList, this.render(certs))) ? [this.opts.crtList] : [];
  }

  /** The runtime API's answer must say this, or the step failed (the guide's wording for each command). */
  private async expect(command: string, ok: RegExp, payload?: string): Promise<string> {
    const answer = (await this.opts.runtime!.send(command, payload)).trim();
    if (!ok.test(answer)) throw new RuntimeApiError(`HAProxy runtime API ${this.opts.runtime!.where}: "${command.split(' ').slice(0, 4).join(' ')}" answered: ${answer.split('\n').slice(0, 3).join(' ') || '(nothing)'}`);
    return answer;
  }

  /** The names HAProxy has certificates loaded under (`show ssl cert`). */
  private async loaded(): Promise<Set<string>> {
    const answer = await this.opts.runtime!.send('show ssl cert');
    return new Set(answer.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.trim()));
  }

  async serves(cert: KeptCert, bundle: string): Promise<boolean> {
    // One command per certificate: a file HAProxy has not loaded answers without a fingerprint.
    const answer = await this.opts.runtime!.send(`show ssl cert ${this.paths.current(cert.name, 'bundle.pem')}`);
    const m = /^SHA1 FingerPrint: ([0-9A-F]+)$/m.exec(answer);
    return m?.[1] === sha1Of(bundle);
  }

  update(cert: KeptCert, bundle: string): Promise<string> {
    const run = this.queue.then(() => this.updateNow(cert, bundle));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async updateNow(cert: KeptCert, bundle: string): Promise<string> {
    const file = this.paths.current(cert.name, 'bundle.pem');
    const isNew = !(await this.loaded()).has(file);
    if (isNew) await this.expect(`new ssl cert ${file}`, /New empty certificate store/);
    let open = file;
    try {
      const answer = await this.expect(`set ssl cert ${file}`, TRANSACTION, bundle);
      open = TRANSACTION.exec(answer)![1]!;
      if (open !== file) {
        throw new RuntimeApiError(`HAProxy runtime API ${this.opts.runtime!.where}: a transaction for ${open} was open (another client's), and took the payload meant for ${file}; aborted it rather than commit it under the wrong name`);
      }
      await this.expect(`commit ssl cert ${file}`, /Success!/);
    } catch (e) {
      // A transaction left open would block the next `set ssl cert`; one holding our payload must never be committed.
      await this.opts.runtime!.send(`abort ssl cert ${open}`).catch(() => undefined);
      throw e;
    }
    if (!isNew) return `set ssl cert ${file}, committed (no reload)`;
    await this.expect(`add ssl crt-list ${this.opts.balancerCrtList} ${file}`, /Success!/);
    return `new ssl cert ${file}, added to crt-list ${this.opts.balancerCrtList} (no reload)`;
  }
}
