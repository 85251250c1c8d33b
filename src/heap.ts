/**
 * How V8 grows the manager's heap (issue 22: memory). After each full collection V8 lets the old generation grow
 * to up to four times what survived before it collects again: a pass at 10,000 certificates leaves about 35 MB
 * live and its heap then grew to 150 MB. Twice what survived keeps the peak near the live data at no measured
 * cost in CPU (BENCHMARKS.md, "Sixth round"). The young generation's size cannot be changed once the process
 * runs: the image gives node YOUNG_GENERATION in NODE_OPTIONS (Dockerfile; test/unit/heap.test.ts keeps the two
 * the same), and the steady bench gives its child the image's NODE_OPTIONS.
 */
import v8 from 'node:v8';

/** A young generation of 2 × 4 MB instead of node's 2 × 16 MB: what survives a pass is held anyway. */
export const YOUNG_GENERATION = '--max-semi-space-size=4';

/** The old generation may grow to (1 + this/100) × what the last full collection left. */
export const HEAP_GROWING_PERCENT = 100;

/** Sets the heap's growth, unless the operator gave node a value of their own (NODE_OPTIONS cannot carry it). */
export function tuneHeap(): void {
  if (process.execArgv.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) return;
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
