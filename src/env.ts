/**
 * The environment parsers every part shares: config.ts for the core variables, each DNS provider's and
 * orchestrator's folder for its own. Each reads one variable and throws a ConfigError naming it.
 */
import { isIP } from './ip.js';

export type Env = Record<string, string | undefined>;

/** A bad environment value: names the variable, the value and what is accepted. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    value: string | undefined,
    accepted: string,
    secret = false,
  ) {
    const shown = secret ? '(hidden)' : JSON.stringify(value ?? '');
    super(`config: ${variable}=${shown} is not valid; accepted: ${accepted}`);
    this.name = 'ConfigError';
  }
}

export function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

export const TRUE = ['true', '1', 'yes', 'on'];
export const FALSE = ['false', '0', 'no', 'off'];

export function parseBool(env: Env, name: string, dflt: boolean): boolean {
  const v = str(env, name);
  if (v === undefined) return dflt;
  const l = v.toLowerCase();
  if (TRUE.includes(l)) return true;
  if (FALSE.includes(l)) return false;
  throw new ConfigError(name, v, 'true/false, 1/0, yes/no, on/off (any case)');
}

export function parseInt(env: Env, name: string, min: number, max: number): number | undefined {
  const v = str(env, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new ConfigError(name, v, `a whole number from ${min} to ${max}`);
  }
  return Number(v);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "60s", "5m", "1h", "500ms", or a bare number of seconds. */
export function parseDuration(env: Env, name: string, dfltMs: number, minMs = 1): number {
  const v = str(env, name);
  if (v === undefined) return dfltMs;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v);
  const ms = m ? Number(m[1]) * UNIT_MS[m[2] ?? 's']! : NaN;
  if (!m || !Number.isFinite(ms) || ms < minMs) {
    throw new ConfigError(name, v, `a duration such as 60s, 5m, 1h or 500ms (at least ${minMs} ms)`);
  }
  return ms;
}

export function parseEnum<T extends string>(env: Env, name: string, options: readonly T[], dflt: T): T {
  const v = str(env, name);
  if (v === undefined) return dflt;
  const l = v.toLowerCase() as T;
  if (!options.includes(l)) throw new ConfigError(name, v, options.join(', '));
  return l;
}

/**
 * A URL as an error may show it: never its user and password, and with `hidePath` (a Slack webhook's path
 * is its secret) only the scheme and host. A value too broken to find those in is "(hidden)".
 */
export function shownUrl(v: string, hidePath = false): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)?(?:[^/?#]*@)?([^/?#\s]*)([\s\S]*)$/i.exec(v.trim());
  if (!m) return '(hidden)';
  const rest = hidePath ? (m[3] ? '/…' : '') : m[3]!;
  return `${m[1] ?? ''}${m[2]}${rest}`;
}

export function parseUrl(env: Env, name: string, dflt: string, opts: { hidePath?: boolean } = {}): string {
  const v = str(env, name) ?? dflt;
  const bad = () => new ConfigError(name, shownUrl(v, opts.hidePath), 'an absolute http:// or https:// URL');
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw bad();
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad();
  return v;
}

/**
 * "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address, split; the host may be empty (":9180").
 * Undefined when it is none of these or the port is out of range.
 */
export function splitHostPort(v: string): { host: string; port: number | undefined } | undefined {
  if (isIP(v) === 6) return { host: v, port: undefined };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*))(?::(\d{1,5}))?$/.exec(v);
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || (port !== undefined && (port < 1 || port > 65535))) return undefined;
  return { host: m[1] ?? m[2]!, port };
}
