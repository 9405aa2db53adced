/**
 * The generation flows of generate.e2e-spec.ts, once more through HTTP against the real
 * embedded engine (node-llama-cpp) serving the project's own tiny GGUF model: real tokenizer,
 * sampler, stop strings, streaming, abort and concurrent sequences.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp, writeModelsFile } from '../harness/app';
import { runServerUntilExit } from '../harness/process';
import { describeInProcess } from '../harness/environment';
import { createKey } from '../harness/keys';
import { listenOnLoopback, openPost } from '../harness/listen';
import { sseEvents } from '../harness/sse';
import { waitFor } from '../fakes/fake-server';
import { ModelRegistry } from '../../src/modules/scheduling/model-registry';
import type { LlamaCppProvider } from '../../src/modules/providers/llama-cpp/llama-cpp.provider';

describeInProcess('generation on the embedded tiny model', 'configures an in-process llama.cpp model', () => {
  let app: TestApp;
  let key: string;
  const modelPath = join(mkdtempSync(join(tmpdir(), 'llm-tiny-')), 'tiny.gguf');

  beforeAll(async () => {
    app = await startTestApp({
      modelsYaml: `default_model: tiny
models:
  - name: tiny
    provider: llama-cpp
    model_path: ${modelPath}
    generate_if_missing: true
    context_size: 1024
    sequences: 2
    max_queue: 8
    max_new_tokens: 256
    default_max_new_tokens: 16
    required: true
`,
    });
    key = (await createKey(app)).key;
  });
  afterAll(() => app.close());

  // Every request reaches the engine: the completion cache stays out of the way.
  const generate = (body: Record<string, unknown>) =>
    app.http().post('/v1/generate').set('X-API-Key', key).set('Cache-Control', 'no-store').send(body);

  it('answers with the response schema and real token usage', async () => {
    const res = await generate({ prompt: 'Hello, world', seed: 1 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ model: 'tiny', cached: false, finish_reason: 'length' });
    expect(res.body.output.length).toBeGreaterThan(0);
    // Byte-level tokenizer: 12 prompt bytes plus BOS; exactly the default 16 new tokens.
    expect(res.body.usage).toEqual({ prompt_tokens: 13, completion_tokens: 16, total_tokens: 29 });
  });

  it('same seed → same output; max_new_tokens is exact', async () => {
    const a = await generate({ prompt: 'determinism', seed: 42, max_new_tokens: 40, temperature: 0.8 });
    const b = await generate({ prompt: 'determinism', seed: 42, max_new_tokens: 40, temperature: 0.8 });
    expect(a.body.output).toBe(b.body.output);
    expect(a.body.usage.completion_tokens).toBe(40);
    const other = await generate({ prompt: 'determinism', seed: 43, max_new_tokens: 40, temperature: 0.8 });
    expect(other.body.output).not.toBe(a.body.output);
  });

  it('a stop string cuts the output before it, finish_reason stop', async () => {
    const greedy = await generate({ prompt: 'stop here', temperature: 0, max_new_tokens: 60 });
    const stop = greedy.body.output.slice(10, 12);
    const cut = await generate({ prompt: 'stop here', temperature: 0, max_new_tokens: 60, stop });
    expect(cut.body.finish_reason).toBe('stop');
    expect(cut.body.output).toBe(greedy.body.output.slice(0, greedy.body.output.indexOf(stop)));
    expect(cut.body.output).not.toContain(stop);
  });

  it('streamed deltas join to the non-streamed output', async () => {
    const body = { prompt: 'stream the engine', seed: 9, max_new_tokens: 24, top_k: 20, top_p: 0.9 };
    const plain = await generate(body);
    const streamed = await generate({ ...body, stream: true });
    const events = sseEvents(streamed.text);
    expect(events.at(-1)).toBe('[DONE]');
    const final = events.at(-2) as { output: string; done: boolean; usage: unknown };
    const deltas = events.slice(0, -2) as { delta: string }[];
    expect(deltas.map((d) => d.delta).join('')).toBe(plain.body.output);
    expect(final).toMatchObject({ done: true, output: plain.body.output, usage: plain.body.usage });
  });

  it('concurrent requests run on separate sequences and stay independent', async () => {
    const bodies = [1, 2, 3, 4].map((seed) => ({ prompt: `concurrent ${seed}`, seed, max_new_tokens: 30 }));
    const sequential = [];
    for (const body of bodies) sequential.push((await generate(body)).body.output);
    const concurrent = await Promise.all(bodies.map((body) => generate(body)));
    expect(concurrent.map((res) => res.status)).toEqual([200, 200, 200, 200]);
    expect(concurrent.map((res) => res.body.output)).toEqual(sequential);
  });

  it('a client disconnect stops the generation and frees its sequence', async () => {
    const baseUrl = await listenOnLoopback(app);
    const engine = app.app!.get(ModelRegistry).all()[0].providers[0] as LlamaCppProvider;
    const posts = [1, 2].map((seed) =>
      openPost(
        baseUrl,
        '/v1/generate',
        { 'x-api-key': key },
        { prompt: 'long', seed, max_new_tokens: 256, stream: seed === 1 },
      ),
    );
    await waitFor(() => engine.load.active === 2, 10_000); // both generating
    for (const post of posts) post.cut();
    // Stopped within a second of the cut, and both sequences free again.
    await waitFor(() => engine.load.active === 0 && engine.load.queued === 0, 1000);
    const after = await generate({ prompt: 'after the disconnects', max_new_tokens: 4 });
    expect(after.status).toBe(200);
    expect(after.body.usage.completion_tokens).toBe(4);
  });
});

describe('a corrupt GGUF file', () => {
  it('is a clean startup error: exit 1 with a message naming the file, never a crash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llm-corrupt-'));
    const modelPath = join(dir, 'corrupt.gguf');
    writeFileSync(modelPath, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(64, 7)]));
    const modelsFile = writeModelsFile(
      `default_model: bad\nmodels:\n  - name: bad\n    provider: llama-cpp\n    model_path: ${modelPath}\n`,
    );
    const result = await runServerUntilExit({
      MODELS_FILE: modelsFile,
      DATABASE_URL: 'pglite://memory',
      ADMIN_TOKEN: 'x'.repeat(40),
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(modelPath);
    expect(result.stderr).toMatch(/llm-server: failed to start: .*GGUF/);
  }, 60_000);
});
