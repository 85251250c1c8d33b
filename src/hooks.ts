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

// The hook is the operator's own program, but it has no business with the orchestrator's credentials.
const WITHHELD = ['CATTLE_SECRET_KEY', 'CATTLE_ACCESS_KEY', 'CATTLE_AGENT_INSTANCE_AUTH'];
const MAX_OUTPUT = 4096;

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
      resolve({ code, timedOut, output: output.trim() });
    });
  });
}
