/**
 * The `docker` orchestrator's own variables, read as the docker CLI reads them: DOCKER_HOST (the unix socket
 * by default, or tcp://), DOCKER_TLS_VERIFY and DOCKER_CERT_PATH; and what only certwrangler adds.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, parseDuration, str, type Env } from '../../env.js';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

/** The conventions read besides HOSTS_LABEL, when DOCKER_READERS names them. */
export const READERS = ['traefik', 'nginx-proxy'] as const;
export type Reader = (typeof READERS)[number];

export type DockerEndpoint =
  | { kind: 'unix'; socketPath: string }
  /** `tls`: the CA to verify the daemon with, and the client certificate and key it asks for (DOCKER_CERT_PATH). */
  | { kind: 'tcp'; host: string; port: number; tls: { ca: string; cert: string; key: string } | undefined };

export interface DockerEnv {
  endpoint: DockerEndpoint;
  /** DOCKER_HOST as given, for messages (it holds no credential). */
  hostText: string;
  timeoutMs: number;
  readers: Reader[];
  /** DOCKER_SWARM_RELOAD_IMAGE: the image of the one-shot global job that reloads containers on the other Swarm nodes. */
  swarmReloadImage: string | undefined;
}

// The docker CLI's default port for tcp:// without one: 2376 with TLS, 2375 without.
const TLS_PORT = 2376;
const PLAIN_PORT = 2375;

function parseEndpoint(env: Env): { endpoint: DockerEndpoint; hostText: string } {
  const v = str(env, 'DOCKER_HOST') ?? DEFAULT_DOCKER_HOST;
  const accepted = 'unix:///path/to/docker.sock or tcp://host:port (ssh:// and npipe:// are not supported: forward the socket instead)';
  if (v.startsWith('unix://')) {
    const socketPath = v.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new ConfigError('DOCKER_HOST', v, accepted);
    return { endpoint: { kind: 'unix', socketPath }, hostText: v };
  }
  const m = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s]+)(?::(\d{1,5}))?\/?$/.exec(v);
  if (!m) throw new ConfigError('DOCKER_HOST', v, accepted);
  // The docker CLI turns TLS on for any non-empty DOCKER_TLS_VERIFY, "0" included; so do we, so both agree.
  const verify = (env.DOCKER_TLS_VERIFY ?? '') !== '';
  const tls = verify ? readTls(env) : undefined;
  const port = m[2] ? Number(m[2]) : tls ? TLS_PORT : PLAIN_PORT;
  if (port < 1 || port > 65535) throw new ConfigError('DOCKER_HOST', v, accepted);
  return { endpoint: { kind: 'tcp', host: m[1]!.replace(/^\[|\]$/g, ''), port, tls }, hostText: v };
}

/** ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH (~/.docker by default), as `docker --tlsverify` reads them. */
function readTls(env: Env): { ca: string; cert: string; key: string } {
  const dir = resolve(str(env, 'DOCKER_CERT_PATH') ?? join(homedir(), '.docker'));
  const read = (file: string) => {
    try {
      return readFileSync(join(dir, file), 'utf8');
    } catch (e) {
      throw new ConfigError('DOCKER_CERT_PATH', dir, `a folder holding ca.pem, cert.pem and key.pem, as docker --tlsverify reads them (${file}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}); DOCKER_TLS_VERIFY is set`);
    }
  };
  return { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') };
}

function parseReaders(env: Env): Reader[] {
  const v = str(env, 'DOCKER_READERS');
  if (v === undefined || v.toLowerCase() === 'none') return [];
  const out: Reader[] = [];
  for (const raw of v.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '')) {
    if (!(READERS as readonly string[]).includes(raw)) throw new ConfigError('DOCKER_READERS', v, `a comma-separated list of ${READERS.join(', ')}, or none`);
    if (!out.includes(raw as Reader)) out.push(raw as Reader);
  }
  return out;
}

export function dockerFromEnv(env: Env): DockerEnv {
  const image = str(env, 'DOCKER_SWARM_RELOAD_IMAGE');
  if (image !== undefined && !/^[a-z0-9][a-z0-9._\-/:@]*$/i.test(image)) throw new ConfigError('DOCKER_SWARM_RELOAD_IMAGE', image, 'an image reference such as registry.example.com/certwrangler:1.2 (certwrangler\'s own image, present on every node)');
  return {
    ...parseEndpoint(env),
    timeoutMs: parseDuration(env, 'DOCKER_TIMEOUT', 10_000, 100),
    readers: parseReaders(env),
    swarmReloadImage: image,
  };
}
