/**
 * When passes run: once at start, on the cron schedule (or every LOOP_TIME seconds, the seed's way), and
 * soon after the set of wanted certificates changes. Passes never overlap: a trigger during a pass runs
 * one more pass after it.
 */
import schedule from 'node-schedule';
import type { Logger } from './log.js';

// A wake is a pass like any other: at least 10 s apart, so a stream of past-due times cannot spin.
const WAKE_MIN_MS = 10_000;
// setTimeout holds at most 2^31 − 1 ms; a day is far beyond any backoff step, and the schedule runs anyway.
const WAKE_MAX_MS = 24 * 3_600_000;

export interface SchedulerOptions {
  cron: string;
  intervalSec?: number;
  /** Re-read the wanted set every `intervalMs`; a different `fingerprint` starts a pass. */
  discovery?: { intervalMs: number; fingerprint: () => Promise<string> };
  /** The shortest delay of a wake (tests shorten it). */
  wakeMinMs?: number;
  log: Logger;
}

interface Waiter<T> {
  resolve: (r: T) => void;
  reject: (e: Error) => void;
}

export class Scheduler<T = unknown> {
  private running: Promise<void> | undefined;
  /** Callers of requestPass; each gets the report of the first pass that starts after its call. */
  private waiting: Waiter<T>[] = [];
  private again = false;
  private stopped = false;
  private job: schedule.Job | undefined;
  private timers: NodeJS.Timeout[] = [];
  private wake: { at: number; timer: NodeJS.Timeout } | undefined;
  private lastFingerprint: string | undefined;
  private discovering: Promise<void> | undefined;
  private rediscoverAgain: string | undefined;

  constructor(
    private readonly pass: () => Promise<T>,
    private readonly opts: SchedulerOptions,
  ) {}

  start(): void {
    if (this.opts.intervalSec) {
      this.timers.push(setInterval(() => this.trigger('LOOP_TIME'), this.opts.intervalSec * 1000));
    } else {
      this.job = schedule.scheduleJob(this.opts.cron, () => this.trigger('schedule'));
      const next = this.job?.nextInvocation();
      this.opts.log.info({ schedule: this.opts.cron, next: next?.toISOString() }, `passes on schedule "${this.opts.cron}", next ${next?.toISOString()}`);
    }
    const d = this.opts.discovery;
    if (d) {
      this.timers.push(setInterval(() => this.rediscover('wanted certificates changed'), d.intervalMs));
      d.fingerprint().then((fp) => (this.lastFingerprint ??= fp), () => undefined);
    }
    this.trigger('start');
  }

  /** Resolves with the result of a pass that starts after this call (the API's "reconcile now"). */
  requestPass(why: string): Promise<T> {
    if (this.stopped) return Promise.reject(new Error('shutting down'));
    const p = new Promise<T>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.trigger(why);
    return p;
  }

  /**
   * Runs a pass at `at` as well (a pending balancer reload, the end of a backoff), unless an earlier wake is
   * set. Never sooner than WAKE_MIN_MS from now, so a time already past cannot make passes run back to back.
   */
  wakeAt(at: Date, why: string): void {
    if (this.stopped) return;
    const delay = Math.min(Math.max(at.getTime() - Date.now(), this.opts.wakeMinMs ?? WAKE_MIN_MS), WAKE_MAX_MS);
    const when = Date.now() + delay;
    if (this.wake && this.wake.at <= when && this.wake.at > Date.now()) return;
    if (this.wake) clearTimeout(this.wake.timer);
    const timer = setTimeout(() => {
      this.wake = undefined;
      this.trigger(why);
    }, delay);
    timer.unref();
    this.wake = { at: when, timer };
    this.opts.log.info({ wakeAt: new Date(when).toISOString(), why }, `next pass at ${new Date(when).toISOString()} (${why}), before the schedule`);
  }

  /**
   * Reads the wanted set again now (the orchestrator's events say it may have changed) and starts a pass when it
   * differs from the last read. Reads overlapping one in flight are folded into one more after it.
   */
  rediscover(why: string): void {
    const d = this.opts.discovery;
    if (!d || this.stopped) return;
    if (this.discovering) {
      this.rediscoverAgain = why;
      return;
    }
    this.discovering = d
      .fingerprint()
      .then(
        (fp) => {
          if (this.lastFingerprint !== undefined && fp !== this.lastFingerprint) this.trigger(why);
          this.lastFingerprint = fp;
        },
        (e: Error) => this.opts.log.warn({ error: e.message }, `discovery failed: ${e.message}`),
      )
      .finally(() => {
        this.discovering = undefined;
        const again = this.rediscoverAgain;
        this.rediscoverAgain = undefined;
        if (again !== undefined) this.rediscover(again);
      });
  }

  /** When the schedule runs the next pass (not counting triggers by discovery or the API). */
  nextRunAt(): Date | undefined {
    return this.job?.nextInvocation() ?? undefined;
  }

  trigger(why: string): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.opts.log.info({ trigger: why }, `pass starting (${why})`);
    const waiters = this.waiting;
    this.waiting = [];
    this.running = this.pass()
      .then(
        (r) => waiters.forEach((w) => w.resolve(r)),
        (e: Error) => {
          this.opts.log.error({ error: e.message }, `pass failed: ${e.message}`);
          waiters.forEach((w) => w.reject(e));
        },
      )
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.trigger('requested during the previous pass');
        }
      });
  }

  /** Stops scheduling and waits for the pass in flight, up to `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    this.job?.cancel();
    for (const w of this.waiting.splice(0)) w.reject(new Error('shutting down'));
    for (const t of this.timers) clearInterval(t);
    if (this.wake) clearTimeout(this.wake.timer);
    if (this.running) await Promise.race([this.running, new Promise((r) => setTimeout(r, graceMs))]);
  }
}
