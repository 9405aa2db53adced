/**
 * GPU-like fakes (test/fakes/fake-gpu.ts) in a process of their own, so a benchmark's upstreams
 * do not share the gateway's event loop (on a real deployment they run on other machines):
 * prints the URLs as one JSON line, then serves until killed.
 *   node -r @swc-node/register bench/fake-gpu-upstream.ts --count 2 --options '{"capacity": 8}'
 */
import { FakeGpu, type GpuOptions } from '../test/fakes/fake-gpu';
import { arg } from './lib';

(async () => {
  const options = JSON.parse(arg('options', '{}')) as GpuOptions;
  const gpus = await Promise.all(Array.from({ length: Number(arg('count', '1')) }, () => FakeGpu.startGpu(options)));
  for (const gpu of gpus) gpu.recordRequests = false;
  process.stdout.write(`${JSON.stringify(gpus.map((gpu) => gpu.url))}\n`);
})();
