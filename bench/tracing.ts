/**
 * What tracing costs a request: the gateway's own path (a completion-cache hit on the in-process
 * mock model: auth, rate limit, quota, cache, logging, metrics; no backend) over loopback HTTP,
 * sequential latency, CPU time per request and throughput at a concurrency, with tracing off (no OTEL_* variable) or
 * on (every request sampled and exported over OTLP/HTTP protobuf to a sink in this process).
 * The same file runs on a tree without tracing for the "before" figure.
 *
 *   node -r @swc-node/register bench/tracing.ts [--mode off|on] [--requests N] [--concurrency N] [--out NAME]
 *
 * Writes bench/results/<NAME>.json (default tracing-<mode>). bench/results/tracing.json gathers
 * four alternating rounds of before (the tree without tracing), off and on.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { arg, percentiles, startBenchServer, timedGenerate, writeResult } from './lib';

async function otlpSink(): Promise<{ url: string; received: () => number; close: () => void }> {
  let bytes = 0;
  const server = createServer((req, res) => {
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: () => bytes,
    close: () => server.close(),
  };
}

async function main(): Promise<void> {
  const mode = arg('mode', 'off');
  const requests = Number(arg('requests', '2000'));
  const concurrency = Number(arg('concurrency', '8'));
  const sink = mode === 'on' ? await otlpSink() : null;
  const server = await startBenchServer('default_model: mock\nmodels:\n  - name: mock\n    provider: mock\n', {
    ...(sink ? { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER: 'always_on' } : {}),
  });
  const body = { prompt: 'the same prompt, a cache hit', max_new_tokens: 16, seed: 1 };
  try {
    for (let i = 0; i < 200; i += 1) await timedGenerate(server, body); // warm-up (JIT, cache entry)
    const latencies: number[] = [];
    // CPU time of this process (server and client) per request: steadier than wall time on a
    // loaded machine, where other processes stretch every latency.
    const cpuBefore = process.cpuUsage();
    for (let i = 0; i < requests; i += 1) latencies.push((await timedGenerate(server, body)).ms);
    const cpu = process.cpuUsage(cpuBefore);
    const cpuUsPerRequest = Math.round((cpu.user + cpu.system) / requests);
    let done = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (done < requests) {
          done += 1;
          await timedGenerate(server, body);
        }
      }),
    );
    const rps = Math.round((requests / (performance.now() - started)) * 1000);
    writeResult(arg('out', `tracing-${mode}`), {
      mode,
      requests,
      concurrency,
      path: 'POST /v1/generate, completion-cache hit on the mock model',
      sequential: percentiles(latencies),
      cpu_us_per_request: cpuUsPerRequest,
      requests_per_second: rps,
      ...(sink ? { otlp_bytes_exported: sink.received() } : {}),
    });
  } finally {
    await server.close();
    sink?.close();
  }
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
