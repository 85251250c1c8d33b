/**
 * What the services on a Docker host (or a Swarm, read from a manager) ask for: HOSTS_LABEL on running
 * containers and on Swarm services, and the conventions DOCKER_READERS turns on. A service is the unit a
 * label's caps and claims count against, so containers group as their owner: a Swarm service's tasks as the
 * service, a Compose service's replicas as `<project>/<service>`, any other container by its name (all three
 * survive a re-create, unlike a container id). Parsed at this edge into plain records.
 */
import pLimit from 'p-limit';
import type { DomainsOptions, LabelService, ParsedDomains } from '../../domains.js';
import { wantedFromRequests, type LabelOwner, type LabelRequest } from '../label-requests.js';
import type { DockerApi } from './api.js';
import type { Reader } from './env.js';
import { nginxProxyRequest, traefikRequests } from './readers.js';

// Labels Docker itself puts on the containers of a Compose project, a Swarm task and a Swarm stack.
const COMPOSE_PROJECT = 'com.docker.compose.project';
const COMPOSE_SERVICE = 'com.docker.compose.service';
const SWARM_SERVICE_ID = 'com.docker.swarm.service.id';
const SWARM_SERVICE_NAME = 'com.docker.swarm.service.name';
const STACK_NAMESPACE = 'com.docker.stack.namespace';
// Inspections at once when nginx-proxy's environment variables are read (the list does not carry them).
const INSPECT_CONCURRENCY = 8;

export interface DockerContainer {
  id: string;
  name: string;
  labels: Record<string, string>;
}

export interface SwarmState {
  /** This daemon is a manager of an active Swarm: it may list services and create them. */
  manager: boolean;
  nodeId: string;
}

type Json = Record<string, unknown>;
const obj = (x: unknown): Json => (typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Json) : {});
const strings = (x: unknown): Record<string, string> => Object.fromEntries(Object.entries(obj(x)).filter((e): e is [string, string] => typeof e[1] === 'string'));

/** Running containers (the list shows only those), optionally only those carrying `label`. */
export async function listContainers(api: DockerApi, label?: string): Promise<DockerContainer[]> {
  const filters = label ? `?filters=${encodeURIComponent(JSON.stringify({ label: [label] }))}` : '';
  const list = await api.get<unknown>(`/containers/json${filters}`);
  if (!Array.isArray(list)) throw new Error('Docker API GET /containers/json: expected a list');
  return list.map((c) => {
    const r = obj(c);
    const names = Array.isArray(r.Names) ? r.Names.filter((n): n is string => typeof n === 'string') : [];
    const id = typeof r.Id === 'string' ? r.Id : '';
    return { id, name: (names[0] ?? id.slice(0, 12)).replace(/^\//, ''), labels: strings(r.Labels) };
  });
}

export async function swarmState(api: DockerApi): Promise<SwarmState> {
  const swarm = obj(obj(await api.get<unknown>('/info')).Swarm);
  return { manager: swarm.LocalNodeState === 'active' && swarm.ControlAvailable === true, nodeId: typeof swarm.NodeID === 'string' ? swarm.NodeID : '' };
}

export interface DiscoveryOptions {
  hostsLabel: string;
  readers: Reader[];
  domains: DomainsOptions;
}

/** Collects each owner's requests, in the order they are first seen. */
class Owners {
  private readonly byId = new Map<string, LabelOwner>();
  add(service: LabelService, requests: LabelRequest[]): void {
    if (requests.length === 0) return;
    const o = this.byId.get(service.id);
    if (!o) this.byId.set(service.id, { service, requests: [...requests] });
    // Replicas ask for the same thing: a request already there (same source and value) is not added twice.
    else for (const r of requests) if (!o.requests.some((x) => x.source === r.source && x.value === r.value)) o.requests.push(r);
  }
  all(): LabelOwner[] {
    return [...this.byId.values()];
  }
}

function requestsOf(labels: Record<string, string>, env: string[] | undefined, where: string, opts: DiscoveryOptions): LabelRequest[] {
  const out: LabelRequest[] = [];
  const label = opts.hostsLabel;
  if (labels[label] !== undefined) out.push({ source: `label ${label} on ${where}`, value: labels[label]!, labels, prefix: label });
  if (opts.readers.includes('traefik')) {
    for (const r of traefikRequests(labels)) out.push({ source: `label ${r.key} on ${where}`, value: r.hosts.join(',') });
  }
  if (opts.readers.includes('nginx-proxy') && env) {
    const r = nginxProxyRequest(env);
    if (r) out.push({ source: `${r.variable} of ${where}`, value: r.hosts.join(',') });
  }
  return out;
}

/** The owner a container's labels count against (see the file's comment). */
function ownerOf(c: DockerContainer): LabelService {
  const l = c.labels;
  if (l[SWARM_SERVICE_ID]) return { id: l[SWARM_SERVICE_ID]!, name: l[SWARM_SERVICE_NAME] ?? l[SWARM_SERVICE_ID]!, ...(l[STACK_NAMESPACE] ? { stack: l[STACK_NAMESPACE] } : {}) };
  if (l[COMPOSE_PROJECT] && l[COMPOSE_SERVICE]) return { id: `${l[COMPOSE_PROJECT]}/${l[COMPOSE_SERVICE]}`, name: l[COMPOSE_SERVICE]!, stack: l[COMPOSE_PROJECT] };
  return { id: c.name, name: c.name };
}

export async function discoverDocker(api: DockerApi, opts: DiscoveryOptions): Promise<ParsedDomains> {
  const [containers, swarm] = await Promise.all([listContainers(api), swarmState(api)]);
  const owners = new Owners();
  const withEnv = opts.readers.includes('nginx-proxy');
  const inspect = pLimit(INSPECT_CONCURRENCY);
  // On a manager the services are read whole, so their task containers (on this node only) add nothing.
  const local = containers.filter((c) => !(swarm.manager && c.labels[SWARM_SERVICE_ID]));
  const envs = await Promise.all(
    local.map((c) =>
      withEnv
        ? inspect(async () => {
            const env = obj(obj(await api.get<unknown>(`/containers/${encodeURIComponent(c.id)}/json`)).Config).Env;
            return Array.isArray(env) ? env.filter((e): e is string => typeof e === 'string') : [];
          })
        : undefined,
    ),
  );
  local.forEach((c, i) => owners.add(ownerOf(c), requestsOf(c.labels, envs[i], `container ${c.name}`, opts)));
  if (swarm.manager) {
    const services = await api.get<unknown>('/services');
    if (!Array.isArray(services)) throw new Error('Docker API GET /services: expected a list');
    for (const s of services) {
      const r = obj(s);
      const spec = obj(r.Spec);
      const id = typeof r.ID === 'string' ? r.ID : '';
      const name = typeof spec.Name === 'string' ? spec.Name : id;
      const labels = strings(spec.Labels);
      const cspec = obj(obj(spec.TaskTemplate).ContainerSpec);
      const env = Array.isArray(cspec.Env) ? cspec.Env.filter((e): e is string => typeof e === 'string') : [];
      const service: LabelService = { id, name, ...(labels[STACK_NAMESPACE] ? { stack: labels[STACK_NAMESPACE] } : {}) };
      owners.add(service, requestsOf(labels, env, `service ${name}`, opts));
      // Labels on the service's containers (`--container-label`, a stack file's service labels under deploy: are the service's).
      owners.add(service, requestsOf(strings(cspec.Labels), undefined, `containers of service ${name}`, opts));
    }
  }
  return wantedFromRequests(owners.all(), opts.domains);
}
