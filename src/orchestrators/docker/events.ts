/**
 * Follows the daemon's /events, filtered to what can change the wanted set (containers and Swarm services
 * starting, stopping, being updated), so a new service is discovered within seconds rather than at the next
 * poll. When the stream drops it reconnects with backoff, and after every (re)connect the caller is told to
 * look at everything again: events missed while disconnected are not replayed.
 */
import type { Logger } from '../../log.js';
import type { DockerApi } from './api.js';

// A compose up or a stack deploy sends a burst (create, start, … per container): one look after it settles.
export const EVENT_SETTLE_MS = 500;
// Reconnecting: 1 s, doubling to 1 min, so a restarting daemon is found again quickly and a dead one is not hammered.
const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 60_000;

const FILTERS = {
  type: ['container', 'service'],
  // Containers: start/stop (die covers a crash, destroy a removal, update a `docker update`); services: create/update/remove.
  event: ['start', 'stop', 'die', 'destroy', 'update', 'create', 'remove'],
};

/** How many of a burst's reasons the pass's trigger names before "and N more". */
const NAMED_REASONS = 4;

/** A burst's reasons in the order they came: "a; b; c; d and 3 more". */
export function describeBurst(reasons: readonly string[]): string {
  const named = reasons.slice(0, NAMED_REASONS).join('; ');
  return reasons.length > NAMED_REASONS ? `${named} and ${reasons.length - NAMED_REASONS} more` : named;
}

export interface EventWatcherOptions {
  api: DockerApi;
  log: Logger;
  /** Called after a burst of events and after every (re)connect. */
  onChange: (why: string) => void;
  settleMs?: number;
  reconnectFirstMs?: number;
}

export class EventWatcher {
  private readonly abort = new AbortController();
  private settle: NodeJS.Timeout | undefined;
  private pendingWhy: string[] | undefined;

  constructor(private readonly opts: EventWatcherOptions) {}

  start(): void {
    void this.loop();
  }

  stop(): void {
    this.abort.abort();
    if (this.settle) clearTimeout(this.settle);
  }

  private changed(why: string): void {
    // Every distinct reason of the burst is named (a few, then how many more): the pass's "pass starting (…)"
    // line then says what it looks at, not only what came first.
    if (!this.pendingWhy) this.pendingWhy = [];
    if (!this.pendingWhy.includes(why)) this.pendingWhy.push(why);
    if (this.settle) return;
    this.settle = setTimeout(() => {
      const w = describeBurst(this.pendingWhy!);
      this.settle = undefined;
      this.pendingWhy = undefined;
      if (!this.abort.signal.aborted) this.opts.onChange(w);
    }, this.opts.settleMs ?? EVENT_SETTLE_MS);
    this.settle.unref();
  }

  private async loop(): Promise<void> {
    const { log } = this.opts;
    const first = this.opts.reconnectFirstMs ?? RECONNECT_FIRST_MS;
    let delay = first;
    let connects = 0;
    while (!this.abort.signal.aborted) {
      try {
        const stream = await this.opts.api.stream(`/events?filters=${encodeURIComponent(JSON.stringify(FILTERS))}`, this.abort.signal);
        connects++;
        delay = first;
        log.info({ reconnect: connects > 1 }, `docker: following events${connects > 1 ? ' again; looking at every container and service' : ''}`);
        // Whatever happened while we were not listening (before the first connect too): a full look.
        this.changed(connects > 1 ? 'docker events reconnected' : 'docker events followed');
        await this.read(stream);
        if (!this.abort.signal.aborted) log.warn('docker: the event stream ended; reconnecting');
      } catch (e) {
        if (this.abort.signal.aborted) return;
        log.warn({ error: (e as Error).message, retryInMs: delay }, `docker: cannot follow events (${(e as Error).message}); retrying in ${delay} ms`);
      }
      if (this.abort.signal.aborted) return;
      await new Promise((r) => setTimeout(r, delay).unref());
      delay = Math.min(delay * 2, RECONNECT_MAX_MS);
    }
  }

  private read(stream: NodeJS.ReadableStream): Promise<void> {
    return new Promise((resolve) => {
      let buf = '';
      stream.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          try {
            const ev = JSON.parse(line) as { Type?: string; Action?: string; Actor?: { Attributes?: { name?: string } } };
            this.changed(`docker event: ${ev.Type ?? '?'} ${ev.Actor?.Attributes?.name ?? ''} ${ev.Action ?? ''}`.replace(/\s+/g, ' ').trim());
          } catch {
            this.changed('docker event');
          }
        }
      });
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
      stream.on('error', () => resolve());
    });
  }
}
