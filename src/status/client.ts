/**
 * `certwrangler request <name>…` and `certwrangler reconcile`: the status API from a shell on the manager's
 * host (or `docker exec` in its container), with the token read from STATUS_TOKEN or DATA_DIR/status-token.
 * Exit codes: 0 done (or accepted, without --wait), 1 the certificate or pass needs attention, did not finish
 * within --wait, or no manager answers, 2 refused (bad names, no or wrong token, bad usage).
 */
import type { Config } from '../config.js';
import { readStatusToken, statusTokenPath } from './token.js';

/** Past --wait, the time the manager may take to answer at all. */
const ANSWER_MARGIN_MS = 30_000;

export class ClientUsageError extends Error {}

interface Target {
  url: string;
  token: string;
}

function target(config: Config): Target {
  if (!config.status) throw new ClientUsageError('STATUS_ADDR=off: this manager serves no API to talk to; set STATUS_ADDR as the manager has it');
  const { host, port } = config.status;
  // A manager listening on every address is reached on loopback.
  const connect = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const t = readStatusToken(config.dataDir, config.status.token);
  if (!t) throw new ClientUsageError(`no token: STATUS_TOKEN is not set and ${statusTokenPath(config.dataDir)} does not exist (the manager writes it when it starts; run this with the manager's DATA_DIR, or set STATUS_TOKEN)`);
  return { url: `http://${connect.includes(':') ? `[${connect}]` : connect}:${port}`, token: t.token };
}

async function call(t: Target, method: string, path: string, waitSec: number, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(`${t.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${t.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(waitSec * 1000 + ANSWER_MARGIN_MS),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
    throw new Error(`no manager answers at ${t.url} (STATUS_ADDR): ${cause === 'TimeoutError' ? 'no answer in time' : cause}; is \`certwrangler manager\` running with this STATUS_ADDR?`);
  }
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { error: text.slice(0, 300) };
  }
  return { status: res.status, json };
}

/** 2 for a refusal of what was asked (input, token, origin), 1 for anything else that is not a success. */
function refused(status: number, json: Record<string, unknown>): number | undefined {
  if (status >= 400 && status < 500 && status !== 409) {
    process.stderr.write(`certwrangler: the manager refused (${status}): ${String(json.error ?? 'no reason given')}\n`);
    return 2;
  }
  return undefined;
}

export async function requestCertificate(config: Config, names: string[], waitSec: number): Promise<number> {
  if (names.length === 0) throw new ClientUsageError('request needs at least one name: certwrangler request example.com www.example.com');
  const t = target(config);
  const first = names[0]!.toLowerCase();
  const { status, json } = await call(t, 'PUT', `/api/certificates/${encodeURIComponent(first)}${waitSec > 0 ? `?wait=${waitSec}` : ''}`, waitSec, { names });
  const r = refused(status, json);
  if (r !== undefined) return r;
  const result = (json.result ?? undefined) as { outcome?: string; kind?: string; notAfter?: string; error?: string } | undefined;
  const which = `${String(json.certificate ?? first)} [${((json.names as string[] | undefined) ?? names).join(', ')}]`;
  if (status === 200) {
    console.log(`${which}: ${result?.kind ?? ''} certificate in place${result?.notAfter ? `, expires ${result.notAfter}` : ''}`.replace(/ {2,}/g, ' '));
    return 0;
  }
  if (status === 202 && waitSec === 0) {
    console.log(`${which}: requested; a pass starts now (certwrangler request … --wait 120 waits for it)`);
    return 0;
  }
  if (status === 202) {
    console.log(`${which}: not finished: ${result?.kind === 'self-signed' ? 'a self-signed placeholder is in place until the real certificate arrives' : String(json.message ?? `not done within ${waitSec} s`)}`);
    return 1;
  }
  process.stderr.write(`${which}: ${status === 409 ? 'not ours to manage' : 'failed'}: ${result?.error ?? String(json.error ?? json.message ?? `answered ${status}`)}\n`);
  return 1;
}

export async function requestReconcile(config: Config, waitSec: number): Promise<number> {
  const t = target(config);
  const { status, json } = await call(t, 'POST', `/api/reconcile${waitSec > 0 ? `?wait=${waitSec}` : ''}`, waitSec);
  const r = refused(status, json);
  if (r !== undefined) return r;
  if (status === 202) {
    console.log(String(json.message ?? 'a pass will start now'));
    return waitSec === 0 ? 0 : 1;
  }
  const results = (json.results as { name: string; outcome: string; error?: string }[] | undefined) ?? [];
  const errors = (json.errors as string[] | undefined) ?? [];
  if (status === 200) {
    console.log(`pass finished: ${results.length} certificate(s), all fine`);
    return 0;
  }
  process.stderr.write(`pass finished; needs attention:\n`);
  for (const x of results.filter((x) => x.error || x.outcome === 'failed')) process.stderr.write(`  ${x.name}: ${x.error ?? x.outcome}\n`);
  for (const e of errors) process.stderr.write(`  ${e}\n`);
  if (status !== 502) process.stderr.write(`  the manager answered ${status}: ${String(json.error ?? '')}\n`);
  return 1;
}
