/**
 * The `files` orchestrator: certificates as files in CERTS_DIR/<name>/, which nginx, HAProxy and
 * Traefik's file provider read. A `.certwrangler` marker records that we wrote the folder, so a folder
 * someone else filled is recognised as foreign and left alone.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { ensureDir, writeFileSet } from '../../certs/atomic.js';
import { parseCert } from '../../certs/parse.js';
import { KEY_MODE, type CertBundle } from '../../certs/store.js';
import type { Orchestrator, PushOptions, PushResult, RemoteCopy } from '../orchestrator.js';

const MARKER = '.certwrangler';
// Readers (nginx workers, HAProxy) may run as another user: folders and public files are readable,
// the key and the key-bearing bundle are not.
const DIR_MODE = 0o755;
const PUBLIC_MODE = 0o644;

export interface FilesOptions {
  certsDir: string;
}

/** The files a hook may read, named as ON_CHANGE_COMMAND has always seen them. */
export function filePaths(dir: string, withBundle: boolean): Record<string, string> {
  return {
    CERTWRANGLER_DIR: dir,
    CERTWRANGLER_CERT: join(dir, 'cert.pem'),
    CERTWRANGLER_CHAIN: join(dir, 'chain.pem'),
    CERTWRANGLER_FULLCHAIN: join(dir, 'fullchain.pem'),
    CERTWRANGLER_KEY: join(dir, 'privkey.pem'),
    ...(withBundle ? { CERTWRANGLER_BUNDLE: join(dir, 'bundle.pem') } : {}),
  };
}

export class FilesOrchestrator implements Orchestrator {
  readonly name = 'files';

  constructor(private readonly opts: FilesOptions) {}

  dir(name: string): string {
    return join(this.opts.certsDir, name);
  }

  async list(names: string[]): Promise<Map<string, RemoteCopy>> {
    const out = new Map<string, RemoteCopy>();
    await Promise.all(names.map(async (name) => out.set(name, await this.read(name))));
    return out;
  }

  private async read(name: string): Promise<RemoteCopy> {
    const dir = this.dir(name);
    const owned = await fs.stat(join(dir, MARKER)).then(() => true, () => false);
    let pem: string;
    try {
      pem = await fs.readFile(join(dir, 'cert.pem'), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return owned ? { state: 'unreadable', error: 'cert.pem missing', owned } : { state: 'absent' };
      return { state: 'unreadable', error: (e as Error).message, owned };
    }
    try {
      return { state: 'present', info: parseCert(pem), owned };
    } catch (e) {
      return { state: 'unreadable', error: `cert.pem: ${(e as Error).message}`, owned };
    }
  }

  async push(bundle: CertBundle, _opts: PushOptions): Promise<PushResult> {
    const dir = this.dir(bundle.name);
    const info = parseCert(bundle.cert);
    const fullchain = bundle.cert + bundle.chain;
    await ensureDir(this.opts.certsDir, DIR_MODE);
    await writeFileSet(
      dir,
      [
        { name: 'privkey.pem', data: bundle.key, mode: KEY_MODE },
        { name: 'cert.pem', data: bundle.cert, mode: PUBLIC_MODE },
        { name: 'chain.pem', data: bundle.chain, mode: PUBLIC_MODE },
        { name: 'fullchain.pem', data: fullchain, mode: PUBLIC_MODE },
        // HAProxy reads certificate, chain and key from one file.
        { name: 'bundle.pem', data: fullchain + bundle.key, mode: KEY_MODE },
        { name: MARKER, data: `${JSON.stringify({ fingerprint: info.fingerprint, pushedAt: new Date().toISOString() })}\n`, mode: PUBLIC_MODE },
      ],
      DIR_MODE,
    );
    return { target: dir };
  }

  async discover() {
    return { certs: [], refused: [] };
  }
}
