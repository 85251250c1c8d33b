/**
 * OUTPUTS and the variables of each output, read once (core configuration: every orchestrator that writes
 * CERTS_DIR, files and those built on it, writes the outputs beside it).
 */
import { isAbsolute, join, relative, resolve } from 'node:path';
import { ConfigError, parseDuration, str, type Env } from '../env.js';
import type { Logger } from '../log.js';
import { BalancerPaths, Outputs, type Output } from './outputs.js';
import { HaproxyOutput } from './haproxy/haproxy.js';
import { parseRuntimeAddress, RuntimeApi, type RuntimeAddress } from './haproxy/runtime-api.js';
import { TraefikOutput } from './traefik/traefik.js';
import { NginxOutput } from './nginx/nginx.js';
import { nethserverFromEnv, type NethserverConfig } from './nethserver/config.js';
import { NethserverOutput } from './nethserver/nethserver.js';

export const OUTPUT_NAMES = ['haproxy', 'traefik', 'nginx'] as const;
export type OutputName = (typeof OUTPUT_NAMES)[number];

export interface OutputsConfig {
  /** CERTS_DIR as the balancers' containers mount it (BALANCER_CERTS_DIR): the paths the outputs name. */
  balancerCertsDir: string;
  haproxy?: { crtList: string; balancerCrtList: string; runtime?: RuntimeAddress; timeoutMs: number };
  traefik?: { file: string };
  nginx?: { dir: string };
  /** REDIS_EXPORT=nethserver: each certificate as NethServer's Traefik keeps it in Redis (src/outputs/nethserver/). */
  nethserver?: NethserverConfig;
}

/** A path under CERTS_DIR, as the balancer sees it; any other path is the same for both. */
function balancerView(path: string, certsDir: string, balancerCertsDir: string): string {
  const rel = relative(certsDir, path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : join(balancerCertsDir, rel);
}

function absolutePath(env: Env, name: string, dflt: string, cwd: string): string {
  const v = str(env, name);
  if (v !== undefined && /["\n;]/.test(v)) throw new ConfigError(name, v, 'a path without quotes, semicolons or newlines');
  return v === undefined ? dflt : resolve(cwd, v);
}

export function outputsFromEnv(env: Env, certsDir: string, cwd = process.cwd()): OutputsConfig {
  const listed = (str(env, 'OUTPUTS') ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  for (const o of listed) {
    if (!(OUTPUT_NAMES as readonly string[]).includes(o)) throw new ConfigError('OUTPUTS', env.OUTPUTS, `a comma-separated list of ${OUTPUT_NAMES.join(', ')} ("${o}" is not one)`);
  }
  const runtimeRaw = str(env, 'HAPROXY_RUNTIME_API');
  const runtime = runtimeRaw === undefined ? undefined : parseRuntimeAddress(runtimeRaw);
  if (runtimeRaw !== undefined && !runtime) {
    throw new ConfigError('HAPROXY_RUNTIME_API', runtimeRaw, 'the stats socket of HAProxy (level admin): a unix socket path such as /run/haproxy/admin.sock, or host:port such as haproxy:9999');
  }
  const on = new Set(listed);
  // The runtime API serves the crt-list's certificates: asking for it turns the crt-list on.
  if (runtime) on.add('haproxy');
  const balancerCertsDir = str(env, 'BALANCER_CERTS_DIR') ?? certsDir;
  if (!balancerCertsDir.startsWith('/') || /["\n;]/.test(balancerCertsDir)) {
    throw new ConfigError('BALANCER_CERTS_DIR', balancerCertsDir, 'an absolute path without quotes, semicolons or newlines: where the balancer\'s container mounts CERTS_DIR, e.g. /etc/certs');
  }
  const out: OutputsConfig = { balancerCertsDir };
  if (on.has('haproxy')) {
    const crtList = absolutePath(env, 'HAPROXY_CRT_LIST', join(certsDir, 'haproxy', 'crt-list'), cwd);
    out.haproxy = {
      crtList,
      balancerCrtList: str(env, 'HAPROXY_BALANCER_CRT_LIST') ?? balancerView(crtList, certsDir, balancerCertsDir),
      ...(runtime ? { runtime } : {}),
      timeoutMs: parseDuration(env, 'HAPROXY_RUNTIME_TIMEOUT', 5000, 100),
    };
  }
  if (on.has('traefik')) out.traefik = { file: absolutePath(env, 'TRAEFIK_DYNAMIC_FILE', join(certsDir, 'traefik', 'certwrangler.yml'), cwd) };
  if (on.has('nginx')) out.nginx = { dir: absolutePath(env, 'NGINX_INCLUDE_DIR', join(certsDir, 'nginx'), cwd) };
  const nethserver = nethserverFromEnv(env, certsDir);
  if (nethserver) out.nethserver = nethserver;
  return out;
}

export function createOutputs(config: OutputsConfig, log: Logger, now?: () => Date): Outputs {
  const paths = new BalancerPaths(config.balancerCertsDir);
  const outputs: Output[] = [];
  const h = config.haproxy;
  if (h) outputs.push(new HaproxyOutput({ crtList: h.crtList, balancerCrtList: h.balancerCrtList, runtime: h.runtime ? new RuntimeApi(h.runtime, h.timeoutMs) : undefined }, paths));
  if (config.traefik) outputs.push(new TraefikOutput(config.traefik, paths));
  if (config.nginx) outputs.push(new NginxOutput(config.nginx, paths));
  if (config.nethserver) outputs.push(new NethserverOutput(config.nethserver));
  return new Outputs(outputs, log, now);
}
