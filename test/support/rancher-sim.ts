/**
 * An in-process Rancher 1.x (Cattle) API on loopback, built from `specs/rancher-v1-api.md` §9: the only
 * mock in the test suite, because a Rancher server cannot run here. It keeps its state in memory, which
 * tests seed and inspect, and it logs every request.
 *
 * Covered: /v1 and /v2-beta roots, optional projects/<pid>/, singular/plural case-insensitive
 * collections, X-API-Schemas, basic auth bound to one project (401 envelope and WWW-Authenticate),
 * certificates with computed fields, states that settle after `settleMs`, read-on-create `key`, name
 * uniqueness, 422/405/409 errors, paginated lists with `m<offset>` markers, filters (unknown ones
 * ignored), services/balancers/stacks/projects, the balancer `update` action with a reload counter and
 * the PEM each balancer serves, balancers whose `update` fails N times (409, 500, or a reload ending in
 * transitioning=error) or that sit in a given state, fault injection per route and call count, and a
 * request log. A balancer may also listen for TLS on loopback (`listenTls`), listed in its `publicEndpoints`
 * (§5), serving by SNI what it held at its last `update` action, as the lb-controller does (§6).
 * Not covered: the rancher-metadata service (§7); nothing in certwrangler reads it.
 */
import http from 'node:http';
import tls from 'node:tls';
import { createSelfSigned } from '../../src/certs/placeholder.js';
import { randomUUID, X509Certificate } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';

type Json = Record<string, unknown>;

export interface SimCertificate {
  id: string;
  accountId: string;
  uuid: string;
  name: string;
  description: string | null;
  cert: string;
  certChain: string | null;
  key: string;
  created: Date;
  removed: Date | null;
  state: string;
  transitioning: 'yes' | 'no' | 'error';
  transitioningMessage: string | null;
  settleAt: number;
  /** Times this resource was written through the API (POST or a PUT that changed something). */
  writes: number;
  /** Set by stickInError at write time: the write settles into transitioning=error with this message. */
  stuckMessage?: string | undefined;
}

export interface SimService {
  id: string;
  accountId: string;
  uuid: string;
  type: 'service' | 'loadBalancerService';
  name: string;
  stackId: string;
  state: string;
  system: boolean;
  labels: Record<string, string>;
  sidekicks: { name: string; labels: Record<string, string> }[];
  lbConfig: { defaultCertificateId: string | null; certificateIds: string[]; portRules: Json[] } | null;
  transitioning: 'yes' | 'no' | 'error';
  transitioningMessage: string | null;
  settleAt: number;
  reloadCount: number;
  /** cert + "\n" + certChain of every referenced certificate, as of the last `update` action. */
  served: Map<string, string>;
  /** `update` actions asked for, answered or refused (reloadCount counts only the ones that ran). */
  updateCalls: number;
}

/** How a balancer's `update` action is refused by failUpdate: the answers Cattle gives (specs §3.4). */
export type UpdateFailure = 409 | 500 | 'error';

export type FaultKind = 500 | 502 | 503 | 401 | 403 | 'hangup' | 'delay' | 'malformed' | 'race' | 'cut' | 'stall';

export interface Fault {
  kind: FaultKind;
  method?: string;
  /** Matched against the path and query as sent, e.g. /certificates|marker=m1000/. */
  url?: RegExp;
  /** Matching calls to let through before the fault fires. */
  skip?: number;
  /** How many matching calls fail (after `skip`). */
  times?: number;
  /** For 'delay': how long to hold the answer (then it is handled normally). */
  delayMs?: number;
  /**
   * 'cut' and 'stall' answer as usual, with the whole body's Content-Length, but send only the first `cutAt` bytes
   * of the body (default: half of it): 'cut' then closes the connection (a proxy or network cutting the answer),
   * 'stall' holds it open and sends nothing more.
   */
  cutAt?: number;
  /** For 'race': the description of the certificate "another writer" creates just before a POST. */
  raceDescription?: string;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  body: unknown;
  status: number;
  /** Date.now() when the request arrived. */
  at: number;
}

export interface SimOptions {
  settleMs?: number;
  maxLimit?: number;
}

const CERT_FILTERS = ['id', 'name', 'state', 'kind', 'uuid', 'description', 'accountId', 'created', 'removed', 'removeTime', 'cert', 'certChain', 'key'];
const SERVICE_FILTERS = ['accountId', 'createIndex', 'created', 'description', 'externalId', 'healthState', 'id', 'kind', 'name', 'removeTime', 'removed', 'selectorContainer', 'selectorLink', 'skip', 'stackId', 'state', 'system', 'uuid', 'vip'];
const COLLECTIONS: Record<string, string> = {
  certificate: 'certificate',
  certificates: 'certificate',
  service: 'service',
  services: 'service',
  loadbalancerservice: 'loadBalancerService',
  loadbalancerservices: 'loadBalancerService',
  stack: 'stack',
  stacks: 'stack',
  environment: 'stack',
  environments: 'stack',
  project: 'project',
  projects: 'project',
};
/** States in which Cattle runs a process on a service (transitioning=yes). */
const BUSY = new Set(['activating', 'updating-active', 'upgrading', 'deactivating', 'updating-inactive', 'removing', 'requested', 'registering', 'restarting', 'finishing-upgrade', 'rolling-back']);
const REASON: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method not allowed', 409: 'Conflict', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' };

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string | null = null,
    readonly fieldName?: string,
  ) {
    super(message ?? code);
  }
}

/** Java's Date.toString() in UTC: "Tue Mar 14 12:00:00 UTC 2017" (specs §4.3). */
export function javaDate(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC ${d.getUTCFullYear()}`;
}

function rfc2253(dn: string): string {
  return dn
    .split('\n')
    .filter((l) => l !== '')
    .reverse()
    .map((rdn) => {
      const i = rdn.indexOf('=');
      return `${rdn.slice(0, i)}=${rdn.slice(i + 1).replace(/([,+"\\<>;])/g, '\\$1')}`;
    })
    .join(',');
}

/** §4.2: the computed fields, from the first PEM block only. Throws on a PEM that does not parse. */
export function computedFields(pem: string): Json {
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (!first) throw new Error('no PEM CERTIFICATE block found');
  const x = new X509Certificate(first);
  const rsa = x.publicKey.asymmetricKeyType === 'rsa';
  return {
    CN: /(?:^|\n)CN=([^\n]*)/.exec(x.subject)?.[1] ?? null,
    certFingerprint: x.fingerprint.toLowerCase(),
    expiresAt: javaDate(new Date(x.validTo)),
    issuedAt: javaDate(new Date(x.validFrom)),
    issuer: rfc2253(x.issuer),
    algorithm: rsa ? 'SHA256WITHRSA' : 'SHA256WITHECDSA',
    version: '3',
    serialNumber: BigInt(`0x${x.serialNumber}`).toString(),
    keySize: rsa ? (x.publicKey.asymmetricKeyDetails?.modulusLength ?? null) : null,
    subjectAlternativeNames: x.subjectAltName ? x.subjectAltName.split(', ').map((e) => e.slice(e.indexOf(':') + 1)) : null,
  };
}

function likeToRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%/g, '.*').replace(/_/g, '.')}$`);
}

function matchFilter(value: unknown, mod: string, wanted: string[]): boolean {
  if (mod === 'null') return value === null || value === undefined;
  if (mod === 'notnull') return value !== null && value !== undefined;
  const v = value instanceof Date ? value.toISOString() : value === null || value === undefined ? null : String(value);
  const num = (s: string | null) => (s !== null && /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s);
  return wanted.some((w) => {
    switch (mod) {
      case 'eq':
        return v === w;
      case 'ne':
        return v !== w;
      case 'prefix':
        return v !== null && v.startsWith(w);
      case 'like':
        return v !== null && likeToRegExp(w).test(v);
      case 'notlike':
        return v === null || !likeToRegExp(w).test(v);
      case 'lt':
      case 'lte':
      case 'gt':
      case 'gte': {
        const a = num(v);
        const b = num(w)!;
        if (a === null) return false;
        return mod === 'lt' ? a < b : mod === 'lte' ? a <= b : mod === 'gt' ? a > b : a >= b;
      }
      default:
        return true;
    }
  });
}

const RESERVED = new Set(['limit', 'marker', 'sort', 'order', '_removed', 'action', 'include']);

function applyFilters<T>(rows: T[], q: URLSearchParams, filterable: string[], field: (row: T, name: string) => unknown): T[] {
  let out = rows;
  for (const key of new Set(q.keys())) {
    if (RESERVED.has(key)) continue;
    const m = /^(.+?)(?:_(eq|ne|prefix|like|notlike|null|notnull|lt|lte|gt|gte))?$/.exec(key)!;
    const name = m[1]!;
    // §3.3: a parameter naming a field that is not filterable is ignored silently.
    if (!filterable.includes(name)) continue;
    const values = q.getAll(key);
    out = out.filter((row) => matchFilter(field(row, name), m[2] ?? 'eq', values));
  }
  return out;
}

function idNumber(id: string): number {
  return Number(/\d+$/.exec(id)?.[0] ?? 0);
}

export interface RancherSim {
  /** CATTLE_URL as Rancher injects it (…/v1). */
  url: string;
  /** CATTLE_URL, CATTLE_ACCESS_KEY and CATTLE_SECRET_KEY, as Rancher injects them into the manager. */
  env: Record<'CATTLE_URL' | 'CATTLE_ACCESS_KEY' | 'CATTLE_SECRET_KEY', string>;
  port: number;
  accessKey: string;
  secretKey: string;
  projectId: string;
  log: RequestRecord[];
  certificates: Map<string, SimCertificate>;
  services: Map<string, SimService>;
  addKey(accessKey: string, secretKey: string, opts?: { projectId?: string; admin?: boolean }): void;
  addCertificate(c: { name: string; cert: string; key: string; certChain?: string | null; description?: string | null; projectId?: string }): SimCertificate;
  /** `stack`: the stack's name, made when it does not exist yet; the `default` stack when absent. */
  addService(s: { name: string; labels?: Record<string, string>; sidekicks?: { name: string; labels: Record<string, string> }[]; system?: boolean; state?: string; stack?: string }): SimService;
  /**
   * A balancer; `defaultCertificateName`/`certificateNames` are resolved to ids as soon as certificates
   * with those names exist, as a rancher-compose `default_cert:`/`certs:` would be.
   */
  addBalancer(b: { name: string; defaultCertificateId?: string | null; certificateIds?: string[]; defaultCertificateName?: string; certificateNames?: string[]; state?: string }): SimService;
  certByName(name: string): SimCertificate | undefined;
  /**
   * The next `times` update actions of this balancer fail: 409 `Conflict` "process already in progress"
   * (the default; not retried by HTTP clients), 500 `Internal Server Error`, or 'error': accepted (202) but
   * the reload process fails, leaving the balancer active with transitioning=error and a message. The
   * balancer's served certificates do not change.
   */
  failUpdate(balancerId: string, times: number, how?: UpdateFailure): void;
  /**
   * The balancer listens for TLS on a loopback port, listed in its `publicEndpoints` as {ipAddress, port, hostId,
   * instanceId, serviceId}. By SNI it serves the certificate (with its chain) it held at its last `update` action
   * whose names match, else its default certificate; before any update, a self-signed one of the simulator's.
   */
  listenTls(balancerId: string): Promise<number>;
  /**
   * Puts a balancer in `state` (specs §5: active, inactive, activating, updating-active, upgrading,
   * deactivating, error…). A transitional state (activating, updating-active, upgrading, deactivating…)
   * has transitioning=yes and stays until the test sets another state.
   */
  setBalancerState(balancerId: string, state: string): void;
  /** Every further write of this certificate ends in transitioning=error with this message (undefined clears it). */
  stickInError(name: string, message: string | undefined): void;
  /** Answers these links pointing at `origin` (e.g. another server's http://127.0.0.1:port) instead of the sim; undefined clears it. */
  foreignLinks(origin: string | undefined, links?: ('self' | 'next' | 'update')[]): void;
  fault(f: Fault): void;
  clearFaults(): void;
  clearLog(): void;
  close(): Promise<void>;
}

export async function startRancherSim(opts: SimOptions = {}): Promise<RancherSim> {
  const settleMs = opts.settleMs ?? 0;
  const maxLimit = opts.maxLimit ?? 1000;
  const projectId = '1a5';
  const keys = new Map<string, { secret: string; projectId: string; admin: boolean }>();
  const certificates = new Map<string, SimCertificate>();
  const services = new Map<string, SimService>();
  const stacks = new Map<string, { id: string; name: string; accountId: string }>([['1st1', { id: '1st1', name: 'default', accountId: projectId }]]);
  const projects = new Map([[projectId, { id: projectId, name: 'Default', uuid: randomUUID() }]]);
  const faults: (Fault & { seen: number; fired: number })[] = [];
  const stuck = new Map<string, string>();
  const updateFailures = new Map<string, { times: number; how: UpdateFailure }>();
  const log: RequestRecord[] = [];
  /** Balancer id → the TLS listener of `listenTls` and the key of each certificate it serves since its last update. */
  const tlsListeners = new Map<string, { server: tls.Server; port: number }>();
  const servedKeys = new Map<string, Map<string, string>>();
  // Cattle computes these fields once on write; caching by PEM keeps big listings fast here too.
  const computedCache = new Map<string, Json>();
  /** Certificate listings by project and query without `marker`, reused by the listing's later pages (see the GET). */
  const listings = new Map<string, { generation: number; rows: SimCertificate[] }>();
  let generation = 0;
  const sockets = new Set<Socket>();
  let nextId = 1;
  let base = '';
  let foreign: { origin: string; links: string[] } | undefined;
  const linkBase = (link: 'self' | 'next' | 'update') => (foreign?.links.includes(link) ? foreign.origin : base);

  const now = () => Date.now();
  const settle = (r: { state: string; transitioning: string; settleAt: number; transitioningMessage?: string | null; stuckMessage?: string | undefined }) => {
    if (r.transitioning !== 'yes' || now() < r.settleAt) return;
    if (r.stuckMessage !== undefined) {
      r.transitioning = 'error';
      r.transitioningMessage = r.stuckMessage;
      return;
    }
    r.state = r.state === 'removing' ? 'removed' : 'active';
    r.transitioning = 'no';
    if ('transitioningMessage' in r) r.transitioningMessage = null;
  };

  function newCert(c: { name: string; cert: string; key: string; certChain?: string | null; description?: string | null; projectId?: string }): SimCertificate {
    const id = `1c${nextId++}`;
    return {
      id,
      accountId: c.projectId ?? projectId,
      uuid: randomUUID(),
      name: c.name,
      description: c.description ?? null,
      cert: c.cert,
      certChain: c.certChain ?? null,
      key: c.key,
      created: new Date(),
      removed: null,
      state: 'active',
      transitioning: 'no',
      transitioningMessage: null,
      settleAt: 0,
      writes: 0,
    };
  }

  function root(version: string, pid: string) {
    return `${base}/${version}/projects/${pid}`;
  }

  function renderCert(c: SimCertificate, version: string, showKey: boolean): Json {
    settle(c);
    const self = `${root(version, c.accountId)}/certificates/${c.id}`.replace(base, linkBase('self'));
    const update = `${self}/?action=update`.replace(linkBase('self'), linkBase('update'));
    let computed = computedCache.get(c.cert);
    if (!computed) {
      try {
        computed = computedFields(c.cert);
      } catch {
        computed = {}; // a seeded broken PEM keeps null computed fields
      }
      computedCache.set(c.cert, computed);
    }
    return {
      id: c.id,
      type: 'certificate',
      baseType: 'certificate',
      links: { self, account: `${self}/account` },
      actions: c.state === 'removed' ? {} : { update, remove: `${self}/?action=remove` },
      name: c.name,
      description: c.description,
      state: c.state,
      accountId: c.accountId,
      kind: 'certificate',
      uuid: c.uuid,
      created: c.created.toISOString().replace(/\.\d+Z$/, 'Z'),
      createdTS: c.created.getTime(),
      removed: c.removed ? c.removed.toISOString().replace(/\.\d+Z$/, 'Z') : null,
      removedTS: c.removed ? c.removed.getTime() : null,
      removeTime: null,
      transitioning: c.transitioning,
      transitioningMessage: c.transitioningMessage,
      transitioningProgress: null,
      data: {},
      cert: c.cert,
      certChain: c.certChain,
      key: showKey ? c.key : null,
      CN: null,
      certFingerprint: null,
      expiresAt: null,
      issuedAt: null,
      issuer: null,
      algorithm: null,
      version: null,
      serialNumber: null,
      keySize: null,
      subjectAlternativeNames: null,
      ...computed,
    };
  }

  function renderService(s: SimService, version: string): Json {
    settle(s);
    const coll = s.type === 'loadBalancerService' ? 'loadbalancerservices' : 'services';
    const self = `${root(version, s.accountId)}/${coll}/${s.id}`.replace(base, linkBase('self'));
    const update = `${self}/?action=update`.replace(linkBase('self'), linkBase('update'));
    const active = s.state === 'active';
    return {
      id: s.id,
      type: s.type,
      baseType: 'service',
      links: { self, stack: `${self}/stack` },
      actions: active ? { update, deactivate: `${self}/?action=deactivate`, upgrade: `${self}/?action=upgrade`, remove: `${self}/?action=remove` } : s.state === 'inactive' ? { activate: `${self}/?action=activate`, remove: `${self}/?action=remove` } : {},
      name: s.name,
      description: null,
      state: s.state,
      accountId: s.accountId,
      kind: s.type,
      uuid: s.uuid,
      stackId: s.stackId,
      system: s.system,
      transitioning: s.transitioning,
      transitioningMessage: s.transitioningMessage,
      transitioningProgress: null,
      created: '2026-01-01T00:00:00Z',
      removed: null,
      publicEndpoints: tlsListeners.has(s.id) ? [{ type: 'publicEndpoint', ipAddress: '127.0.0.1', port: tlsListeners.get(s.id)!.port, hostId: '1h1', instanceId: `1i${s.id.slice(2)}`, serviceId: s.id }] : null,
      launchConfig: { imageUuid: s.type === 'loadBalancerService' ? 'docker:rancher/lb-service-haproxy:v0.9.14' : 'docker:nginx:alpine', kind: 'container', labels: { ...s.labels } },
      secondaryLaunchConfigs: s.sidekicks.map((k) => ({ name: k.name, imageUuid: 'docker:busybox', labels: { ...k.labels } })),
      lbConfig: s.lbConfig ? { type: 'lbConfig', ...s.lbConfig } : null,
      scale: 1,
      metadata: {},
    };
  }

  /**
   * What a listing page shows of a certificate, field by field: while every field of every certificate on a page is
   * the same as when the page was last served (compared by identity, so a test that edits a SimCertificate in place
   * is seen too), its bytes are served again. A listing of 10,000 certificates otherwise re-renders and re-serialises
   * 26 MB for every listing, which the bench's manager waits on in the same process (issue 22).
   */
  function certSig(c: SimCertificate, version: string, showKey: boolean): unknown[] {
    settle(c);
    return [c, version, showKey, base, linkBase('self'), linkBase('update'), c.id, c.accountId, c.uuid, c.name, c.description, c.cert, c.certChain, c.key, c.created.getTime(), c.removed?.getTime() ?? null, c.state, c.transitioning, c.transitioningMessage];
  }

  /** JSON.stringify(collection) of certificates, as bytes, kept per page URL and served again while nothing shown changed. */
  const pageBytes = new Map<string, { envelope: string; sigs: unknown[][]; bytes: Buffer }>();
  function certPageBytes(coll: Json, url: URL, version: string, showKey: boolean): Buffer {
    const rows = coll.data as SimCertificate[];
    const mark = `\u0000data${randomUUID()}`;
    const envelope = JSON.stringify({ ...coll, data: mark });
    const at = envelope.indexOf(JSON.stringify(mark));
    const head = envelope.slice(0, at);
    const tail = envelope.slice(at + JSON.stringify(mark).length);
    const shape = `${head}\u0000${tail}`;
    const sigs = rows.map((c) => certSig(c, version, showKey));
    const key = `${version}\n${showKey}\n${url.pathname}${url.search}`;
    const held = pageBytes.get(key);
    if (held && held.envelope === shape && held.sigs.length === sigs.length && held.sigs.every((sig, i) => sig.every((v, j) => v === sigs[i]![j]))) return held.bytes;
    const bytes = Buffer.from(`${head}[${rows.map((c) => JSON.stringify(renderCert(c, version, showKey))).join(',')}]${tail}`);
    pageBytes.set(key, { envelope: shape, sigs, bytes });
    return bytes;
  }

  /** One page of `rows`; only the page's rows are rendered, so 100 pages of 1,000 cost 100,000 renders, not 100 × 100,000. */
  function collection<T>(resourceType: string, rows: T[], url: URL, filters: Json, render: (row: T) => Json = (r) => r as Json): Json {
    const q = url.searchParams;
    const rawLimit = q.get('limit');
    let limit = rawLimit === null || !/^-?\d+$/.test(rawLimit) ? 100 : Number(rawLimit);
    if (limit <= 0 || limit > maxLimit) limit = maxLimit;
    const offset = Number(/^m(\d+)$/.exec(q.get('marker') ?? '')?.[1] ?? 0);
    const page = rows.slice(offset, offset + limit).map(render);
    const partial = offset + limit < rows.length;
    let next: string | null = null;
    if (partial) {
      const nq = new URLSearchParams(q);
      nq.delete('marker');
      const qs = nq.toString();
      next = `${linkBase('next')}${url.pathname}?${qs}${qs ? '&' : ''}marker=m${offset + limit}`;
    }
    return {
      type: 'collection',
      resourceType,
      links: { self: `${base}${url.pathname}${url.search}` },
      createTypes: {},
      actions: {},
      data: page,
      sortLinks: {},
      pagination: { first: null, previous: null, next, limit, total: null, partial },
      sort: null,
      filters,
      createDefaults: {},
    };
  }

  function liveCerts(pid: string): SimCertificate[] {
    return [...certificates.values()].filter((c) => c.accountId === pid && c.state !== 'removed');
  }

  function validateCertBody(body: Json, creating: boolean): void {
    for (const f of creating ? ['name', 'cert', 'key'] : []) {
      if (typeof body[f] !== 'string' || body[f] === '') throw new HttpError(422, 'MissingRequired', null, f);
    }
    // §4.2: a PUT without cert parses null and fails.
    if (!creating && typeof body.cert !== 'string') throw new HttpError(422, 'InvalidFormat', 'certificate is null');
    if (typeof body.name === 'string' && body.name.length > 255) throw new HttpError(422, 'MaxLengthExceeded', null, 'name');
    if (typeof body.description === 'string' && body.description.length > 1024) throw new HttpError(422, 'MaxLengthExceeded', null, 'description');
    for (const f of ['cert', 'certChain', 'key']) {
      if (typeof body[f] === 'string' && (body[f] as string).length > 65535) throw new HttpError(422, 'MaxLengthExceeded', null, f);
    }
    try {
      computedFields(body.cert as string);
    } catch (e) {
      throw new HttpError(422, 'InvalidFormat', (e as Error).message);
    }
  }

  const pendingNames: { lb: SimService; name: string; asDefault: boolean }[] = [];
  function bindByName(c: SimCertificate): void {
    for (const p of pendingNames.filter((x) => x.name === c.name)) {
      if (p.asDefault) p.lb.lbConfig!.defaultCertificateId = c.id;
      else p.lb.lbConfig!.certificateIds.push(c.id);
      pendingNames.splice(pendingNames.indexOf(p), 1);
    }
  }

  function referencedBy(certId: string): SimService[] {
    return [...services.values()].filter((s) => s.lbConfig && s.state !== 'removed' && (s.lbConfig.defaultCertificateId === certId || s.lbConfig.certificateIds.includes(certId)));
  }

  async function handle(req: http.IncomingMessage, url: URL, body: unknown, res: http.ServerResponse): Promise<{ status: number; json: Json; text?: Buffer }> {
    const method = req.method ?? 'GET';
    const m = /^\/(v1|v2-beta)(\/.*)?$/i.exec(url.pathname);
    if (!m) throw new HttpError(404, 'Not Found');
    const version = m[1]!.toLowerCase();

    const auth = req.headers.authorization ?? '';
    const decoded = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : '';
    const [ak, ...rest] = decoded.split(':');
    const k = keys.get(ak ?? '');
    if (!k || k.secret !== rest.join(':')) {
      if (req.headers['x-api-no-challenge'] !== 'true') res.setHeader('WWW-Authenticate', 'Basic realm="Enter API access key and secret key as username and password"');
      throw new HttpError(401, 'Unauthorized');
    }
    const pid = k.projectId;

    const parts = (m[2] ?? '').split('/').filter((p) => p !== '');
    if (parts.length === 0) {
      if (method !== 'GET') throw new HttpError(405, 'Method not allowed');
      const links: Json = { self: `${base}/${version}`, schemas: `${base}/${version}/schemas` };
      for (const c of ['certificates', 'services', 'loadbalancerservices', 'stacks', 'projects']) links[c] = `${base}/${version}/${c}`;
      return { status: 200, json: { id: version, type: 'apiVersion', links, actions: {} } };
    }
    if (parts[0]!.toLowerCase() === 'projects' && parts.length >= 3) {
      if (parts[1] !== pid) throw new HttpError(404, 'Not Found');
      parts.splice(0, 2);
    }
    const type = COLLECTIONS[parts[0]!.toLowerCase()];
    if (!type) throw new HttpError(404, 'Not Found');
    const id = parts[1];
    const action = url.searchParams.get('action');
    const b = (typeof body === 'object' && body !== null ? body : {}) as Json;

    if (type === 'certificate') {
      if (!id) {
        if (method === 'GET') {
          const showRemoved = url.searchParams.has('_removed');
          // The first page filters and sorts every row; the pages after it (`marker`) of the same listing reuse
          // those rows while nothing was written: 100 pages of 1,000 cost one pass over 100,000, not 100 (issue 22).
          const listing = `${pid}\n${[...url.searchParams].filter(([q]) => q !== 'marker').map((x) => x.join('=')).join('&')}`;
          const cached = url.searchParams.has('marker') ? listings.get(listing) : undefined;
          let rows: SimCertificate[];
          if (cached && cached.generation === generation) rows = cached.rows;
          else {
            rows = [...certificates.values()].filter((c) => c.accountId === pid && (showRemoved || c.state !== 'removed'));
            rows.forEach(settle);
            rows = applyFilters(rows, url.searchParams, CERT_FILTERS, (c, f) => (c as unknown as Json)[f]);
            const order = new Map(rows.map((c) => [c, idNumber(c.id)]));
            rows.sort((a, c) => order.get(a)! - order.get(c)!);
            // A row still settling may change state between pages (and with it a filter's verdict): not reused then.
            if (rows.every((c) => c.transitioning !== 'yes')) listings.set(listing, { generation, rows });
          }
          const page = collection('certificate', rows, url, {}, (c) => c as unknown as Json);
          return { status: 200, json: page, text: certPageBytes(page, url, version, k.admin) };
        }
        if (method === 'POST') {
          validateCertBody(b, true);
          if (liveCerts(pid).some((c) => c.name === b.name)) throw new HttpError(422, 'NotUnique', null, 'name');
          const c = newCert({ name: b.name as string, cert: b.cert as string, key: b.key as string, certChain: (b.certChain as string | null) ?? null, description: (b.description as string | null) ?? null, projectId: pid });
          c.state = 'activating';
          c.transitioning = 'yes';
          c.settleAt = now() + settleMs;
          c.writes = 1;
          c.stuckMessage = stuck.get(c.name);
          certificates.set(c.id, c);
          bindByName(c);
          // The create response shows the transitional state and is the only one that carries the key.
          const out = renderCert({ ...c, settleAt: Number.MAX_SAFE_INTEGER }, version, true);
          return { status: 201, json: out };
        }
        throw new HttpError(405, 'Method not allowed');
      }
      const c = certificates.get(id);
      if (!c || c.accountId !== pid) throw new HttpError(404, 'Not Found');
      settle(c);
      if (method === 'GET') return { status: 200, json: renderCert(c, version, k.admin) };
      if (method === 'PUT') {
        if (c.transitioning === 'yes') throw new HttpError(409, 'Conflict', 'process already in progress');
        validateCertBody(b, false);
        if (typeof b.name === 'string' && b.name !== c.name && liveCerts(pid).some((o) => o.name === b.name)) throw new HttpError(422, 'NotUnique', null, 'name');
        const next = {
          name: typeof b.name === 'string' ? b.name : c.name,
          description: 'description' in b ? ((b.description as string | null) ?? null) : c.description,
          cert: b.cert as string,
          certChain: 'certChain' in b ? ((b.certChain as string | null) ?? null) : c.certChain,
          key: typeof b.key === 'string' ? b.key : c.key,
        };
        const changed = next.cert !== c.cert || next.certChain !== c.certChain || next.key !== c.key;
        Object.assign(c, next);
        if (changed || c.transitioning === 'error') {
          c.state = 'updating-active';
          c.transitioning = 'yes';
          c.transitioningMessage = null;
          c.settleAt = now() + settleMs;
          c.writes += 1;
          c.stuckMessage = stuck.get(c.name);
          return { status: 200, json: renderCert({ ...c, settleAt: Number.MAX_SAFE_INTEGER }, version, false) };
        }
        return { status: 200, json: renderCert(c, version, false) };
      }
      if (method === 'DELETE' || (method === 'POST' && action === 'remove')) {
        const users = referencedBy(c.id);
        if (users.length > 0) throw new HttpError(405, 'InvalidAction', `Certificate is in use by load balancer services: ${users.map((s) => s.name).join(',')}`);
        c.state = 'removed';
        c.removed = new Date();
        return { status: method === 'DELETE' ? 200 : 202, json: renderCert(c, version, false) };
      }
      throw new HttpError(405, 'Method not allowed');
    }

    if (type === 'service' || type === 'loadBalancerService') {
      if (!id) {
        if (method !== 'GET') throw new HttpError(405, 'Method not allowed');
        const showRemoved = url.searchParams.has('_removed');
        let rows = [...services.values()].filter((s) => s.accountId === pid && (type === 'service' || s.type === type) && (showRemoved || s.state !== 'removed'));
        rows = applyFilters(rows, url.searchParams, SERVICE_FILTERS, (s, f) => (f === 'removed' ? (s.state === 'removed' ? 'removed' : null) : (s as unknown as Json)[f]));
        rows.sort((a, c) => idNumber(a.id) - idNumber(c.id));
        return { status: 200, json: collection(type, rows, url, {}, (s) => renderService(s, version)) };
      }
      const s = services.get(id);
      if (!s || s.accountId !== pid || (type === 'loadBalancerService' && s.type !== type)) throw new HttpError(404, 'Not Found');
      settle(s);
      if (method === 'GET') return { status: 200, json: renderService(s, version) };
      if (method === 'POST' && action === 'update') {
        s.updateCalls += 1;
        if (s.state !== 'active') throw new HttpError(405, 'ActionNotAvailable', `action update is not available in state ${s.state}`);
        if (s.transitioning === 'yes') throw new HttpError(409, 'Conflict', 'process already in progress');
        const failing = updateFailures.get(s.id);
        if (failing && failing.times > 0) {
          failing.times -= 1;
          if (failing.how === 409) throw new HttpError(409, 'Conflict', 'process already in progress');
          if (failing.how === 500) throw new HttpError(500, 'Internal Server Error', 'Internal Server Error');
          // The update process started and failed: Cattle leaves the message on the resource.
          s.transitioning = 'error';
          s.transitioningMessage = 'Failed to reload haproxy: config check failed';
          return { status: 202, json: renderService(s, version) };
        }
        s.reloadCount += 1;
        s.served = new Map();
        const keys = new Map<string, string>();
        for (const cid of s.lbConfig ? [s.lbConfig.defaultCertificateId, ...s.lbConfig.certificateIds] : []) {
          const c = cid ? certificates.get(cid) : undefined;
          if (c && c.state !== 'removed') {
            s.served.set(c.id, `${c.cert}\n${c.certChain ?? ''}`);
            keys.set(c.id, c.key);
          }
        }
        servedKeys.set(s.id, keys);
        s.state = 'updating-active';
        s.transitioning = 'yes';
        s.transitioningMessage = null;
        s.settleAt = now() + settleMs;
        return { status: 202, json: renderService({ ...s, settleAt: Number.MAX_SAFE_INTEGER }, version) };
      }
      throw new HttpError(405, 'Method not allowed');
    }

    if (type === 'stack') {
      if (method !== 'GET') throw new HttpError(405, 'Method not allowed');
      const rows = [...stacks.values()].filter((s) => s.accountId === pid);
      const render = (s: { id: string; name: string }) => ({ id: s.id, type: 'stack', baseType: 'stack', links: { self: `${root(version, pid)}/stacks/${s.id}` }, actions: {}, name: s.name, state: 'active', system: false, serviceIds: [...services.values()].filter((v) => v.stackId === s.id).map((v) => v.id) });
      if (id) {
        const s = stacks.get(id);
        if (!s || s.accountId !== pid) throw new HttpError(404, 'Not Found');
        return { status: 200, json: render(s) };
      }
      return { status: 200, json: collection('stack', rows.map(render), url, {}) };
    }

    // project: an environment key sees exactly its own.
    if (method !== 'GET') throw new HttpError(405, 'Method not allowed');
    const p = projects.get(pid)!;
    const render = { id: p.id, type: 'project', baseType: 'account', links: { self: `${base}/${version}/projects/${p.id}` }, actions: {}, name: p.name, uuid: p.uuid, state: 'active', orchestration: 'cattle' };
    if (id) {
      if (id !== pid) throw new HttpError(404, 'Not Found');
      return { status: 200, json: render };
    }
    return { status: 200, json: collection('project', [render], url, {}) };
  }

  function redact(body: unknown): unknown {
    if (typeof body !== 'object' || body === null) return body;
    const copy = { ...(body as Json) };
    if ('key' in copy && copy.key !== null) copy.key = '(redacted)';
    return copy;
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', base);
        const raw = Buffer.concat(chunks).toString();
        let body: unknown;
        try {
          body = raw === '' ? undefined : JSON.parse(raw);
        } catch {
          body = raw;
        }
        const record: RequestRecord = { method: req.method ?? 'GET', path: url.pathname, query: url.search.replace(/^\?/, ''), body: redact(body), status: 0, at: Date.now() };
        // Anything but a read may change what a listing holds.
        if (record.method !== 'GET') generation++;
        log.push(record);
        res.setHeader('X-API-Schemas', `${base}/v2-beta/schemas`);

        const fault = faults.find((f) => (!f.method || f.method === req.method) && (!f.url || f.url.test(`${url.pathname}${url.search}`)) && f.seen++ >= (f.skip ?? 0) && f.fired < (f.times ?? 1));
        if (fault) {
          fault.fired += 1;
          if (fault.kind === 'hangup') {
            record.status = -1;
            req.socket.destroy();
            return;
          }
          if (fault.kind === 'delay') {
            // Unref'd: a held answer must not keep a finished test process alive.
            await new Promise((r) => setTimeout(r, fault.delayMs ?? 1000).unref());
            // A client that went away (killed, timed out) never gets an answer, and nothing is changed for it.
            if (req.socket.destroyed) {
              record.status = -1;
              return;
            }
          }
          else if (fault.kind === 'malformed') {
            record.status = 200;
            res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"type":"collection","data":[{"id":"1c');
            return;
          } else if (fault.kind === 'cut' || fault.kind === 'stall') {
            // Handled as usual; its answer is cut short below.
          } else if (fault.kind === 'race') {
            const name = (body as Json | undefined)?.name;
            if (typeof name === 'string' && !liveCerts(projectId).some((c) => c.name === name)) {
              const b = body as Json;
              const c = newCert({ name, cert: b.cert as string, key: b.key as string, certChain: (b.certChain as string | null) ?? null, description: fault.raceDescription ?? null });
              certificates.set(c.id, c);
            }
          } else {
            const status = fault.kind;
            record.status = status;
            if (status === 401 && req.headers['x-api-no-challenge'] !== 'true') res.setHeader('WWW-Authenticate', 'Basic realm="Enter API access key and secret key as username and password"');
            res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ id: randomUUID(), type: 'error', baseType: 'error', links: {}, actions: {}, status, code: REASON[status], message: REASON[status], detail: null }));
            return;
          }
        }

        let status: number;
        let json: Json;
        // The answer's JSON text when `handle` made it already (a certificate listing's page).
        let text: Buffer | undefined;
        try {
          ({ status, json, text } = await handle(req, url, body, res));
        } catch (e) {
          const he = e instanceof HttpError ? e : new HttpError(500, 'Internal Server Error', (e as Error).message);
          status = he.status;
          json = { id: randomUUID(), type: 'error', baseType: 'error', links: {}, actions: {}, status, code: he.code, message: he.fieldName ? null : he.message, detail: null, ...(he.fieldName ? { fieldName: he.fieldName } : {}) };
        }
        record.status = status;
        if (res.destroyed) return;
        if (fault && (fault.kind === 'cut' || fault.kind === 'stall')) {
          const whole = text ?? Buffer.from(JSON.stringify(json));
          res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': whole.length });
          res.write(whole.subarray(0, fault.cutAt ?? Math.floor(whole.length / 2)), () => {
            if (fault.kind === 'cut') req.socket.destroy();
          });
          return;
        }
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(text ?? JSON.stringify(json));
      })();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  const accessKey = `AK${randomUUID().slice(0, 8).toUpperCase()}`;
  const secretKey = randomUUID().replace(/-/g, '');
  keys.set(accessKey, { secret: secretKey, projectId, admin: false });

  return {
    url: `${base}/v1`,
    env: { CATTLE_URL: `${base}/v1`, CATTLE_ACCESS_KEY: accessKey, CATTLE_SECRET_KEY: secretKey },
    port,
    accessKey,
    secretKey,
    projectId,
    log,
    certificates,
    services,
    addKey: (a, s, o = {}) => void keys.set(a, { secret: s, projectId: o.projectId ?? projectId, admin: o.admin ?? false }),
    addCertificate(c) {
      generation++;
      const cert = newCert(c);
      certificates.set(cert.id, cert);
      bindByName(cert);
      return cert;
    },
    addService(s) {
      let stack = [...stacks.values()].find((st) => st.name === (s.stack ?? 'default') && st.accountId === projectId);
      if (!stack) stacks.set(`1st${nextId}`, (stack = { id: `1st${nextId++}`, name: s.stack!, accountId: projectId }));
      const svc: SimService = { id: `1s${nextId++}`, accountId: projectId, uuid: randomUUID(), type: 'service', name: s.name, stackId: stack.id, state: s.state ?? 'active', system: s.system ?? false, labels: s.labels ?? {}, sidekicks: s.sidekicks ?? [], lbConfig: null, transitioning: 'no', transitioningMessage: null, settleAt: 0, reloadCount: 0, served: new Map(), updateCalls: 0 };
      services.set(svc.id, svc);
      return svc;
    },
    addBalancer(b) {
      const lb: SimService = { id: `1s${nextId++}`, accountId: projectId, uuid: randomUUID(), type: 'loadBalancerService', name: b.name, stackId: '1st1', state: b.state ?? 'active', system: false, labels: {}, sidekicks: [], lbConfig: { defaultCertificateId: b.defaultCertificateId ?? null, certificateIds: b.certificateIds ?? [], portRules: [] }, transitioning: 'no', transitioningMessage: null, settleAt: 0, reloadCount: 0, served: new Map(), updateCalls: 0 };
      services.set(lb.id, lb);
      if (b.defaultCertificateName) pendingNames.push({ lb, name: b.defaultCertificateName, asDefault: true });
      for (const name of b.certificateNames ?? []) pendingNames.push({ lb, name, asDefault: false });
      for (const c of [...certificates.values()].filter((x) => x.state !== 'removed')) bindByName(c);
      return lb;
    },
    failUpdate(balancerId, times, how = 409) {
      if (!services.get(balancerId)) throw new Error(`no balancer ${balancerId} in the simulator`);
      updateFailures.set(balancerId, { times, how });
    },
    async listenTls(balancerId) {
      const lb = services.get(balancerId);
      if (!lb || lb.type !== 'loadBalancerService') throw new Error(`no balancer ${balancerId} in the simulator`);
      const fallback = await createSelfSigned(['rancher-sim-balancer.invalid']);
      const contextFor = (servername: string) => {
        const keys = servedKeys.get(lb.id) ?? new Map<string, string>();
        const held = [...lb.served].map(([id, pem]) => ({ id, pem, names: new X509Certificate(pem).subjectAltName?.split(', ').map((n) => n.replace(/^DNS:/, '')) ?? [] }));
        const matches = (n: string) => n === servername || (n.startsWith('*.') && servername.slice(servername.indexOf('.')) === n.slice(1));
        const pick = held.find((h) => h.names.some(matches)) ?? held.find((h) => h.id === lb.lbConfig?.defaultCertificateId);
        return pick ? tls.createSecureContext({ cert: pick.pem, key: keys.get(pick.id)! }) : tls.createSecureContext({ cert: fallback.cert, key: fallback.key });
      };
      const server = tls.createServer({ cert: fallback.cert, key: fallback.key, SNICallback: (name, cb) => cb(null, contextFor(name)) }, (s) => s.end());
      server.on('tlsClientError', () => undefined);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      tlsListeners.set(lb.id, { server, port });
      return port;
    },
    setBalancerState(balancerId, state) {
      const lb = services.get(balancerId);
      if (!lb) throw new Error(`no balancer ${balancerId} in the simulator`);
      lb.state = state;
      lb.transitioning = BUSY.has(state) ? 'yes' : state === 'error' ? 'error' : 'no';
      lb.transitioningMessage = state === 'error' ? 'Failed to start: container exited' : null;
      // Held until the test moves it on.
      lb.settleAt = Number.MAX_SAFE_INTEGER;
    },
    certByName: (name) => [...certificates.values()].find((c) => c.name === name && c.state !== 'removed'),
    stickInError(name, message) {
      if (message === undefined) stuck.delete(name);
      else stuck.set(name, message);
    },
    foreignLinks: (origin, links = ['self', 'next', 'update']) => void (foreign = origin === undefined ? undefined : { origin, links }),
    fault: (f) => void faults.push({ ...f, seen: 0, fired: 0 }),
    clearFaults: () => void faults.splice(0),
    clearLog: () => void log.splice(0),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        for (const l of tlsListeners.values()) l.server.close();
        server.close(() => r());
      }),
  };
}

/** Simulators started by one test file, all closed together in its `after`. */
export function simPool(): { start(opts?: SimOptions): Promise<RancherSim>; closeAll(): Promise<void> } {
  const started: RancherSim[] = [];
  return {
    async start(opts) {
      const s = await startRancherSim(opts);
      started.push(s);
      return s;
    },
    closeAll: async () => void (await Promise.all(started.map((s) => s.close()))),
  };
}
