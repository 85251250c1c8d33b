/**
 * WEBHOOK_URL: one POST per event, a JSON body of our own or a Slack incoming-webhook message. Retried
 * with backoff (src/retry.ts, as the Rancher client) on network errors, 429 and 5xx; never logged with its URL's path, which for Slack is the secret.
 */
import axios, { type AxiosError } from 'axios';
import { isBusyOrDown, retryWithBackoff } from '../retry.js';
import { describeEvent, type CertEvent } from './events.js';

export type WebhookFormat = 'json' | 'slack';

export function webhookBody(e: CertEvent, format: WebhookFormat): unknown {
  if (format === 'slack') {
    const icon = e.type === 'failed' || e.type === 'refused' || e.type === 'early-renewal' ? ':warning:' : e.type === 'placeholder' ? ':hourglass:' : ':lock:';
    return { text: `${icon} certwrangler: ${describeEvent(e)}` };
  }
  const { type, name, ...rest } = e;
  return { source: 'certwrangler', event: type, certificate: name, ...rest, message: describeEvent(e) };
}

/** The URL as it may appear in a log: scheme, host and port only. */
export function redactUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}

export interface WebhookOptions {
  url: string;
  format: WebhookFormat;
  timeoutMs: number;
  attempts?: number;
  retryBaseMs?: number;
}

export async function postWebhook(e: CertEvent, opts: WebhookOptions): Promise<void> {
  const attempts = opts.attempts ?? 3;
  const base = opts.retryBaseMs ?? 1000;
  const http = axios.create({ timeout: opts.timeoutMs, maxRedirects: 0, headers: { 'Content-Type': 'application/json', 'User-Agent': 'certwrangler' } });
  // A POST is not idempotent, but a receiver that failed or was busy has not acted on it.
  retryWithBackoff(http, { retries: attempts - 1, baseMs: base, retryCondition: isBusyOrDown });
  try {
    await http.post(opts.url, webhookBody(e, opts.format));
  } catch (err) {
    const ax = err as AxiosError & { config?: { 'axios-retry'?: { retryCount?: number } } };
    const why = ax.response ? `answered ${ax.response.status}` : ax.code === 'ECONNABORTED' ? `no answer within ${opts.timeoutMs} ms` : (ax.code ?? ax.message);
    const attempt = (ax.config?.['axios-retry']?.retryCount ?? 0) + 1;
    throw new Error(`webhook ${redactUrl(opts.url)} ${why} (attempt ${attempt} of ${attempts})`);
  }
}
