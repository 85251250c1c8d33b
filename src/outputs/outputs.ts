/**
 * Balancer-native outputs beside the files of CERTS_DIR (issue 21 item 3): a file a balancer reads in its own
 * format (HAProxy's crt-list, Traefik's dynamic configuration, an nginx include per certificate), and, for
 * HAProxy, the running process told through its runtime API. The files target calls `afterPush` when a
 * certificate's link moved to a new version, and `resync` once per pass after the pushes; both only write
 * what differs.
 */
import { promises as fs } from 'node:fs';
import { dirname, posix } from 'node:path';
import { ensureDir, writeFileAtomic } from '../certs/atomic.js';
import type { Logger } from '../log.js';
import type { ReloadRetry } from '../orchestrators/orchestrator.js';

/** One certificate certwrangler keeps in CERTS_DIR. */
export interface KeptCert {
  name: string;
  /** Where CERTS_DIR/<name> points, relative to CERTS_DIR: ".certwrangler-archive/<name>/<n>". */
  version: string;
}

/** Paths as the balancer's container sees them: BALANCER_CERTS_DIR in place of CERTS_DIR. */
export class BalancerPaths {
  constructor(readonly certsDir: string) {}

  /** The stable path, through the CERTS_DIR/<name> link: what HAProxy knows a certificate by. */
  current(name: string, file: string): string {
    return posix.join(this.certsDir, name, file);
  }

  /**
   * The version's own path: a balancer that reads key and certificate from two files reads one version
   * of both, and the file naming them changes with every renewal, which is what Traefik's file provider
   * and an nginx reload notice.
   */
  pinned(cert: KeptCert, file: string): string {
    return posix.join(this.certsDir, cert.version, file);
  }
}

/** One balancer format. */
export interface Output {
  readonly name: string;
  /** A file of this output that a balancer's own configuration names for this certificate (removal must wait for it). */
  pins?(name: string): Promise<string | undefined>;
  /**
   * Rewrites its files for these certificates (every one in CERTS_DIR, by name); returns the files it changed.
   * A file per certificate is written at each push; one file for all (a crt-list) once a pass, after the pushes,
   * so that a first pass of thousands of certificates writes it once, not once per certificate.
   */
  write(certs: KeptCert[]): Promise<string[]>;
  /** Its files are one per certificate: `write([cert])` after a push writes that certificate's alone. */
  readonly perCertificate?: boolean;
  /** Tells a running balancer about a certificate's new bundle, when it can be told (HAProxy's runtime API). */
  update?(cert: KeptCert, bundle: string): Promise<string>;
  /** Whether the running balancer already serves this bundle; only outputs with `update`. */
  serves?(cert: KeptCert, bundle: string): Promise<boolean>;
  /** What a pending update is called in reports: "HAProxy runtime API /run/haproxy.sock". */
  readonly balancer?: string;
}

// A running balancer that did not take an update is asked again a minute later, doubling to an hour, as
// Rancher balancer reloads are (src/orchestrators/rancher/reloads.ts): soon after a restart, at most
// once an hour while it stays unreachable.
const UPDATE_RETRY_FIRST_MS = 60_000;
const UPDATE_RETRY_MAX_MS = 3_600_000;

interface Pending {
  attempts: number;
  nextAttempt: number;
  reason: string;
}

const PUBLIC_MODE = 0o644;
const DIR_MODE = 0o755;

/** Writes `text` to `path` (atomically) unless it already holds exactly that; true when it wrote. */
export async function writeIfChanged(path: string, text: string, mode = PUBLIC_MODE): Promise<boolean> {
  const old = await fs.readFile(path, 'utf8').catch(() => undefined);
  if (old === text) return false;
  await ensureDir(dirname(path), DIR_MODE);
  await writeFileAtomic(path, text, mode);
  return true;
}

export class Outputs {
  /** Certificate name → output name → its pending update. */
  private readonly pending = new Map<string, Map<string, Pending>>();

  constructor(
    private readonly outputs: Output[],
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  get empty(): boolean {
    return this.outputs.length === 0;
  }

  /** The first output file a balancer may still include for `name` (DECOMMISSION=remove waits while there is one). */
  async pinnedBy(name: string): Promise<string | undefined> {
    for (const o of this.outputs) {
      const file = await o.pins?.(name);
      if (file) return file;
    }
    return undefined;
  }

  /**
   * After CERTS_DIR/<cert.name> points at a new version: the outputs' files of this certificate, then the
   * running balancers (files naming every certificate wait for `resync` at the end of the pass).
   * Never throws (the certificate is in place; an output is the balancer's view of it): returns the
   * balancers whose update is still pending, which `resync` retries.
   */
  async afterPush(cert: KeptCert, bundle: string): Promise<string[]> {
    const pending: string[] = [];
    for (const o of this.outputs) {
      try {
        const changed = o.perCertificate ? await o.write([cert]) : [];
        if (changed.length > 0) this.log.info({ cert: cert.name, output: o.name, files: changed }, `${cert.name}: ${o.name} output written: ${changed.join(', ')}`);
      } catch (e) {
        pending.push(`${o.name} output files`);
        this.log.error({ cert: cert.name, output: o.name, error: (e as Error).message }, `${cert.name}: cannot write the ${o.name} output: ${(e as Error).message}; retried at the next pass`);
      }
      if (o.update && !(await this.tryUpdate(o, cert, bundle))) pending.push(o.balancer ?? o.name);
    }
    return pending;
  }

  private async tryUpdate(o: Output, cert: KeptCert, bundle: string): Promise<boolean> {
    try {
      const said = await o.update!(cert, bundle);
      this.pending.get(cert.name)?.delete(o.name);
      this.log.info({ cert: cert.name, output: o.name, action: 'reload', balancer: o.balancer }, `${cert.name}: ${o.balancer ?? o.name} updated: ${said}`);
      return true;
    } catch (e) {
      const byOutput = this.pending.get(cert.name) ?? new Map<string, Pending>();
      this.pending.set(cert.name, byOutput);
      const attempts = (byOutput.get(o.name)?.attempts ?? 0) + 1;
      const delay = Math.min(UPDATE_RETRY_FIRST_MS * 2 ** (attempts - 1), UPDATE_RETRY_MAX_MS);
      byOutput.set(o.name, { attempts, nextAttempt: this.now().getTime() + delay, reason: (e as Error).message });
      this.log.warn({ cert: cert.name, output: o.name, balancer: o.balancer, error: (e as Error).message }, `${cert.name}: ${o.balancer ?? o.name} not updated: ${(e as Error).message}; retried from ${new Date(this.now().getTime() + delay).toISOString()}`);
      return false;
    }
  }

  /**
   * Once a pass: every output's files rewritten where they differ from CERTS_DIR (outputs turned on for
   * certificates already there, a file removed by hand), and the running balancers' updates that are due.
   * A balancer that serves another bundle than CERTS_DIR holds (restarted from an old file, an update
   * lost) is updated too, so nothing about it needs to be remembered across restarts.
   */
  async resync(certs: KeptCert[], bundleOf: (cert: KeptCert) => Promise<string>): Promise<ReloadRetry[]> {
    const out: ReloadRetry[] = [];
    const now = this.now().getTime();
    for (const o of this.outputs) {
      try {
        const changed = await o.write(certs);
        if (changed.length > 0) this.log.info({ output: o.name, files: changed }, `${o.name} output written: ${changed.join(', ')}`);
      } catch (e) {
        this.log.error({ output: o.name, error: (e as Error).message }, `cannot write the ${o.name} output: ${(e as Error).message}`);
      }
      if (!o.update) continue;
      for (const cert of certs) {
        const p = this.pending.get(cert.name)?.get(o.name);
        if (p && p.nextAttempt > now) continue;
        let bundle: string;
        let current: boolean;
        try {
          bundle = await bundleOf(cert);
          current = await o.serves!(cert, bundle);
        } catch (e) {
          if (p) out.push({ cert: cert.name, balancer: o.balancer ?? o.name, ok: false, message: (e as Error).message });
          continue;
        }
        if (current) {
          if (p) {
            this.pending.get(cert.name)!.delete(o.name);
            out.push({ cert: cert.name, balancer: o.balancer ?? o.name, ok: true, message: 'serves the current certificate' });
          }
          continue;
        }
        const ok = await this.tryUpdate(o, cert, bundle);
        out.push({ cert: cert.name, balancer: o.balancer ?? o.name, ok, message: ok ? 'updated' : (this.pending.get(cert.name)?.get(o.name)?.reason ?? 'failed') });
      }
    }
    return out;
  }

  /** When the earliest pending balancer update is due. */
  nextRetryAt(): Date | undefined {
    const times = [...this.pending.values()].flatMap((m) => [...m.values()].map((p) => p.nextAttempt));
    return times.length > 0 ? new Date(Math.min(...times)) : undefined;
  }
}
