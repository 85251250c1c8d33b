// GC per warm pass (issue 22): run with --trace-gc-nvp; marks the pass boundaries on stdout, then one JSON line.
const { loadConfig, createLogger, assemble, runPass, tuneHeap } = await import('../dist/bench/pass.js');
tuneHeap?.();
const deps = await assemble(loadConfig(), createLogger('warn'));
for (let i = 0; i < 5; i++) {
  console.log(`@@pass ${i}`);
  await runPass(deps);
}
console.log(`@@end`);
console.log(JSON.stringify({ totalMb: 0, top: [] }));
process.exit(0);
