// Preloaded into the soak's server process (node --expose-gc -r bench/soak-gc.js): SIGUSR2 runs a
// full garbage collection, so the soak compares the heap that is really held, not garbage that
// V8 has not collected yet. Bench-only: the product never loads this.
process.on('SIGUSR2', () => {
  global.gc();
  global.gc();
});
