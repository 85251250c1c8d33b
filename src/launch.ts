#!/usr/bin/env node
/**
 * The installed `certwrangler` command (dist/cli.js, made by scripts/bundle.mjs from this file): it sets up the
 * process before a line of the program is read, then loads the bundled program (src/cli.ts) with a dynamic
 * import. Both settings must come first: every module of a static import graph is compiled before any of it
 * runs, and libuv sizes its thread pool at the first piece of work it is given.
 */
import module from 'node:module';
import { tuneHeap } from './heap.js';

// Node 22.1 and later keep the compiled code of the bundle on disk (NODE_COMPILE_CACHE, else a folder under the
// system's temp folder), so a start after the first skips most of compiling it. Older Node has no such call; a
// cache that cannot be written is reported in the result and ignored, since it only ever saves time.
const withCache = module as unknown as { enableCompileCache?: () => unknown };
withCache.enableCompileCache?.();

// libuv's default pool of 4 threads serialises the fsyncs of a first pass's placeholders (about ten each); ext4
// commits concurrent fsyncs together, and 100 placeholder sets took 1.0–1.1 s on 16 threads against 2.4–3.4 s on
// 4 (BENCHMARKS.md). An operator's own UV_THREADPOOL_SIZE wins.
const THREAD_POOL = '16';
process.env.UV_THREADPOOL_SIZE ??= THREAD_POOL;

// The old generation's growth (src/heap.ts); the young generation's size is node's to take at start, from the
// image's NODE_OPTIONS (Dockerfile).
tuneHeap();

await import('./cli.js');
