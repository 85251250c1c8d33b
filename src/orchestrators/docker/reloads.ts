/**
 * Reloads after a certificate changed (issue 21 item 2): every running container labelled `certwrangler.reload`
 * gets the signal the label names (HUP by default) through the kill API, or, with
 * `certwrangler.reload.exec=<command>`, that command through the exec API, its exit code and output checked.
 * Pushes only mark the pass as changed; the reloads run once at its end (`retryReloads`), so 20 certificates
 * renewed in one pass mean one reload per container. What changed and what failed is kept in
 * the store's docker-reloads.json (DATA_DIR's on files), so a restart still reloads, and a failed reload is retried with backoff
 * (the Rancher book's steps) without a new order.
 *
 * On Swarm, containers on other nodes are reached with a one-shot global job of certwrangler's own image
 * (DOCKER_SWARM_RELOAD_IMAGE) that runs `certwrangler reload-local` against each node's socket.
 */
import { JsonBook } from '../../stores/json-book.js';
import type { Store } from '../../stores/store.js';
import { CONTROL_CHARS } from '../../hooks.js';
import type { Logger } from '../../log.js';
import type { ReloadRetry } from '../orchestrator.js';
import { retryDelay } from '../rancher/reloads.js';
import { DockerError, type DockerApi } from './api.js';
import { listContainers, swarmState, type DockerContainer } from './discovery.js';

export const RELOAD_LABEL = 'certwrangler.reload';
export const EXEC_LABEL = 'certwrangler.reload.exec';
/** Marks the one-shot reload jobs certwrangler creates (and alone removes). */
export const JOB_LABEL = 'certwrangler.reload-job';
/** The job's label value and name prefix: both must match before an old job is removed. */
const JOB_LABEL_VALUE = 'certwrangler-made';
const JOB_NAME_PREFIX = 'certwrangler-reload-';
// What an exec's output may add to a log line or an error.
const MAX_OUTPUT = 500;
// A signal name as `docker kill --signal` takes it (HUP, SIGUSR1, RTMIN+3) or a number.
const SIGNAL = /^(?:SIG)?([A-Z][A-Z0-9]*(?:[+-]\d+)?)$|^(\d{1,2})$/i;

export interface FailedReload {
  containerId: string;
  container: string;
  /** The certificates whose change it has not reloaded yet. */
  certs: string[];
  reason: string;
  since: string;
  attempts: number;
  nextAttempt: string;
}

interface ReloadsFile {
  version: 1;
  /** Certificates pushed since the last round of reloads (written before the round, so a crash still reloads). */
  changed: string[];
  failed: FailedReload[];
}

export function wantsReload(labels: Record<string, string>): boolean {
  return labels[RELOAD_LABEL] !== undefined || (labels[EXEC_LABEL] ?? '').trim() !== '';
}

/** The signal a `certwrangler.reload` value names; a bad value is an error naming the container and what is accepted. */
export function reloadSignal(value: string | undefined, container: string): string {
  const v = (value ?? '').trim();
  if (v === '' || ['true', '1', 'yes', 'on'].includes(v.toLowerCase())) return 'HUP';
  const m = SIGNAL.exec(v);
  if (!m) throw new DockerError(`${RELOAD_LABEL}=${JSON.stringify(v.replace(CONTROL_CHARS, '?').slice(0, 40))} on container ${container} is not a signal; accepted: true (HUP) or a signal name such as HUP, USR1, USR2, or ${EXEC_LABEL}=<command> instead`);
  return m[1] ? m[1].toUpperCase() : m[2]!;
}

const clean = (s: string) => s.replace(CONTROL_CHARS, '').replace(/\s+/g, ' ').trim().slice(-MAX_OUTPUT);

/** Splits the exec API's multiplexed stream (8-byte header per frame: stream, 0, 0, 0, size) into its text. */
export function demux(buf: Buffer): string {
  let out = '';
  let i = 0;
  while (i + 8 <= buf.length) {
    const size = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  // A daemon that answered without frames (a TTY exec) sent the text as it is.
  return i === 0 ? buf.toString('utf8') : out;
}

/** Reloads one container as its labels say; resolves with what was done, rejects with why it did not take. */
export async function reloadContainer(api: DockerApi, c: DockerContainer, execTimeoutMs: number): Promise<string> {
  const id = encodeURIComponent(c.id);
  const command = (c.labels[EXEC_LABEL] ?? '').trim();
  if (command !== '') {
    const created = await api.post<{ Id?: string }>(`/containers/${id}/exec`, { AttachStdout: true, AttachStderr: true, Tty: false, Cmd: ['sh', '-c', command] });
    if (typeof created?.Id !== 'string') throw new DockerError(`Docker API POST /containers/${c.name}/exec: no exec id in the answer`);
    const raw = await api.post<ArrayBuffer>(`/exec/${created.Id}/start`, { Detach: false, Tty: false }, { responseType: 'arraybuffer', timeout: execTimeoutMs });
    const output = clean(demux(Buffer.from(raw)));
    const done = await api.get<{ ExitCode?: number | null; Running?: boolean }>(`/exec/${created.Id}/json`);
    if (done.Running) throw new DockerError(`${EXEC_LABEL} "${clean(command)}" in container ${c.name} still runs after its output ended`);
    if (done.ExitCode !== 0) throw new DockerError(`${EXEC_LABEL} "${clean(command)}" in container ${c.name} exited with ${String(done.ExitCode)}${output ? `: ${output}` : ''}`);
    return `ran "${clean(command)}" (exit 0${output ? `: ${output}` : ''})`;
  }
  const signal = reloadSignal(c.labels[RELOAD_LABEL], c.name);
  await api.post(`/containers/${id}/kill?signal=${encodeURIComponent(signal)}`);
  return `sent SIG${signal.replace(/^\d+$/, (n) => `#${n}`)}`;
}

export interface DockerReloadsOptions {
  api: DockerApi;
  store: Store;
  log: Logger;
  /** How long an exec may run (HOOK_TIMEOUT). */
  execTimeoutMs: number;
  swarmReloadImage: string | undefined;
}

function validReloads(parsed: unknown): ReloadsFile {
  const f = parsed as ReloadsFile;
  if (f?.version !== 1 || !Array.isArray(f.changed) || !Array.isArray(f.failed)) throw new Error('not a version 1 reloads file');
  for (const p of f.failed) if (typeof p?.containerId !== 'string' || Number.isNaN(Date.parse(p.nextAttempt)) || !Number.isInteger(p.attempts)) throw new Error('a failed entry lacks containerId, attempts or nextAttempt');
  return f;
}

export class DockerReloads {
  /** Where the book is, as messages name it (the file on STORE=files). */
  readonly path: string;
  /** One change of the book at a time (JsonBook's chain), so concurrent pushes cannot lose each other's marks. */
  private readonly book: JsonBook<ReloadsFile>;
  private warnedNoImage = false;

  constructor(private readonly opts: DockerReloadsOptions) {
    this.book = new JsonBook<ReloadsFile>(opts.store, {
      path: 'docker-reloads.json',
      empty: () => ({ version: 1, changed: [], failed: [] }),
      validate: validReloads,
      indent: 2,
      unreadable: (shown, why) => `${shown} is unreadable: ${why}`,
      invalid: (shown, why) => `${shown} is not valid (${why}); move it aside to forget the pending container reloads (the next renewal reloads them anyway)`,
    });
    this.path = this.book.shown;
  }

  private load(): Promise<ReloadsFile> {
    return this.book.load();
  }

  /** A push changed `cert`: the labelled containers reload at the end of the pass. */
  changed(cert: string): Promise<void> {
    return this.change((f) => (f.changed.includes(cert) ? f : { ...f, changed: [...f.changed, cert] }));
  }

  async nextAt(): Promise<Date | undefined> {
    const f = await this.load();
    if (f.changed.length > 0) return new Date();
    const times = f.failed.map((p) => Date.parse(p.nextAttempt));
    return times.length > 0 ? new Date(Math.min(...times)) : undefined;
  }

  /** Once per pass: one reload per labelled container if anything changed, and the failed reloads that are due. */
  async run(now: Date): Promise<ReloadRetry[]> {
    const f = await this.load();
    const out: ReloadRetry[] = [];
    const failed = new Map(f.failed.map((p) => [p.containerId, p]));
    const later = (c: { id: string; name: string }, certs: string[], reason: string, prev?: FailedReload): FailedReload => {
      const attempts = (prev?.attempts ?? 0) + 1;
      return { containerId: c.id, container: c.name, certs, reason, since: prev?.since ?? now.toISOString(), attempts, nextAttempt: new Date(now.getTime() + retryDelay(attempts)).toISOString() };
    };
    const one = async (c: DockerContainer, certs: string[]) => {
      const prev = failed.get(c.id);
      try {
        const message = await reloadContainer(this.opts.api, c, this.opts.execTimeoutMs);
        failed.delete(c.id);
        out.push({ cert: certs.join(','), balancer: `container ${c.name}`, ok: true, message });
      } catch (e) {
        const next = later(c, certs, (e as Error).message, prev);
        failed.set(c.id, next);
        out.push({ cert: certs.join(','), balancer: `container ${c.name}`, ok: false, message: `${next.reason}; retried at ${next.nextAttempt}` });
      }
    };
    const handled = f.changed;
    if (f.changed.length > 0) {
      let targets: DockerContainer[];
      try {
        targets = (await listContainers(this.opts.api)).filter((c) => wantsReload(c.labels));
      } catch (e) {
        // Kept as changed: the next pass lists again.
        out.push({ cert: f.changed.join(','), balancer: 'every labelled container', ok: false, message: `containers could not be listed: ${(e as Error).message}` });
        return out;
      }
      for (const c of targets) await one(c, [...new Set([...(failed.get(c.id)?.certs ?? []), ...f.changed])]);
      const job = await this.swarmJob().catch((e: Error) => ({ ok: false, message: `the reload job for the other Swarm nodes was not started: ${e.message}` }));
      if (job) out.push({ cert: f.changed.join(','), balancer: 'containers on the other Swarm nodes', ...job });
    }
    const due = [...failed.values()].filter((p) => Date.parse(p.nextAttempt) <= now.getTime() && !out.some((r) => r.balancer === `container ${p.container}`));
    for (const p of due) {
      let c: DockerContainer | undefined;
      try {
        c = (await listContainers(this.opts.api)).find((x) => x.id === p.containerId);
      } catch (e) {
        failed.set(p.containerId, later({ id: p.containerId, name: p.container }, p.certs, `containers could not be listed: ${(e as Error).message}`, p));
        continue;
      }
      if (!c || !wantsReload(c.labels)) {
        failed.delete(p.containerId);
        out.push({ cert: p.certs.join(','), balancer: `container ${p.container}`, ok: true, message: 'no longer running or no longer labelled; nothing to reload' });
        continue;
      }
      await one(c, p.certs);
    }
    await this.change((cur) => ({ version: 1, changed: cur.changed.filter((x) => !handled.includes(x)), failed: [...failed.values()] }));
    return out;
  }

  /**
   * On a Swarm manager: a one-shot global job on every other node, running `certwrangler reload-local` with
   * the node's socket mounted. Undefined when not on a manager, or when DOCKER_SWARM_RELOAD_IMAGE is unset.
   */
  private async swarmJob(): Promise<{ ok: boolean; message: string } | undefined> {
    const swarm = await swarmState(this.opts.api);
    if (!swarm.manager) return undefined;
    const image = this.opts.swarmReloadImage;
    if (!image) {
      if (!this.warnedNoImage) this.opts.log.warn({ variable: 'DOCKER_SWARM_RELOAD_IMAGE' }, 'docker: this daemon is a Swarm manager, but DOCKER_SWARM_RELOAD_IMAGE is unset: labelled containers on other nodes are not reloaded (set it to certwrangler\'s image)');
      this.warnedNoImage = true;
      return undefined;
    }
    const name = await startReloadJob(this.opts.api, image, swarm.nodeId);
    return { ok: true, message: `started the one-shot global service ${name} (${image}, certwrangler reload-local) on the other nodes` };
  }

  private async change(fn: (f: ReloadsFile) => ReloadsFile): Promise<void> {
    await this.book.change(fn);
  }
}

/**
 * Creates the one-shot global job (Docker 20.10+, API 1.41) that reloads the labelled containers of every node
 * but `exceptNode`, after removing the earlier ones certwrangler made. Returns the service's name.
 */
export async function startReloadJob(api: DockerApi, image: string, exceptNode: string): Promise<string> {
  // Only the jobs this code made: the label with our value and our name prefix. Anyone may put the label on a
  // service; a service certwrangler did not create is never deleted.
  const old = await api.get<{ ID?: string; Spec?: { Name?: string; Labels?: Record<string, string> } }[]>(`/services?filters=${encodeURIComponent(JSON.stringify({ label: [`${JOB_LABEL}=${JOB_LABEL_VALUE}`] }))}`);
  for (const s of Array.isArray(old) ? old : []) {
    if (typeof s.ID !== 'string' || !s.Spec?.Name?.startsWith(JOB_NAME_PREFIX) || s.Spec.Labels?.[JOB_LABEL] !== JOB_LABEL_VALUE) continue;
    await api.delete(`/services/${encodeURIComponent(s.ID)}`).catch(() => undefined);
  }
  const name = `${JOB_NAME_PREFIX}${Date.now()}`;
  await api.post('/services/create', {
    Name: name,
    Labels: { [JOB_LABEL]: JOB_LABEL_VALUE },
    Mode: { GlobalJob: {} },
    TaskTemplate: {
      ContainerSpec: {
        Image: image,
        Args: ['reload-local'],
        // The socket is root's; whoever may use it is root on the node anyway.
        User: '0',
        Env: ['LOG_FORMAT=json', 'STATUS_ADDR=off'],
        Mounts: [{ Type: 'bind', Source: '/var/run/docker.sock', Target: '/var/run/docker.sock' }],
      },
      RestartPolicy: { Condition: 'none' },
      ...(exceptNode ? { Placement: { Constraints: [`node.id!=${exceptNode}`] } } : {}),
    },
  });
  return name;
}

/** `certwrangler reload-local`: reloads every labelled container of the local daemon once; the job's exit code says whether all took. */
export async function reloadLocal(api: DockerApi, log: Logger, execTimeoutMs: number): Promise<number> {
  let bad = 0;
  for (const c of (await listContainers(api)).filter((x) => wantsReload(x.labels))) {
    try {
      log.info({ container: c.name }, `container ${c.name}: ${await reloadContainer(api, c, execTimeoutMs)}`);
    } catch (e) {
      bad++;
      log.error({ container: c.name, error: (e as Error).message }, `container ${c.name}: reload failed: ${(e as Error).message}`);
    }
  }
  return bad === 0 ? 0 : 1;
}
