/**
 * One writer per DATA_DIR (DESIGN §10): a manager holds `DATA_DIR/manager.lock` for as long as it runs.
 *
 * The lock is a folder made with mkdir(), atomic on every filesystem NFS included, with its mtime touched as a
 * heartbeat: proper-lockfile's design. proper-lockfile itself (last release 2021) does not fit: it records no
 * owner, so it can neither name the holder's pid and host nor see at once that the holder is dead, and its
 * default on a lost lock is an uncaught throw. Here `owner.json` inside the folder names the holder.
 *
 * A lock is stale, and taken over, when its holder is on this host and its process is gone (or is a different
 * process under a reused pid), or, from any host, when its heartbeat is older than STALE_MS. Takeovers run one at
 * a time and check again that the lock is the one judged stale, so two managers taking over at once do not both win.
 */
import { promises as fs, readlinkSync, rmSync, statSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ensureDir, writeFileAtomic } from './certs/atomic.js';
import { DIR_MODE, dataDirError } from './stores/files/files-store.js';
import type { Config } from './config.js';
import type { Store } from './stores/store.js';
import type { Logger } from './log.js';

export const LOCK_NAME = 'manager.lock';
/** How often the holder touches the lock. */
export const HEARTBEAT_MS = 5_000;
/**
 * A heartbeat older than this means the holder is gone: six missed beats, so an event loop busy for seconds
 * (key generation) or an NFS server's coarse mtimes never make a live lock look stale.
 */
export const STALE_MS = 30_000;
/** A heartbeat this old (two missed beats): the holder is dying or dead, and its lock is worth waiting for. */
const DYING_MS = 2 * HEARTBEAT_MS + 1_000;
/** How often a waiting `--once` looks again. */
const POLL_MS = 200;

export interface LockOwner {
  pid: number;
  host: string;
  /** When the lock was taken (ISO). */
  since: string;
  /** The process's start time in clock ticks since boot (Linux /proc), to tell a reused pid from the holder. */
  started?: number;
  /** This holding's identity: inode numbers are reused, so a lock is known by its token. */
  token?: string;
  /**
   * The holder's pid namespace (Linux: /proc/self/ns/pid). Two containers may share a hostname (host network,
   * a fixed `hostname:`) and both run the manager as pid 1: a pid means something only in its own namespace.
   */
  pidns?: string;
}

/** This process's pid namespace, or undefined where there is no /proc. */
function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

export class LockBusyError extends Error {}

export interface HeldLock {
  owner: LockOwner;
  release(): Promise<void>;
}

/** Start time of a process from /proc/<pid>/stat (field 22); undefined where there is no /proc. */
function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, another user's
  }
}

export function describeOwner(o: LockOwner | undefined): string {
  return o ? `pid ${o.pid} on host ${o.host}, since ${o.since}` : 'a manager that has not yet recorded its pid and host';
}

async function readOwner(dir: string): Promise<LockOwner | undefined> {
  try {
    const o = JSON.parse(await fs.readFile(join(dir, 'owner.json'), 'utf8')) as LockOwner;
    return typeof o.pid === 'number' && typeof o.host === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

/** Why the lock at `dir` (seen with `mtimeMs`) is stale, or undefined while its holder may be alive. */
function staleBecause(owner: LockOwner | undefined, mtimeMs: number, now: number): string | undefined {
  // The pid rules hold only for a holder whose pids are ours: same host, same pid namespace. Any other is
  // judged by its heartbeat alone.
  if (owner && owner.host === hostname() && owner.pidns === pidNamespace()) {
    if (owner.pid === process.pid) return `its pid ${owner.pid} is this process's: left by a manager before a restart`;
    if (!alive(owner.pid)) return `pid ${owner.pid} is not running`;
    const started = processStart(owner.pid);
    if (owner.started !== undefined && started !== undefined && started !== owner.started) return `pid ${owner.pid} is now another process`;
  }
  if (now - mtimeMs > STALE_MS) return `no heartbeat for ${Math.round((now - mtimeMs) / 1000)} s`;
  return undefined;
}

export interface LockOptions {
  /** How long to wait for a held lock; 0 refuses at once. */
  waitMs: number;
  /** Told once when the lock is held by another manager and this one waits for it (`mayBeGone`: past LOCK_WAIT, for a holder whose heartbeat has stopped). */
  onWait?: (holder: string, mayBeGone: boolean) => void;
  /** Told when a stale lock is taken over. */
  onTakeover?: (why: string, owner: LockOwner | undefined) => void;
  /** Told when the lock is lost while held (another process removed or replaced it). */
  onLost?: (why: string) => void;
  /**
   * A store with a lease (STORE=redis): given, a lock held by another manager makes this one a standby that waits
   * for as long as it takes, told each leader ("<host> (pid …)"), instead of refusing after waitMs. DATA_DIR's lock
   * ignores it: one manager per DATA_DIR.
   */
  onStandby?: (leader: string) => void;
  /** A standby lost its store (Redis) while waiting: told once per outage; it keeps waiting and looking. */
  onUnreachable?: (why: string, retryMs: number) => void;
}

/**
 * Takes the DATA_DIR lock, waiting up to `waitMs` for a live holder. Throws LockBusyError, one line naming the
 * holder's pid and host, when it stays held.
 */
export async function lockDataDir(dataDir: string, opts: LockOptions): Promise<HeldLock> {
  const dir = join(dataDir, LOCK_NAME);
  try {
    await ensureDir(dataDir, DIR_MODE);
  } catch (e) {
    throw dataDirError(dataDir, e);
  }
  const deadline = Date.now() + opts.waitMs;
  let told = false;
  // A holder that may be gone is waited for, past LOCK_WAIT, while its heartbeat stays still: until when.
  let patience: number | undefined;
  let lastBeat: { holder: string | undefined; mtimeMs: number } | undefined;
  let heard: string | undefined; // the holder (token) whose heartbeat was seen to move: alive
  for (;;) {
    try {
      await fs.mkdir(dir, { mode: DIR_MODE });
      return await hold(dir, opts);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOENT: another manager checking a stale lock moved our fresh one aside for a moment (see takeOver);
      // it puts it back, and we judge it again like any other holder's.
      if (code === 'ENOENT') continue;
      if (code !== 'EEXIST') throw dataDirError(dataDir, e);
    }
    let seen;
    try {
      seen = await fs.stat(dir);
    } catch {
      continue; // released meanwhile: try again at once
    }
    const owner = await readOwner(dir);
    const why = staleBecause(owner, seen.mtimeMs, Date.now());
    if (why !== undefined) {
      if (await takeOver(dir, { ino: seen.ino, mtimeMs: seen.mtimeMs, token: owner?.token })) opts.onTakeover?.(why, owner);
      continue;
    }
    // A holder that may be gone: it has missed beats, or it is this host's manager from another pid namespace
    // (our own container before a crash or an OOM kill: a restarted container gets a new namespace). Refusing
    // would only make this container exit and restart until the lock is stale, so wait for it to go stale, as
    // long as its heartbeat stays still: a heartbeat that moves is a live manager (a twin on the same host
    // name, or a holder whose clock is behind ours), refused like any other.
    const holder = owner?.token;
    if (lastBeat && lastBeat.holder === holder && lastBeat.mtimeMs !== seen.mtimeMs) heard = holder ?? '';
    lastBeat = { holder, mtimeMs: seen.mtimeMs };
    const alive = heard !== undefined && heard === (holder ?? '');
    const mayBeGone = !alive && (Date.now() - seen.mtimeMs > DYING_MS || (owner?.host === hostname() && owner.pidns !== pidNamespace()));
    if (!mayBeGone) patience = undefined;
    else patience ??= Date.now() + STALE_MS + HEARTBEAT_MS;
    if (Date.now() >= deadline && !(patience !== undefined && Date.now() < patience)) {
      const waited = opts.waitMs > 0 ? `; waited ${Math.round(opts.waitMs / 1000)} s (LOCK_WAIT)` : '';
      throw new LockBusyError(`DATA_DIR ${dataDir} is in use by another certwrangler manager (${describeOwner(owner)})${waited}: one manager per DATA_DIR; stop the other or give this one its own DATA_DIR`);
    }
    if (!told) opts.onWait?.(describeOwner(owner), Date.now() >= deadline);
    told = true;
    await new Promise((r) => setTimeout(r, POLL_MS + Math.random() * POLL_MS));
  }
}

/**
 * A takeover holds this for milliseconds; one older was left by a manager that died in the middle of one.
 */
const TAKEOVER_STALE_MS = 10_000;

/**
 * Removes a stale lock, if it is still the one judged stale (same token, or for a lock without one the same
 * inode and mtime: a new lock's folder is newer). Takeovers run one at a time under `<lock>.takeover`, a folder
 * made with mkdir(): nothing else ever removes or moves a lock folder but its own holder, so what is checked
 * under it stays until it is removed. (Moving the lock aside to check it, without this, let a manager move a
 * fresh lock away for a moment, and two managers held it at once.) True when this call removed it.
 */
async function takeOver(dir: string, judged: { ino: number; mtimeMs: number; token: string | undefined }): Promise<boolean> {
  const mutex = `${dir}.takeover`;
  try {
    await fs.mkdir(mutex, { mode: DIR_MODE });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return false;
    const st = await fs.stat(mutex).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > TAKEOVER_STALE_MS) await fs.rmdir(mutex).catch(() => undefined);
    return false; // another manager is taking it over: look again
  }
  try {
    const seen = await fs.stat(dir).catch(() => undefined);
    if (!seen) return false;
    const owner = await readOwner(dir);
    const same = judged.token !== undefined ? owner?.token === judged.token : owner?.token === undefined && seen.ino === judged.ino && seen.mtimeMs === judged.mtimeMs;
    if (!same) return false;
    await fs.rm(dir, { recursive: true, force: true });
    return true;
  } finally {
    await fs.rmdir(mutex).catch(() => undefined);
  }
}

async function hold(dir: string, opts: LockOptions): Promise<HeldLock> {
  const started = processStart(process.pid);
  const pidns = pidNamespace();
  const owner: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString(), ...(started !== undefined ? { started } : {}), ...(pidns !== undefined ? { pidns } : {}), token: randomBytes(12).toString('hex') };
  const ino = (await fs.stat(dir)).ino;
  let recorded = true;
  try {
    await writeFileAtomic(join(dir, 'owner.json'), `${JSON.stringify(owner)}\n`, 0o600);
  } catch (e) {
    recorded = false;
    // A full volume must not stop renewals: the lock holds without its record, and goes stale by heartbeat.
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') {
      await fs.rm(dir, { recursive: true, force: true });
      throw e;
    }
  }
  const ours = () => {
    try {
      if (statSync(dir).ino !== ino) return false;
      return !recorded || (JSON.parse(readFileSync(join(dir, 'owner.json'), 'utf8')) as LockOwner).token === owner.token;
    } catch {
      return false;
    }
  };
  let released = false;
  const beat = setInterval(() => {
    if (!ours()) {
      clearInterval(beat);
      opts.onLost?.(`${dir} was removed or replaced by another process`);
      return;
    }
    const now = new Date();
    fs.utimes(dir, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  beat.unref();
  const releaseSync = () => {
    if (released) return;
    released = true;
    clearInterval(beat);
    if (ours()) rmSync(dir, { recursive: true, force: true });
  };
  // process.exit() skips `finally`: the lock still goes.
  process.once('exit', releaseSync);
  return {
    owner,
    async release() {
      process.removeListener('exit', releaseSync);
      releaseSync();
    },
  };
}

/**
 * The manager's lock, taken through the store (files: DATA_DIR's lock above; Redis: its lease): a daemon refuses
 * at once when a live manager holds it, `--once` waits LOCK_WAIT; both wait out a holder whose heartbeat has
 * stopped. A lock lost while held ends the process, so that one manager writes there.
 */
export function lockForManager(store: Store, config: Config, log: Logger, once: boolean, onStandby?: (leader: string) => void): Promise<HeldLock> {
  const where = store.where;
  return store.lock({
    waitMs: once ? config.lockWaitMs : 0,
    // A daemon on a store with a lease (Redis) stands by behind the leader instead of refusing; DATA_DIR's lock
    // ignores it. `--once` never stands by: it waits LOCK_WAIT like any other.
    ...(once
      ? {}
      : {
          onStandby: (leader: string) => {
            log.info({ role: 'standby', leader }, `standby, leader is ${leader}: this manager takes over when the leader's lease in ${where} lapses`);
            onStandby?.(leader);
          },
          onUnreachable: (why: string, retryMs: number) => log.warn({ role: 'standby', error: why }, `standby: ${where} is out of reach (${why}); this manager keeps standing by and looks again every ${retryMs / 1000} s`),
        }),
    onWait: (holder, mayBeGone) =>
      log.info(
        mayBeGone
          ? `${where} is held by a manager whose heartbeat has stopped (${holder}): waiting for its lock to go stale (${STALE_MS / 1000} s without a heartbeat), unless the heartbeat moves`
          : `${where} is in use by another manager (${holder}): waiting up to ${config.lockWaitMs / 1000} s (LOCK_WAIT)`,
      ),
    onTakeover: (why, owner) => log.warn({ owner }, `took over the lock on ${where} left by ${describeOwner(owner)}: ${why}`),
    onLost: (why) => {
      log.error(`lost the lock on ${where} (${why}): exiting so that one manager writes there`);
      process.exit(1);
    },
  });
}
