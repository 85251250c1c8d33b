/**
 * Runs the operator's hooks and webhook for each event, off the pass: the pass hands an event over and
 * goes on. Events of one certificate are delivered in order (a placeholder's hook before the real
 * certificate's); different certificates do not wait for each other. A failing or hanging hook is killed
 * at its timeout and logged.
 */
import { runHook } from '../hooks.js';
import type { Logger } from '../log.js';
import { describeEvent, type CertEvent, type EventSink } from './events.js';
import { postWebhook, redactUrl, type WebhookOptions } from './webhook.js';

export interface NotifierOptions {
  onChangeCommand?: string;
  onFailureCommand?: string;
  hookTimeoutMs: number;
  webhook?: WebhookOptions;
  /** File paths of a certificate, for the hooks' environment. */
  pathsFor: (name: string) => Record<string, string>;
  log: Logger;
  /** Told of every event as it is emitted (the status page keeps the last few). */
  listeners?: ((e: CertEvent) => void)[];
}

export class Notifier implements EventSink {
  private readonly queues = new Map<string, Promise<void>>();

  constructor(private readonly opts: NotifierOptions) {}

  emit(e: CertEvent): void {
    for (const l of this.opts.listeners ?? []) {
      try {
        l(e);
      } catch (err) {
        this.opts.log.warn({ cert: e.name, event: e.type, error: (err as Error).message }, `${e.name}: a listener failed on ${e.type}: ${(err as Error).message}`);
      }
    }
    const prev = this.queues.get(e.name) ?? Promise.resolve();
    // Nothing may reject here: a rejection nobody awaits ends the process, and it would skip this certificate's later events.
    const next = prev.then(() => this.deliver(e)).catch((err: unknown) => {
      this.opts.log.error({ cert: e.name, event: e.type, error: (err as Error)?.message }, `${e.name}: delivering ${e.type} failed: ${(err as Error)?.message}`);
    });
    this.queues.set(e.name, next);
    void next.finally(() => {
      if (this.queues.get(e.name) === next) this.queues.delete(e.name);
    });
  }

  /** Waits for every event handed over so far (manager --once, shutdown, tests). */
  async drain(): Promise<void> {
    while (this.queues.size > 0) await Promise.all([...this.queues.values()]);
  }

  private async deliver(e: CertEvent): Promise<void> {
    // A refusal needs the operator, like a failure; nothing changed that a reload would pick up.
    const failure = e.type === 'failed' || e.type === 'refused' || e.type === 'not-served';
    const command = failure ? this.opts.onFailureCommand : this.opts.onChangeCommand;
    const hookName = failure ? 'ON_FAILURE_COMMAND' : 'ON_CHANGE_COMMAND';
    const results = await Promise.allSettled([
      command ? this.hook(hookName, command, e) : undefined,
      this.opts.webhook ? this.webhook(e, this.opts.webhook) : undefined,
    ]);
    for (const r of results) {
      if (r.status === 'rejected') this.opts.log.error({ cert: e.name, event: e.type, error: (r.reason as Error)?.message }, `${e.name}: ${e.type}: ${(r.reason as Error)?.message}`);
    }
  }

  private async hook(hookName: string, command: string, e: CertEvent): Promise<void> {
    const vars: Record<string, string> = {
      CERTWRANGLER_EVENT: e.type,
      CERTWRANGLER_NAME: e.name,
      CERTWRANGLER_NAMES: e.names.join(','),
      CERTWRANGLER_REASON: e.reason,
      CERTWRANGLER_MESSAGE: describeEvent(e),
      ...(e.kind ? { CERTWRANGLER_KIND: e.kind } : {}),
      ...(e.notAfter ? { CERTWRANGLER_NOT_AFTER: e.notAfter } : {}),
      ...(e.target ? { CERTWRANGLER_TARGET: e.target } : {}),
      ...(e.error ? { CERTWRANGLER_ERROR: e.error } : {}),
      ...(e.nextAttempt ? { CERTWRANGLER_NEXT_ATTEMPT: e.nextAttempt } : {}),
      // A DNS change names a DNS name, not a certificate: no files go with it.
      ...(e.type === 'dns' ? {} : this.opts.pathsFor(e.name)),
    };
    const r = await runHook(command, vars, this.opts.hookTimeoutMs);
    const fields = { cert: e.name, event: e.type, hook: hookName, exitCode: r.code, output: r.output };
    if (r.timedOut) this.opts.log.warn(fields, `${e.name}: ${hookName} killed after ${this.opts.hookTimeoutMs} ms (HOOK_TIMEOUT)`);
    else if (r.code !== 0) this.opts.log.warn(fields, `${e.name}: ${hookName} exited with ${r.code}`);
    else this.opts.log.info(fields, `${e.name}: ${hookName} ran for ${e.type}`);
  }

  private async webhook(e: CertEvent, opts: WebhookOptions): Promise<void> {
    try {
      await postWebhook(e, opts);
      this.opts.log.debug({ cert: e.name, event: e.type, webhook: redactUrl(opts.url) }, `${e.name}: webhook sent for ${e.type}`);
    } catch (err) {
      this.opts.log.warn({ cert: e.name, event: e.type, error: (err as Error).message }, `${e.name}: ${(err as Error).message}`);
    }
  }
}
