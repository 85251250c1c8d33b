/**
 * Runs the operator's command after a certificate changes (ON_CHANGE_COMMAND), with the certificate's
 * name and file paths in its environment and a timeout that kills the whole process group.
 */
import { spawn } from 'node:child_process';
import { isSecretVariable } from './secrets.js';

export interface HookResult {
  code: number | null;
  timedOut: boolean;
  output: string;
}

const MAX_OUTPUT = 4096;

/**
 * The hook's output goes to our log; a hook that prints the key it was pointed at (cat "$CERTWRANGLER_KEY")
 * must not put it there. Output is cut at MAX_OUTPUT, so a block may have lost its END line.
 */
export function redactKeys(text: string): string {
  return text.replace(/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g, '[private key withheld]');
}

/**
 * Hook output reaches the log, and an exec provider's last lines reach /api/status and the webhook: a script
 * that echoes its curl command must not publish the DNS API's credentials there.
 */
export function maskSecrets(text: string): string {
  return text
    .replace(/(\b(?:proxy-)?authorization\s*[:=]\s*)[^\r\n"',;]*/gi, '$1[hidden]')
    .replace(/(\b(?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}/gi, '$1[hidden]')
    .replace(/(["']?\b[\w-]*(?:token|secret|password|passwd|pwd|api[_-]?key|access[_-]?key)["']?\s*[:=]\s*)(?:"[^"]*"|'[^']*'|[^\s&,;"']+)/gi, '$1[hidden]');
}

/** The C0 controls but tab and newline, DEL and the C1 controls: a NUL makes spawn throw, an escape sequence rewrites a terminal. */
export const CONTROL_CHARS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
const SAFE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Values come from outside (a CA's error detail, a label, a script's output): controls are removed and a
 * variable whose name a shell could not use is left out, so spawn never refuses the environment.
 */
export function cleanVars(vars: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(vars)) {
    if (SAFE_NAME.test(k)) out[k] = String(v).replace(CONTROL_CHARS, '');
  }
  return out;
}

export function runHook(command: string, vars: Record<string, string>, timeoutMs: number): Promise<HookResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...cleanVars(vars) };
  // The hook is the operator's own program, but it has no business with our credentials.
  for (const k of Object.keys(env)) if (isSecretVariable(k)) delete env[k];
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn('/bin/sh', ['-c', command], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      // spawn throws (not emits) for arguments it refuses; a throw here would end the manager.
      return resolve({ code: null, timedOut: false, output: `could not start: ${(e as Error).message}` });
    }
    let output = '';
    const collect = (b: Buffer) => {
      if (output.length < MAX_OUTPUT) output += b.toString('utf8').slice(0, MAX_OUTPUT - output.length);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
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
      resolve({ code, timedOut, output: maskSecrets(redactKeys(output)).trim() });
    });
  });
}
