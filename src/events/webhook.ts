/**
 * WEBHOOK_URL: one POST per event, a JSON body of our own or a Slack incoming-webhook message. Retried
 * with backoff on network errors, 429 and 5xx; never logged with its URL's path, which for Slack is the secret.
 */
import axios from 'axios';
import { describeEvent, type CertEvent } from './events.js';

export type WebhookFormat = 'json' | 'slack';

export function webhookBody(e: CertEvent, format: WebhookFormat): unknown {
  if (format === 'slack') {
    const icon = e.type === 'failed' ? ':warning:' : e.type === 'placeholder' ? ':hourglass:' : ':lock:';
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
  for (let attempt = 1; ; attempt++) {
    let why: string;
    let retryable: boolean;
    try {
      const res = await axios.post(opts.url, webhookBody(e, opts.format), {
        timeout: opts.timeoutMs,
        maxRedirects: 0,
        validateStatus: () => true,
        headers: { 'Content-Type': 'application/json', 'User-Agent': 'certwrangler' },
      });
      if (res.status >= 200 && res.status < 300) return;
      why = `answered ${res.status}`;
      retryable = res.status === 429 || res.status >= 500;
    } catch (err) {
      const ax = err as { code?: string; message: string };
      why = ax.code === 'ECONNABORTED' ? `no answer within ${opts.timeoutMs} ms` : (ax.code ?? ax.message);
      retryable = true;
    }
    if (!retryable || attempt >= attempts) throw new Error(`webhook ${redactUrl(opts.url)} ${why} (attempt ${attempt} of ${attempts})`);
    await new Promise((r) => setTimeout(r, base * 2 ** (attempt - 1) * (0.5 + Math.random() / 2)));
  }
}
