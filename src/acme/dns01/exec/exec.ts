/**
 * The operator's own script, called as lego's exec provider calls it, so scripts written for lego work:
 *   EXEC_PATH present  _acme-challenge.example.com.  <value>
 *   EXEC_PATH cleanup  _acme-challenge.example.com.  <value>
 * A non-zero exit or a run past EXEC_TIMEOUT (the process group is killed) fails the challenge.
 */
import { runHook } from '../../../hooks.js';
import type { DnsProvider } from '../provider.js';

export class ExecProvider implements DnsProvider {
  readonly name = 'exec';

  constructor(
    private readonly path: string,
    private readonly timeoutMs: number,
  ) {}

  private async run(action: 'present' | 'cleanup', fqdn: string, value: string): Promise<void> {
    // Arguments travel in the environment and are quoted by the shell: a name cannot inject a command.
    const r = await runHook('exec "$EXEC_PATH" "$CERTWRANGLER_DNS_ACTION" "$CERTWRANGLER_FQDN" "$CERTWRANGLER_VALUE"', { EXEC_PATH: this.path, CERTWRANGLER_DNS_ACTION: action, CERTWRANGLER_FQDN: `${fqdn}.`, CERTWRANGLER_VALUE: value }, this.timeoutMs);
    const said = r.output ? `: ${r.output.slice(-300)}` : '';
    if (r.timedOut) throw new Error(`EXEC_PATH ${this.path} ${action} ${fqdn}. killed after ${this.timeoutMs} ms (EXEC_TIMEOUT)${said}`);
    if (r.code !== 0) throw new Error(`EXEC_PATH ${this.path} ${action} ${fqdn}. exited with ${r.code}${said}`);
  }

  present(fqdn: string, value: string): Promise<void> {
    return this.run('present', fqdn, value);
  }

  cleanup(fqdn: string, value: string): Promise<void> {
    return this.run('cleanup', fqdn, value);
  }
}
