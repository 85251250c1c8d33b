/**
 * The manager's heap settings (src/heap.ts): the young generation's size can only be given to node at start, so the
 * image carries it in NODE_OPTIONS; node must take it from there (it takes only some V8 flags in NODE_OPTIONS).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { YOUNG_GENERATION } from '../../src/heap.js';

const imageOptions = () => /\bNODE_OPTIONS=(\S+)/.exec(readFileSync('Dockerfile', 'utf8'))?.[1];

/** The new space's size (MB) after a node with these NODE_OPTIONS has allocated enough to grow it to its limit. */
function newSpaceMb(nodeOptions: string | undefined): number {
  const script = "let k=[];for(let i=0;i<3e6;i++){k.push({i,s:'x'+i});if(k.length>50000)k=[];}" + "console.log(require('v8').getHeapSpaceStatistics().find((s)=>s.space_name==='new_space').space_size/1048576)";
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  if (nodeOptions) env.NODE_OPTIONS = nodeOptions;
  return Number(execFileSync(process.execPath, ['-e', script], { env, encoding: 'utf8' }).trim());
}

test('heap: the image gives node the young generation src/heap.ts asks for', () => {
  assert.equal(imageOptions(), YOUNG_GENERATION);
});

test('heap: node takes the young generation from NODE_OPTIONS (2 × 4 MB at most, against more with a larger one)', () => {
  const [semi] = /\d+/.exec(YOUNG_GENERATION)!;
  assert.ok(newSpaceMb(YOUNG_GENERATION) <= 2 * Number(semi), 'with the image NODE_OPTIONS');
  // Against an explicit larger setting, not node's default, which V8 sizes from the machine's memory.
  assert.ok(newSpaceMb('--max-semi-space-size=32') > 2 * Number(semi), 'a larger setting gives more, or the test shows nothing');
});
