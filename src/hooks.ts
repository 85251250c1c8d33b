/**
 * Runs the operator's command after a certificate changes (ON_CHANGE_COMMAND), with the certificate's
 * name and file paths in its environment and a timeout that kills the whole process group.
 */
import { spawn } from 'node:child_process';

export interface HookResult {
  code: number | null;
  timedOut: boolean;
  output: string;
}

// The hook is the operator's own program, but it has no business with our credentials.
const WITHHELD = ['CATTLE_SECRET_KEY', 'CATTLE_ACCESS_KEY', 'CATTLE_AGENT_INSTANCE_AUTH', 'ACME_EAB_HMAC_KEY', 'STATUS_TOKEN', 'WEBHOOK_URL', 'RFC2136_TSIG_SECRET', 'CLOUDFLARE_DNS_API_TOKEN'];
const MAX_OUTPUT = 4096;

/**
 * The hook's output goes to our log; a hook that prints the key it was pointed at (cat "$CERTWRANGLER_KEY")
 * must not put it there. Output is cut at MAX_OUTPUT, so a block may have lost its END line.
 */
export function redactKeys(text: string): string {
  return text.replace(/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g, '[private key withheld]');
}

export function runHook(command: string, vars: Record<string, string>, timeoutMs: number): Promise<HookResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...vars };
  for (const k of WITHHELD) delete env[k];
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (b: Buffer) => {
      if (output.length < MAX_OUTPUT) output += b.toString('utf8').slice(0, MAX_OUTPUT - output.length);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, timedOut, output: e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut, output: redactKeys(output).trim() });
    });
  });
}
