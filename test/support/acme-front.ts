/**
 * An ACME front for a real Pebble: Debian's Pebble (2.4) has neither ACME Renewal Information (RFC 9773) nor
 * profiles (Let's Encrypt's https://letsencrypt.org/docs/profiles/, draft-ietf-acme-profiles). The front
 * passes every request to Pebble unchanged (Pebble checks the JWS, nonces, accounts and validation) and adds,
 * each behaviour citing where it comes from:
 *
 * - the directory's `renewalInfo` URL (RFC 9773 §3) and `meta.profiles` (draft-ietf-acme-profiles §3);
 * - `GET renewalInfo/<certID>` (RFC 9773 §4.1) answering a RenewalInfo object with a Retry-After (§4.2); by
 *   default the window is Boulder's: two days around the two-thirds point (as Pebble's later releases answer);
 * - newOrder's `profile` (profiles §4: an unknown one is refused with `invalidProfile`) and `replaces` (RFC 9773
 *   §5: one that names a certificate this CA did not issue, or one already replaced, is refused with
 *   `alreadyReplaced`, 409); both are echoed in the order object;
 * - certificates as each profile issues them (Let's Encrypt's profiles page): `classic` 90 days with the CN,
 *   `tlsserver` 90 days without a CN, `shortlived` 160 hours without a CN and the only one that takes IP
 *   identifiers (RFC 8738). Pebble's leaf is re-signed with Pebble's own intermediate key (from its management
 *   interface), keeping its serial, key and chain, so the chain still verifies to Pebble's root.
 *
 * Tests drive it in-process, as Pebble's newer `set-renewal-info` management endpoint is driven: set any
 * certificate's window, advertise profiles, read which `profile` and `replaces` each order carried, refuse
 * `replaces`, move the CA's clock, and mint certificates without an order (for large fleets).
 */
import https from 'node:https';
import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { authorityKeyId, OID_SUBJECT_KEY_ID, pemToDer, tbsParts } from '../../src/certs/der.js';
import { ariCertId } from '../../src/acme/ari.js';
import { splitPemChain } from '../../src/certs/parse.js';
import { buildLeaf } from './der-build.js';
import type { Pebble } from './pebble.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface ProfileRule {
  /** What the directory's meta.profiles says about it (Let's Encrypt gives a URL). */
  description: string;
  lifetimeMs: number;
  /** The subject carries a CN (the first DNS name). */
  commonName: boolean;
  /** RFC 8738 IP identifiers are accepted. */
  ipIdentifiers: boolean;
}

/** Let's Encrypt's profiles (https://letsencrypt.org/docs/profiles/). */
export const LE_PROFILES: Record<string, ProfileRule> = {
  classic: { description: 'https://letsencrypt.org/docs/profiles#classic', lifetimeMs: 90 * DAY, commonName: true, ipIdentifiers: false },
  tlsserver: { description: 'https://letsencrypt.org/docs/profiles#tlsserver', lifetimeMs: 90 * DAY, commonName: false, ipIdentifiers: false },
  shortlived: { description: 'https://letsencrypt.org/docs/profiles#shortlived', lifetimeMs: 160 * HOUR, commonName: false, ipIdentifiers: true },
};

export interface FrontOrder {
  url: string;
  identifiers: { type: string; value: string }[];
  profile?: string;
  replaces?: string;
  /** The front refused it (before Pebble saw it). */
  refused?: string;
}

export interface IssuedRecord {
  certId: string;
  pem: string;
  names: string[];
  notBefore: Date;
  notAfter: Date;
  profile: string | undefined;
  /** The window the front answers; Boulder's default unless a test set one. */
  window: { start: Date; end: Date; explanationURL?: string };
  /** A later order's `replaces` named it. */
  replacedBy?: string;
}

export interface AcmeFront {
  directoryUrl: string;
  /** Every newOrder, in arrival order. */
  orders: FrontOrder[];
  /** Every certificate the front issued or minted, by CertID. */
  issued: Map<string, IssuedRecord>;
  /** renewalInfo answers so far (GETs). */
  renewalInfoRequests(): number;
  /** The profiles meta.profiles advertises; {} advertises none (and orders with a profile are refused). */
  setProfiles(profiles: Record<string, ProfileRule>, defaultProfile?: string): void;
  /** Moves the CA's clock (what new certificates' notBefore and the default windows are measured from). */
  setClock(now: () => Date): void;
  /** Sets the window of a certificate (by CertID or PEM), as Pebble's set-renewal-info does. */
  setWindow(cert: string, window: { start: Date; end: Date; explanationURL?: string }): void;
  setRetryAfterSeconds(seconds: number | undefined): void;
  /** How windows of newly issued certificates are drawn (default: Boulder's, `defaultWindow`). */
  setWindowRule(rule: (notBefore: Date, notAfter: Date) => { start: Date; end: Date }): void;
  /** The next `times` orders that carry `replaces` are refused with alreadyReplaced (RFC 9773 §5). */
  refuseReplaces(times: number): void;
  /** renewalInfo answers 503 while set (to test backoff). */
  failRenewalInfo(on: boolean): void;
  /** A certificate for `names` from the CA's intermediate, as if ordered (for large fleets). */
  mint(names: string[], spki: Buffer, opts?: { profile?: string; notBefore?: Date }): { cert: string; chain: string; certId: string };
  close(): Promise<void>;
}

const problem = (type: string, detail: string, status: number) => ({ status, body: { type: `urn:ietf:params:acme:error:${type}`, detail, status } });

function collect(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function jwsPayload(body: Buffer): Record<string, unknown> | undefined {
  try {
    const jws = JSON.parse(body.toString('utf8')) as { payload?: string };
    if (!jws.payload) return undefined;
    return JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function get(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, timeout: 5000 }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

/** Boulder's RenewalInfoSimple, as Pebble answers: a two-day window centred on the two-thirds point of the lifetime. */
export function defaultWindow(notBefore: Date, notAfter: Date): { start: Date; end: Date } {
  const ideal = notAfter.getTime() - (notAfter.getTime() + 1000 - notBefore.getTime()) / 3;
  return { start: new Date(ideal - DAY), end: new Date(ideal + DAY) };
}

export async function startAcmeFront(pebble: Pebble, opts: { profiles?: Record<string, ProfileRule>; defaultProfile?: string } = {}): Promise<AcmeFront> {
  const caPem = readFileSync(pebble.caBundlePath, 'utf8');
  const tlsKey = readFileSync(pebble.caBundlePath.replace(/\.pem$/, '.key'), 'utf8');
  const upstream = new URL(pebble.directoryUrl);
  const intermediatePem = await get(`${pebble.managementUrl}/intermediates/0`, caPem);
  const intermediateKey: KeyObject = createPrivateKey(await get(`${pebble.managementUrl}/intermediate-keys/0`, caPem));
  const inter = tbsParts(pemToDer(intermediatePem));
  const ski = inter.extensions.get(OID_SUBJECT_KEY_ID);
  // The SKI extension value is an OCTET STRING holding the key id.
  const issuerKeyId = ski ? ski.subarray(2) : authorityKeyId(inter)!;

  let profiles = opts.profiles ?? LE_PROFILES;
  let defaultProfile = opts.defaultProfile ?? (profiles.classic ? 'classic' : undefined);
  let clock = () => new Date();
  let retryAfterSeconds: number | undefined = 21600;
  let refuseReplacesLeft = 0;
  let renewalInfoFails = false;
  let renewalInfoCount = 0;
  let windowRule = defaultWindow;
  const orders: FrontOrder[] = [];
  const issued = new Map<string, IssuedRecord>();
  const orderByUrl = new Map<string, FrontOrder>();
  const orderByCertUrl = new Map<string, FrontOrder>();
  const reissued = new Map<string, string>();

  const ruleOf = (profile: string | undefined): ProfileRule => (profile && profiles[profile]) || LE_PROFILES.classic!;

  function record(pem: string, names: string[], profile: string | undefined): IssuedRecord {
    const certId = ariCertId(pem)!;
    const x = new X509Certificate(pem);
    const notBefore = new Date(x.validFrom);
    const notAfter = new Date(x.validTo);
    const rec: IssuedRecord = { certId, pem, names, notBefore, notAfter, profile, window: windowRule(notBefore, notAfter) };
    issued.set(certId, rec);
    return rec;
  }

  function mintLeaf(names: string[], spki: Buffer, serial: Buffer, profile: string | undefined, notBefore: Date): string {
    const rule = ruleOf(profile);
    const firstDns = names.find((n) => !isIP(n));
    return buildLeaf({
      serial,
      issuer: inter.subject,
      issuerKeyId,
      spki,
      names,
      // Let's Encrypt backdates by an hour; the lifetime counts from there.
      notBefore,
      notAfter: new Date(notBefore.getTime() + rule.lifetimeMs - 1000),
      ...(rule.commonName && firstDns ? { commonName: firstDns } : {}),
      caKey: intermediateKey,
    });
  }

  async function forward(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers };
      delete headers['content-length'];
      const r = https.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...headers, 'content-length': String(body.length) }, ca: caPem, timeout: 10_000 },
        async (res) => {
          const data = await collect(res);
          const out: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection') out[k] = v;
          resolve({ status: res.statusCode ?? 502, headers: out, body: data });
        },
      );
      r.on('error', reject);
      r.on('timeout', () => r.destroy(new Error('pebble timed out')));
      r.end(body);
    });
  }

  async function freshNonce(host: string): Promise<string | undefined> {
    return new Promise((resolve) => {
      const r = https.request({ host: upstream.hostname, port: upstream.port, method: 'HEAD', path: '/nonce-plz', headers: { host }, ca: caPem, timeout: 5000 }, (res) => {
        res.resume();
        resolve(res.headers['replay-nonce'] as string | undefined);
      });
      r.on('error', () => resolve(undefined));
      r.end();
    });
  }

  function send(res: ServerResponse, status: number, headers: Record<string, string | string[]>, body: Buffer | string): void {
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { ...headers, 'content-length': String(buf.length) });
    res.end(buf);
  }

  async function refuse(req: IncomingMessage, res: ServerResponse, p: { status: number; body: unknown }): Promise<void> {
    // RFC 8555 §6.5: every answer carries a fresh nonce; Pebble never saw this request, so ask it for one.
    const nonce = await freshNonce(req.headers.host ?? '');
    send(res, p.status, { 'content-type': 'application/problem+json', ...(nonce ? { 'replay-nonce': nonce } : {}) }, JSON.stringify(p.body));
  }

  const withOrderFields = (body: Buffer, o: FrontOrder | undefined): Buffer => {
    if (!o) return body;
    try {
      const json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      return Buffer.from(JSON.stringify({ ...json, ...(o.profile ? { profile: o.profile } : {}), ...(o.replaces ? { replaces: o.replaces } : {}) }));
    } catch {
      return body;
    }
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await collect(req);
    const host = req.headers.host ?? '';
    const path = (req.url ?? '/').split('?')[0]!;

    // RFC 9773 §4.1: GET <renewalInfo>/<certID>, unauthenticated.
    if (path.startsWith('/renewal-info/') && req.method === 'GET') {
      renewalInfoCount++;
      if (renewalInfoFails) return send(res, 503, { 'content-type': 'application/problem+json' }, JSON.stringify(problem('serverInternal', 'renewalInfo is down (test)', 503).body));
      const rec = issued.get(decodeURIComponent(path.slice('/renewal-info/'.length)));
      if (!rec) return send(res, 404, { 'content-type': 'application/problem+json' }, JSON.stringify(problem('malformed', 'no such certificate (RFC 9773 §4.1)', 404).body));
      const w = rec.window;
      // §4.2: the RenewalInfo object, and a Retry-After saying when to ask again.
      return send(
        res,
        200,
        { 'content-type': 'application/json', ...(retryAfterSeconds !== undefined ? { 'retry-after': String(retryAfterSeconds) } : {}) },
        JSON.stringify({ suggestedWindow: { start: w.start.toISOString(), end: w.end.toISOString() }, ...(w.explanationURL ? { explanationURL: w.explanationURL } : {}) }),
      );
    }

    let order: FrontOrder | undefined;
    if (path === '/order-plz' && req.method === 'POST') {
      const payload = jwsPayload(body) ?? {};
      const identifiers = (payload.identifiers as FrontOrder['identifiers']) ?? [];
      const profile = typeof payload.profile === 'string' ? payload.profile : undefined;
      const replaces = typeof payload.replaces === 'string' ? payload.replaces : undefined;
      order = { url: '', identifiers, ...(profile ? { profile } : {}), ...(replaces ? { replaces } : {}) };
      orders.push(order);
      const effective = profile ?? defaultProfile;
      // draft-ietf-acme-profiles §4: a profile the server does not advertise is refused.
      if (profile !== undefined && !profiles[profile]) {
        order.refused = 'invalidProfile';
        return refuse(req, res, problem('invalidProfile', `profile "${profile}" is not one of this CA's profiles (${Object.keys(profiles).join(', ') || 'none'})`, 400));
      }
      // RFC 8738 §3 identifiers are the CA's to accept; Let's Encrypt takes them in `shortlived` only.
      const ip = identifiers.find((i) => i.type === 'ip');
      if (ip && !ruleOf(effective).ipIdentifiers) {
        order.refused = 'rejectedIdentifier';
        return refuse(req, res, problem('rejectedIdentifier', `IP address identifiers (${ip.value}) are only issued in the shortlived profile`, 400));
      }
      // RFC 9773 §5: `replaces` must name a certificate of this CA not yet replaced; otherwise 409 alreadyReplaced.
      if (replaces !== undefined) {
        const old = issued.get(replaces);
        const why = refuseReplacesLeft > 0 ? 'refused by the test' : !old ? 'no certificate of this CA has that CertID' : old.replacedBy ? `already replaced by ${old.replacedBy}` : undefined;
        if (refuseReplacesLeft > 0) refuseReplacesLeft--;
        if (why) {
          order.refused = 'alreadyReplaced';
          return refuse(req, res, problem('alreadyReplaced', `the certificate in "replaces" cannot be replaced: ${why}`, 409));
        }
      }
      const up = await forward(req, body);
      const url = typeof up.headers.location === 'string' ? up.headers.location : '';
      if (up.status === 201 && url) {
        order.url = url;
        orderByUrl.set(url, order);
        if (replaces) issued.get(replaces)!.replacedBy = url;
      }
      return send(res, up.status, up.headers, up.status === 201 ? withOrderFields(up.body, { ...order, ...(effective && !profile ? { profile: effective } : {}) }) : up.body);
    }

    // The certificate download: Pebble's leaf, re-issued as the order's profile shapes it.
    const certOrder = orderByCertUrl.get(`https://${host}${path}`);
    if (certOrder && req.method === 'POST') {
      const up = await forward(req, body);
      if (up.status !== 200) return send(res, up.status, up.headers, up.body);
      const url = `https://${host}${path}`;
      let pem = reissued.get(url);
      if (!pem) {
        const [leaf, ...chain] = splitPemChain(up.body.toString('utf8'));
        const parts = tbsParts(pemToDer(leaf!));
        const names = certOrder.identifiers.map((i) => i.value);
        const profile = certOrder.profile ?? defaultProfile;
        const notBefore = new Date(clock().getTime() - HOUR);
        const minted = mintLeaf(names, parts.spki, parts.serial, profile, notBefore);
        record(minted, names, profile);
        pem = minted + chain.join('');
        reissued.set(url, pem);
      }
      return send(res, 200, up.headers, pem);
    }

    const up = await forward(req, body);
    let out = up.body;
    if (path === '/dir' && up.status === 200) {
      const dir = JSON.parse(up.body.toString('utf8')) as Record<string, unknown> & { meta?: Record<string, unknown> };
      dir.renewalInfo = `https://${host}/renewal-info`;
      const advertised = Object.fromEntries(Object.entries(profiles).map(([k, v]) => [k, v.description]));
      dir.meta = { ...(dir.meta ?? {}), ...(Object.keys(advertised).length > 0 ? { profiles: advertised } : {}) };
      out = Buffer.from(JSON.stringify(dir));
    } else if (up.status === 200 && /^\/(my-order|finalize-order)\//.test(path)) {
      const orderUrl = path.startsWith('/my-order/') ? `https://${host}${path}` : `https://${host}${path.replace('/finalize-order/', '/my-order/')}`;
      const o = orderByUrl.get(orderUrl);
      try {
        const json = JSON.parse(up.body.toString('utf8')) as { certificate?: string };
        if (o && json.certificate) orderByCertUrl.set(json.certificate, o);
      } catch {
        /* not JSON */
      }
      out = withOrderFields(up.body, o ? { ...o, ...(o.profile ? {} : defaultProfile ? { profile: defaultProfile } : {}) } : undefined);
    }
    send(res, up.status, up.headers, out);
  }

  const server = https.createServer({ cert: caPem, key: tlsKey }, (req, res) => {
    handle(req, res).catch((e: Error) => send(res, 502, { 'content-type': 'text/plain' }, `acme front: ${e.message}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    directoryUrl: `https://127.0.0.1:${port}/dir`,
    orders,
    issued,
    renewalInfoRequests: () => renewalInfoCount,
    setProfiles(p, d) {
      profiles = p;
      defaultProfile = d;
    },
    setClock(now) {
      clock = now;
    },
    setWindow(cert, window) {
      const id = cert.includes('-----BEGIN') ? ariCertId(cert)! : cert;
      const rec = issued.get(id);
      if (!rec) throw new Error(`acme front: no certificate ${id}`);
      rec.window = window;
    },
    setRetryAfterSeconds(s) {
      retryAfterSeconds = s;
    },
    setWindowRule(rule) {
      windowRule = rule;
    },
    refuseReplaces(times) {
      refuseReplacesLeft = times;
    },
    failRenewalInfo(on) {
      renewalInfoFails = on;
    },
    mint(names, spki, o = {}) {
      const serial = randomBytes(16);
      serial[0] = (serial[0]! & 0x7f) || 1;
      const profile = o.profile ?? defaultProfile;
      const cert = mintLeaf(names, spki, serial, profile, o.notBefore ?? new Date(clock().getTime() - HOUR));
      const rec = record(cert, names, profile);
      return { cert, chain: intermediatePem.endsWith('\n') ? intermediatePem : `${intermediatePem}\n`, certId: rec.certId };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
