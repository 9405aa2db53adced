/**
 * A fake vLLM in a process of its own, for benchmarks that must not share the gateway's or the
 * load generator's event loop: prints its URL on stdout, then serves until killed.
 *   node -r @swc-node/register bench/fake-upstream.ts [--token-delay-ms 0]
 * `--token-delay-ms N` streams one token every N ms (and delays a JSON answer by N ms per token).
 */
import { FakeVllm } from '../test/fakes/fake-vllm';
import { arg } from './lib';

(async () => {
  const fake = await FakeVllm.start();
  fake.recordRequests = false;
  const delayMs = Number(arg('token-delay-ms', '0'));
  if (delayMs > 0) fake.setMode('slow', { delayMs });
  process.stdout.write(`${fake.url}\n`);
})();
