/**
 * Writes the deterministic tiny demo GGUF model used by the embedded llama-cpp engine.
 *
 *   node -r @swc-node/register scripts/make-tiny-model.ts [path] [--seed N]
 *
 * Default path: data/models/tiny.gguf (relative to the current directory). Same seed →
 * byte-identical file. The write is atomic (temporary file + rename).
 */
import { writeTinyModel } from '../src/modules/gguf/tiny-model';

function main(argv: string[]): void {
  let path = 'data/models/tiny.gguf';
  let seed = 42;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seed') {
      seed = Number(argv[++i]);
    } else if (a === '-h' || a === '--help') {
      console.log('usage: make-tiny-model [path] [--seed N]   (default path data/models/tiny.gguf, seed 42)');
      return;
    } else {
      path = a;
    }
  }
  const started = Date.now();
  const { path: written, bytes } = writeTinyModel(path, seed);
  console.log(`${written} ${bytes} bytes (seed ${seed}, ${Date.now() - started} ms)`);
}

try {
  main(process.argv.slice(2));
} catch (err) {
  console.error(`make-tiny-model: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
