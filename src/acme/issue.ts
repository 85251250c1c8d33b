/**
 * One order, from new key to issued chain. Written out step by step rather than with acme-client's
 * auto() so that the challenge files, the polling pace and the order URL are ours to control and report.
 */
import { isIP } from '../ip.js';
import * as acme from 'acme-client';
import { generatePrivateKey, loadPrivateKey, type KeyType } from '../certs/keys.js';
import { keyMatchesCert, parseCert, splitPemChain } from '../certs/parse.js';
import type { ChallengeSolver, ChallengeType } from './challenge.js';
import { DEFAULT_POLL, fetchWith, ORDER_VALIDATION_POLL, pollUntilSettled, PollTimeout, type Fetch, type Polled, type PollOptions } from './poll.js';
import { createCsr } from './csr.js';

export interface Issued {
  key: string;
  cert: string;
  chain: string;
  orderUrl: string;
}

export interface IssueOptions {
  keyType: KeyType;
  /** The stored key to order with (REUSE_KEY); undefined: a fresh key of `keyType`. */
  key?: string;
  /** A fresh key of `keyType` already being made for this order (src/acme/key-ahead.ts); used when `key` is not given. */
  freshKey?: Promise<string>;
  /** The solvers this manager has; `challenge` picks one (a wildcard's authorization always takes dns-01). */
  solvers: Partial<Record<ChallengeType, ChallengeSolver>>;
  challenge: ChallengeType;
  /** Told the order URL as soon as the CA creates the order (for logs and the ledger). */
  onOrder?: (orderUrl: string) => void;
  poll?: PollOptions;
  /** Shutdown: abandon the order at the next step; the `finally` blocks still remove challenge files. */
  signal?: AbortSignal;
  /** PREFERRED_CHAIN: among the CA's alternate chains, the one with this issuer CN (closest to the root wins). */
  preferredChain?: string;
  /**
   * Keeps the download (key and PEM, unread) before anything parses or checks it, so a certificate the CA
   * issued is never lost to a later step (issue 17 item 0: "store it first, then do the rest").
   */
  keep?: (downloaded: { key: string; pem: string; orderUrl: string }) => Promise<void>;
  /** newOrder's `profile` (draft-ietf-acme-profiles §4), already checked against the CA's meta.profiles. */
  profile?: string;
  /** newOrder's `replaces`: the ARI CertID of the certificate this order renews (RFC 9773 §5). */
  replaces?: string;
  /**
   * The URL of an order an earlier run created and did not finish: it is read and carried on from its state
   * (pending, ready, processing or valid) with `key`, and no new order is made. An order the CA no longer
   * offers (invalid, expired, unknown) fails at the step 'resume'.
   */
  resume?: string;
  /** Keeps the new order's URL with the key its CSR will carry, before any challenge is answered (see `resume`). */
  remember?: (order: { orderUrl: string; key: string; expires?: string }) => Promise<void>;
}

export class AcmeError extends Error {
  /** Names whose authorization the CA judged invalid (they count against the failed-validation limit). */
  failedNames: string[] = [];

  constructor(message: string, readonly step: string) {
    super(message);
    this.name = 'AcmeError';
  }
}

async function step<T>(name: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    signal?.throwIfAborted();
    return await fn();
  } catch (e) {
    if (e instanceof AcmeError) throw e;
    const err = e as Error & { code?: string };
    throw new AcmeError(`${name}: ${err.code ? `${err.code} ` : ''}${err.message}`, name);
  }
}

/** The CA's own words for why an authorization failed, from the challenge that carries an error. */
function authzFailure(name: string, authz: Polled): string {
  const challenges = Array.isArray(authz.challenges) ? (authz.challenges as { error?: { type?: string; detail?: string } }[]) : [];
  const err = challenges.find((c) => c.error)?.error;
  return `${name}: authorization ${authz.status}${err ? `: ${err.type ?? ''} ${err.detail ?? ''}`.trimEnd() : ''}`;
}

/** Reads an order an earlier run left (issue 20 item 2); one the CA will not finish fails at 'resume'. */
async function resumeOrder(client: acme.Client, url: string, signal: AbortSignal | undefined): Promise<acme.Order> {
  let order: acme.Order;
  try {
    signal?.throwIfAborted();
    order = await client.getOrder({ url } as acme.Order);
  } catch (e) {
    // Only the CA's own answer (a problem document: unknown order, unknown account) says the order is gone. A
    // shutdown or a connection that failed says nothing about it: the record is kept for the next attempt.
    const err = e as Error & { code?: string; isAxiosError?: boolean };
    const answered = !signal?.aborted && err.code === undefined && err.isAxiosError !== true;
    throw new AcmeError(`resume: order ${url}: ${err.code ? `${err.code} ` : ''}${err.message}`, answered ? 'resume' : 'resume-read');
  }
  if (!['pending', 'ready', 'processing', 'valid'].includes(order.status)) throw new AcmeError(`resume: order ${url} is ${order.status}`, 'resume');
  if (order.expires && Date.parse(order.expires) <= Date.now()) throw new AcmeError(`resume: order ${url} expired at ${order.expires}`, 'resume');
  return order;
}

/**
 * acme-client's finalizeOrder, given the CSR's DER: theirs takes a PEM and reads it with @peculiar/x509, which
 * this path otherwise never loads (src/acme/csr.ts).
 */
async function finalizeOrder(client: acme.Client, order: acme.Order, csr: Buffer): Promise<acme.Order> {
  if (!order.finalize) throw new Error('Unable to finalize order, URL not found');
  const api = (client as unknown as { api: { finalizeOrder(url: string, data: { csr: string }): Promise<{ data: acme.Order }> } }).api;
  const resp = await api.finalizeOrder(order.finalize, { csr: csr.toString('base64url') });
  return { ...resp.data, url: order.url };
}

/** An authorization whose challenge was answered: its name (for messages) and URL. */
export interface Answered {
  name: string;
  url: string;
}

/** The outcome of one answered authorization's validation: settled valid, or an AcmeError. */
async function validation(fetch: Fetch, a: Answered, poll: PollOptions, first?: Polled): Promise<void> {
  const settled = first ?? (await step(`${a.name}: validation`, () => pollUntilSettled(fetch, a.url, poll)));
  if (settled.status !== 'valid') throw new AcmeError(authzFailure(a.name, settled), 'validation');
}

/**
 * Waits for the answered authorizations to be validated, one result per entry of `answers` (a fulfilled entry
 * without an answer: nothing to validate). When every challenge was answered, the order is polled instead of
 * each authorization (RFC 8555 §7.1.6: it is "ready" once all its authorizations are valid, "invalid" as soon as
 * one is not): one request a look instead of ten, so the looks can come often; only when it is invalid are the
 * authorizations read, once each, for the CA's reason and the names that failed. Otherwise (a challenge could
 * not be answered, the order could not be read, or it left "pending" some other way) each authorization is
 * polled on its own, as it always was.
 */
export async function validations(fetch: Fetch, orderUrl: string, answers: PromiseSettledResult<Answered | undefined>[], poll: PollOptions): Promise<PromiseSettledResult<void>[]> {
  const answered = answers.map((a) => (a.status === 'fulfilled' ? a.value : undefined));
  const waitEach = () => Promise.allSettled(answered.map(async (a) => (a ? validation(fetch, a, poll) : undefined)));
  if (answered.every((a) => a === undefined) || answers.some((a) => a.status === 'rejected')) return waitEach();
  let status: string;
  try {
    status = (await pollUntilSettled(fetch, orderUrl, { ...poll, ...ORDER_VALIDATION_POLL })).status;
  } catch (e) {
    // Still pending at the deadline: every answered authorization failed its wait, as each would have alone.
    if (e instanceof PollTimeout) return answered.map((a) => (a ? { status: 'rejected', reason: new AcmeError(`${a.name}: validation: ${e.message}`, `${a.name}: validation`) } : { status: 'fulfilled', value: undefined }));
    // A shutdown, an order that cannot be read: each authorization's own wait says what it says, as before.
    return waitEach();
  }
  if (status === 'ready' || status === 'processing' || status === 'valid') return answered.map(() => ({ status: 'fulfilled', value: undefined }));
  // Invalid: read each authorization once; one still pending (the order expired meanwhile) is waited for.
  return Promise.allSettled(
    answered.map(async (a) => {
      if (!a) return;
      const now = (await step(`${a.name}: validation`, () => fetch(a.url))).data as Polled;
      await validation(fetch, a, poll, now && typeof now.status === 'string' && now.status !== 'pending' && now.status !== 'processing' ? now : undefined);
    }),
  );
}

export async function issueCertificate(client: acme.Client, names: string[], opts: IssueOptions): Promise<Issued> {
  const { signal } = opts;
  // Validation may be abandoned at shutdown; an order past it is finished, since its certificate would
  // count against the CA's limits whether or not we download it.
  const finishPoll = opts.poll ?? DEFAULT_POLL;
  const poll = { ...finishPoll, ...(signal ? { signal } : {}) };
  const fetch = fetchWith(client);
  // An RSA key takes a few hundred ms of CPU: make it while the CA creates the order and validates.
  const keyAndCsr = (async () => {
    const key = opts.key ?? (await (opts.freshKey ?? generatePrivateKey(opts.keyType)));
    // An IP address is no common name (CA/Browser Forum BR §7.1.4.3): such a CSR names it in the SANs only.
    const first = names.find((n) => !isIP(n));
    return { key, csr: createCsr(loadPrivateKey(key), names, first) };
  })();
  keyAndCsr.catch(() => undefined); // awaited below; an order that fails first must not leave it unhandled
  const order = opts.resume ? await resumeOrder(client, opts.resume, signal) : await step('new order', () =>
    client.createOrder({
      identifiers: names.map((value) => ({ type: isIP(value) ? 'ip' : 'dns', value })),
      ...(opts.profile ? { profile: opts.profile } : {}),
      ...(opts.replaces ? { replaces: opts.replaces } : {}),
    } as Parameters<acme.Client['createOrder']>[0]),
    signal,
  );
  // The order is kept with its key before any challenge is answered; the authorizations are read and the
  // challenge files written meanwhile, since the key (a few hundred ms of CPU for RSA) is often still being made.
  let remembered: Promise<void> = Promise.resolve();
  if (!opts.resume) {
    opts.onOrder?.(order.url);
    const remember = opts.remember;
    if (remember) {
      remembered = (async () => {
        const { key } = await step('key', () => keyAndCsr);
        await step('remember order', () => remember({ orderUrl: order.url, key, ...(order.expires ? { expires: order.expires } : {}) }));
      })();
      remembered.catch(() => undefined); // awaited below, before anything is answered
    }
  }
  // A resumed order past validation has nothing left to answer.
  const authorizations =
    order.status === 'pending'
      ? await step('authorizations', () => client.getAuthorizations(order), signal).catch(async (e: unknown) => {
          await remembered; // a failure to keep the order is the one reported
          throw e;
        })
      : [];

  // Each challenge is answered; the file or record stays until validation is over (the `finally` below).
  const cleanups: (() => Promise<void>)[] = [];
  let results: PromiseSettledResult<void>[];
  try {
    const answers = await Promise.allSettled(
      authorizations.map(async (authz): Promise<Answered | undefined> => {
        if (authz.status === 'valid') return undefined;
        const name = `${authz.wildcard ? '*.' : ''}${authz.identifier.value}`;
        const type: ChallengeType = authz.wildcard ? 'dns-01' : opts.challenge;
        const solver = opts.solvers[type];
        if (!solver) throw new AcmeError(`${name}: ${type} is asked for but no ${type} solver is configured (set DNS_PROVIDER)`, 'challenge');
        const challenge = authz.challenges.find((c) => c.type === type);
        if (!challenge) throw new AcmeError(`${name}: the CA offers no ${type} challenge`, 'challenge');
        let answered = false;
        try {
          const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
          // Also after a failed present: a script that failed half-way may have written the record.
          cleanups.push(() => solver.cleanup(name, challenge.token, keyAuthorization).catch(() => undefined));
          await step(`${name}: ${type === 'dns-01' ? 'write TXT record' : 'write challenge'}`, () => solver.present(name, challenge.token, keyAuthorization), signal);
          await remembered;
          await step(`${name}: answer challenge`, () => client.completeChallenge(challenge), signal);
          answered = true;
          return { name, url: authz.url };
        } catch (e) {
          // An authorization we never answered stays pending on the CA; release it.
          if (!answered) await client.deactivateAuthorization(authz).catch(() => undefined);
          throw e;
        }
      }),
    );
    const validated = await validations(fetch, order.url, answers, poll);
    results = answers.map((a, i) => (a.status === 'rejected' ? a : validated[i]!));
  } finally {
    await Promise.all(cleanups.map((c) => c()));
  }
  await remembered;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    const invalid = authorizations.filter((_, i) => {
      const r = results[i]!;
      return r.status === 'rejected' && r.reason instanceof AcmeError && r.reason.step === 'validation';
    });
    if (failed.reason instanceof AcmeError) failed.reason.failedNames = invalid.map((a) => a.identifier.value);
    throw failed.reason;
  }

  const { key, csr } = await step('key', () => keyAndCsr);
  // A resumed order the CA already finalized (processing or valid) is only waited for and downloaded.
  let finalized = order.status === 'pending' || order.status === 'ready' ? await step('finalize', () => finalizeOrder(client, order, csr)) : order;
  if (finalized.status !== 'valid') {
    const settled = await step('finalize', () => pollUntilSettled(fetch, order.url, finishPoll));
    if (settled.status !== 'valid') throw new AcmeError(`finalize: order ${settled.status}`, 'finalize');
    finalized = { ...finalized, ...(settled as unknown as acme.Order), url: order.url };
  }
  const pem = await step('download', () => client.getCertificate(finalized, opts.preferredChain));
  if (opts.keep) await step('keep', () => opts.keep!({ key, pem, orderUrl: order.url }));
  const [cert, ...rest] = splitPemChain(pem);
  if (!cert) throw new AcmeError('download: the CA returned no certificate', 'download');
  const info = await step('download', async () => parseCert(cert));
  const missing = names.filter((n) => !info.names.includes(n));
  if (missing.length > 0) throw new AcmeError(`download: certificate lacks ${missing.join(', ')}`, 'download');
  if (!keyMatchesCert(key, cert)) throw new AcmeError('download: certificate does not match our key', 'download');
  return { key, cert, chain: rest.join(''), orderUrl: order.url };
}
