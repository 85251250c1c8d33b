/**
 * More than one CA (issue 19 item 3): a production order goes to the first CA of ACME_DIRECTORY_URLS that is
 * not in its backoff. When that CA is unreachable, answers 5xx, or holds the certificate with a rate limit
 * (its own `rateLimited`, or our ledger of it), the same certificate is ordered from the next CA in the same
 * pass. Any other failure (a validation that failed, a refused name) is the certificate's and would fail at
 * every CA: it is not retried elsewhere. With one CA this is exactly the single order it always was.
 */
import type { Kind } from '../certs/kind.js';
import { directoriesOf } from '../observe.js';
import type { CertResult, PassDeps } from '../reconciler.js';

/** What the order's AsyncLocalStorage context learns from the CA's answers on the way past (act.ts). */
export interface AttemptContext {
  directoryUrl: string;
  refused?: string;
  /** The CA answered rateLimited during this order: its detail. */
  rateLimited?: string;
}

// Network failures and 5xx answers, as acme-client and our transport put them in the message (the code
// comes first: "new order: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:14000").
const UNREACHABLE = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ECONNABORTED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE)\b|socket hang up|timeout of \d+ms exceeded|status code 5\d\d|\bHTTP 5\d\d\b/i;

/** Why the CA, not the certificate, is the problem; undefined: the certificate's own failure. */
function caProblem(e: unknown, ctx: AttemptContext): { text: string; down: boolean } | undefined {
  const err = e as Error;
  if (err?.name === 'RateLimitWait') return { text: `rate limit: ${err.message}`, down: false };
  if (ctx.rateLimited) return { text: `answered rateLimited (${ctx.rateLimited})`, down: false };
  if (UNREACHABLE.test(err?.message ?? '')) return { text: `unreachable or failing: ${err.message}`, down: true };
  return undefined;
}

/** Orders `attempt` from each CA in turn as described above; says on the result which CA issued and why. */
export async function orderFromCas<T>(deps: PassDeps, r: CertResult, kind: Kind, now: Date, attempt: (ctx: AttemptContext) => Promise<T>): Promise<{ result: T; directoryUrl: string }> {
  const cas = directoriesOf(deps.config, kind);
  if (cas.length === 1) return { result: await attempt({ directoryUrl: cas[0]! }), directoryUrl: cas[0]! };
  const { log } = deps;
  const passedOver: string[] = [];
  for (const [i, directoryUrl] of cas.entries()) {
    const last = i === cas.length - 1;
    const down = await deps.caHealth?.downUntil(directoryUrl, now);
    // The last CA is always tried: an order that fails there is the certificate's failure, with its backoff.
    if (down && !last) {
      passedOver.push(`${directoryUrl} ${down.reason} (passed over until ${down.until})`);
      continue;
    }
    const ctx: AttemptContext = { directoryUrl };
    try {
      const result = await attempt(ctx);
      await deps.caHealth?.up(directoryUrl).catch(() => undefined);
      r.ca = directoryUrl;
      r.caWhy = passedOver.length === 0 ? 'the preferred CA' : `fallback from ${passedOver.join('; ')}`;
      if (passedOver.length > 0) log.warn({ cert: r.name, reason: 'CaFallback', ca: directoryUrl, passedOver }, `${r.name}: issued by ${directoryUrl}, not the preferred CA: ${r.caWhy}`);
      return { result, directoryUrl };
    } catch (e) {
      const problem = caProblem(e, ctx);
      if (!problem || last) throw e;
      let until = '';
      if (problem.down) until = await deps.caHealth?.down(directoryUrl, problem.text, now).catch(() => '') ?? '';
      passedOver.push(`${directoryUrl} ${problem.text}`);
      log.warn({ cert: r.name, reason: 'CaUnavailable', ca: directoryUrl, error: problem.text, ...(until ? { until } : {}) }, `${r.name}: ${directoryUrl} ${problem.text}; ordering from ${cas[i + 1]} in this pass${until ? `; other orders pass it over until ${until}` : ''}`);
    }
  }
  throw new Error('unreachable: the last CA either issues or throws');
}
