/**
 * The Rancher resources we read, parsed once at the edge into plain records (`specs/rancher-v1-api.md`
 * §4–§6). A resource that lacks a field we rely on is an error naming the resource and the field.
 */
import { RancherError } from './api.js';

export interface CertificateResource {
  id: string;
  name: string;
  description: string;
  state: string;
  transitioning: 'yes' | 'no' | 'error';
  transitioningMessage: string;
  /** PEM; null only from a broken server. */
  cert: string | null;
  certFingerprint: string | null;
  self: string;
}

export interface LabelSet {
  /** Where the labels sit, for reports: `service web (1s12)` or `service web (1s12), sidekick db`. */
  source: string;
  labels: Record<string, string>;
}

export interface ServiceResource {
  id: string;
  name: string;
  type: string;
  state: string;
  system: boolean;
  /** The service's stack (v1 calls it `environmentId`). */
  stackId: string | undefined;
  labelSets: LabelSet[];
  /** Certificates a balancer serves: lbConfig (v2-beta) or top level (v1 legacy balancers). */
  certificateIds: string[];
  updateAction: string | undefined;
  self: string;
  /** Where a balancer listens, "ip:port" from `publicEndpoints` (specs §5): what VERIFY connects to. */
  publicEndpoints: string[];
}

type Json = Record<string, unknown>;

function obj(x: unknown): Json | undefined {
  return typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Json) : undefined;
}

function need(r: Json, field: string, what: string): string {
  const v = r[field];
  if (typeof v !== 'string' || v === '') throw new RancherError(`Rancher ${what} has no ${field}: ${JSON.stringify(r).slice(0, 200)}`);
  return v;
}

function optString(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function selfLink(r: Json, what: string): string {
  const links = obj(r.links);
  const self = links?.self;
  if (typeof self !== 'string' || self === '') throw new RancherError(`Rancher ${what} ${String(r.id)} has no links.self`);
  return self;
}

export function parseCertificate(x: unknown): CertificateResource {
  const r = obj(x);
  if (!r) throw new RancherError(`Rancher certificate list holds a non-object: ${JSON.stringify(x)}`);
  const id = need(r, 'id', 'certificate');
  const t = r.transitioning;
  return {
    id,
    name: typeof r.name === 'string' ? r.name : '',
    description: typeof r.description === 'string' ? r.description : '',
    state: typeof r.state === 'string' ? r.state : '',
    transitioning: t === 'yes' || t === 'error' ? t : 'no',
    transitioningMessage: typeof r.transitioningMessage === 'string' ? r.transitioningMessage : '',
    cert: optString(r.cert),
    certFingerprint: optString(r.certFingerprint),
    self: selfLink(r, `certificate ${id}`),
  };
}

function labelsOf(x: unknown): Record<string, string> {
  const o = obj(x);
  if (!o) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'string') out[k] = v;
  return out;
}

function idList(x: unknown): string[] {
  return Array.isArray(x) ? x.filter((v): v is string => typeof v === 'string' && v !== '') : [];
}

export function parseService(x: unknown): ServiceResource {
  const r = obj(x);
  if (!r) throw new RancherError(`Rancher service list holds a non-object: ${JSON.stringify(x)}`);
  const id = need(r, 'id', 'service');
  const name = typeof r.name === 'string' ? r.name : id;
  const source = `service ${name} (${id})`;
  const labelSets: LabelSet[] = [{ source, labels: labelsOf(obj(r.launchConfig)?.labels) }];
  if (Array.isArray(r.secondaryLaunchConfigs)) {
    for (const s of r.secondaryLaunchConfigs) {
      const sk = obj(s);
      if (sk) labelSets.push({ source: `${source}, sidekick ${typeof sk.name === 'string' ? sk.name : '?'}`, labels: labelsOf(sk.labels) });
    }
  }
  const lb = obj(r.lbConfig);
  const certificateIds = [
    ...new Set([
      ...idList([lb?.defaultCertificateId, r.defaultCertificateId]),
      ...idList(lb?.certificateIds),
      ...idList(r.certificateIds),
    ]),
  ];
  const update = obj(r.actions)?.update;
  return {
    id,
    name,
    type: typeof r.type === 'string' ? r.type : 'service',
    state: typeof r.state === 'string' ? r.state : '',
    system: r.system === true,
    stackId: typeof r.stackId === 'string' ? r.stackId : typeof r.environmentId === 'string' ? r.environmentId : undefined,
    labelSets,
    certificateIds,
    updateAction: typeof update === 'string' ? update : undefined,
    self: selfLink(r, `service ${id}`),
    publicEndpoints: endpointsOf(r.publicEndpoints),
  };
}

/** `publicEndpoints` [{ipAddress, port, …}] → "ip:port" (an IPv6 address bracketed); malformed entries dropped. */
function endpointsOf(x: unknown): string[] {
  if (!Array.isArray(x)) return [];
  const out: string[] = [];
  for (const e of x) {
    const p = obj(e);
    if (!p || typeof p.ipAddress !== 'string' || p.ipAddress === '' || typeof p.port !== 'number') continue;
    out.push(p.ipAddress.includes(':') ? `[${p.ipAddress}]:${p.port}` : `${p.ipAddress}:${p.port}`);
  }
  return [...new Set(out)];
}

/** Removed or on the way out: not a resource anyone uses any more. */
export function isGone(state: string): boolean {
  return state === 'removed' || state === 'removing' || state === 'purged' || state === 'purging';
}
