import {
  BackendResponseError,
  BackendUnreachableError,
} from '../../src/generation/providers/backend.errors';
import type { StreamChunk } from '../../src/generation/providers/provider.types';
import { VllmProvider } from '../../src/generation/providers/vllm.provider';
import { closedPortUrl, fakeCompletion, nextLoopTurn, waitFor } from '../fakes/fake-server';
import { FakeVllm } from '../fakes/fake-vllm';
import { generationParams, modelConfig } from '../fakes/model-config';

const SECRET = 'sk-vllm-secret-0123456789';
const UPSTREAM_MODEL = 'meta-llama/Meta-Llama-3-8B-Instruct';

function signal(): AbortSignal {
  return new AbortController().signal;
}

async function collect(stream: AsyncIterable<StreamChunk>): Promise<StreamChunk[]> {
  const chunks: StreamChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** Collects chunks until the stream fails; returns both. */
async function collectUntilError(
  stream: AsyncIterable<StreamChunk>,
): Promise<{ chunks: StreamChunk[]; error: unknown }> {
  const chunks: StreamChunk[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk);
  } catch (error) {
    return { chunks, error };
  }
  return { chunks, error: null };
}

describe('VllmProvider against a fake vLLM', () => {
  let fake: FakeVllm;
  let provider: VllmProvider;
  let keyed: VllmProvider;
  const extra: VllmProvider[] = [];

  function newProvider(baseUrl = fake.url, apiKey: string | null = null): VllmProvider {
    const p = new VllmProvider(
      modelConfig({ provider: 'vllm', upstreamModel: UPSTREAM_MODEL, apiKey }),
      baseUrl,
    );
    extra.push(p);
    return p;
  }

  beforeAll(async () => {
    fake = await FakeVllm.start();
    provider = newProvider();
    keyed = newProvider(fake.url, SECRET);
  });

  beforeEach(() => fake.reset());

  afterAll(async () => {
    await Promise.all(extra.map((p) => p.close()));
    await fake.close();
  });

  describe('request mapping', () => {
    it('maps every parameter to the completions request', async () => {
      await provider.generate(
        generationParams({
          prompt: 'Hello',
          maxNewTokens: 5,
          temperature: 0.7,
          topP: 0.9,
          topK: 40,
          stop: ['\n', 'END'],
          seed: 7,
        }),
        signal(),
      );
      expect(fake.requests).toHaveLength(1);
      const [req] = fake.requests;
      expect(req.method).toBe('POST');
      expect(req.path).toBe('/v1/completions');
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.body).toEqual({
        model: UPSTREAM_MODEL,
        prompt: 'Hello',
        max_tokens: 5,
        temperature: 0.7,
        top_p: 0.9,
        top_k: 40,
        stop: ['\n', 'END'],
        seed: 7,
        stream: false,
      });
    });

    it('omits empty stop and null seed, and sends disabled top_k as -1', async () => {
      await provider.generate(generationParams({ prompt: 'Hi', topK: 0 }), signal());
      const body = fake.requests[0].body as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(
        ['max_tokens', 'model', 'prompt', 'stream', 'temperature', 'top_k', 'top_p'].sort(),
      );
      expect(body.top_k).toBe(-1);
    });

    it('asks for usage when streaming', async () => {
      await collect(provider.stream(generationParams(), signal()));
      expect(fake.requests[0].body).toMatchObject({
        stream: true,
        stream_options: { include_usage: true },
      });
    });

    it('sends the upstream api key as a bearer token only when configured', async () => {
      await keyed.generate(generationParams(), signal());
      await provider.generate(generationParams(), signal());
      expect(fake.requests[0].headers.authorization).toBe(`Bearer ${SECRET}`);
      expect(fake.requests[1].headers.authorization).toBeUndefined();
    });

    it('labels the upstream by host:port', () => {
      expect(provider.upstreamLabel).toBe(fake.url.replace('http://', ''));
      expect(provider.kind).toBe('vllm');
    });
  });

  describe('non-streamed', () => {
    it('returns the text, finish reason and usage', async () => {
      const params = generationParams({ prompt: 'The quick brown fox', maxNewTokens: 64 });
      const expected = fakeCompletion(params.prompt, 64);
      const result = await provider.generate(params, signal());
      expect(result).toEqual({
        output: expected.text,
        finishReason: 'stop',
        usage: { promptTokens: 4, completionTokens: expected.tokens.length },
      });
      expect(result.output.length).toBeGreaterThan(0);
    });

    it('maps finish_reason "length" when max tokens cut the output', async () => {
      const result = await provider.generate(generationParams({ maxNewTokens: 2 }), signal());
      expect(result.finishReason).toBe('length');
      expect(result.usage.completionTokens).toBe(2);
    });

    it('maps a stop string end to end', async () => {
      const prompt = 'stop test';
      const full = fakeCompletion(prompt, 64).text;
      const stop = full.split(' ')[3];
      const result = await provider.generate(generationParams({ prompt, stop: [stop] }), signal());
      expect(result.finishReason).toBe('stop');
      expect(result.output).toBe(full.slice(0, full.indexOf(stop)));
    });
  });

  describe('streamed', () => {
    it('yields deltas that join to the output, then one done chunk with usage', async () => {
      const params = generationParams({ prompt: 'Streaming is fun', maxNewTokens: 64 });
      const expected = fakeCompletion(params.prompt, 64);
      const chunks = await collect(provider.stream(params, signal()));
      const deltas = chunks.slice(0, -1);
      expect(deltas.every((c) => c.type === 'delta')).toBe(true);
      expect(deltas).toHaveLength(expected.tokens.length);
      expect(deltas.map((c) => (c.type === 'delta' ? c.text : '')).join('')).toBe(expected.text);
      expect(chunks[chunks.length - 1]).toEqual({
        type: 'done',
        finishReason: 'stop',
        usage: { promptTokens: 3, completionTokens: expected.tokens.length },
      });
    });

    it('maps finish_reason "length"', async () => {
      const chunks = await collect(
        provider.stream(generationParams({ maxNewTokens: 3 }), signal()),
      );
      expect(chunks).toHaveLength(4);
      expect(chunks[3]).toMatchObject({ type: 'done', finishReason: 'length' });
    });

    it('fails when the stream ends without usage and [DONE]', async () => {
      fake.setMode('truncated', { afterChunks: 2 });
      const { chunks, error } = await collectUntilError(
        provider.stream(generationParams(), signal()),
      );
      expect(chunks).toHaveLength(2);
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe('upstream stream ended early');
    });

    it('fails when the server sends [DONE] without the usage chunk', async () => {
      fake.streamUsage = false;
      const { error } = await collectUntilError(provider.stream(generationParams(), signal()));
      expect(error).toBeInstanceOf(BackendResponseError);
    });
  });

  describe('upstream errors', () => {
    it('turns HTTP 500 into a sanitized BackendResponseError', async () => {
      fake.setMode('fail');
      const error = (await keyed
        .generate(generationParams(), signal())
        .catch((e: unknown) => e)) as BackendResponseError | undefined;
      expect(error).toBeInstanceOf(BackendResponseError);
      expect(error?.upstreamStatus).toBe(500);
      expect(error?.message).toMatch(
        /^upstream returned HTTP 500: EngineCore encountered an issue/,
      );
      expect(fake.failMessage(fake.requests[0])).toContain(SECRET); // the fake did leak it
      expect(error?.message).not.toContain(fake.url);
      expect(error?.message).not.toContain('127.0.0.1');
      expect(error?.message).not.toContain(SECRET);
      // eslint-disable-next-line no-control-regex
      expect(error?.message).not.toMatch(/[\u0000-\u001f]/);
    });

    it('turns HTTP 500 on a stream into BackendResponseError before any chunk', async () => {
      fake.setMode('fail', { status: 503 });
      const { chunks, error } = await collectUntilError(keyed.stream(generationParams(), signal()));
      expect(chunks).toHaveLength(0);
      expect((error as BackendResponseError).upstreamStatus).toBe(503);
      expect((error as Error).message).not.toContain(SECRET);
    });

    it('turns garbage into BackendResponseError', async () => {
      fake.setMode('garbage');
      await expect(provider.generate(generationParams(), signal())).rejects.toThrow(
        'upstream sent an unparseable response',
      );
      const { error } = await collectUntilError(provider.stream(generationParams(), signal()));
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe('upstream sent an unparseable response');
    });

    it('turns an error event after some chunks into BackendResponseError', async () => {
      fake.setMode('mid-stream-error', { afterChunks: 2 });
      const { chunks, error } = await collectUntilError(
        provider.stream(generationParams(), signal()),
      );
      expect(chunks).toHaveLength(2);
      expect(chunks.every((c) => c.type === 'delta')).toBe(true);
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe('upstream reported an error: Engine loop has died');
    });

    it('reports a refused connection as BackendUnreachableError', async () => {
      const dead = newProvider(await closedPortUrl());
      await expect(dead.generate(generationParams(), signal())).rejects.toBeInstanceOf(
        BackendUnreachableError,
      );
      const { error } = await collectUntilError(dead.stream(generationParams(), signal()));
      expect(error).toBeInstanceOf(BackendUnreachableError);
      await expect(dead.checkReady(signal())).rejects.toBeInstanceOf(BackendUnreachableError);
    });
  });

  describe('aborts', () => {
    it('aborts a hanging generate at once with the signal reason', async () => {
      fake.setMode('hang');
      const ac = new AbortController();
      const promise = provider.generate(generationParams(), ac.signal);
      await waitFor(() => fake.requests.length === 1);
      const reason = new Error('client disconnected');
      const abortedAt = Date.now();
      ac.abort(reason);
      await expect(promise).rejects.toBe(reason);
      expect(Date.now() - abortedAt).toBeLessThan(1000);
      await waitFor(() => fake.aborted.length === 1, 1000);
      expect(fake.aborted[0].path).toBe('/v1/completions');
    });

    it('aborts a stream mid-way with the signal reason', async () => {
      fake.setMode('slow', { delayMs: 100 });
      const ac = new AbortController();
      const chunks: StreamChunk[] = [];
      const consume = (async () => {
        for await (const chunk of provider.stream(generationParams(), ac.signal)) {
          chunks.push(chunk);
          if (chunks.length === 1) ac.abort('timeout');
        }
      })();
      await expect(consume).rejects.toBe('timeout');
      expect(chunks).toHaveLength(1);
      await waitFor(() => fake.aborted.length === 1, 1000);
    });
  });

  it('reuses one keep-alive connection for sequential requests', async () => {
    const fresh = newProvider();
    // See nextLoopTurn(): a request sent in the very turn a response completed would open a
    // second connection.
    for (let i = 0; i < 5; i += 1) {
      await fresh.generate(generationParams(), signal());
      await nextLoopTurn();
    }
    for (let i = 0; i < 5; i += 1) {
      await collect(fresh.stream(generationParams(), signal()));
      await nextLoopTurn();
    }
    expect(fake.requests).toHaveLength(10);
    expect(fake.connections).toBe(1);
  });

  describe('readiness', () => {
    it('is ready when GET /health answers 200', async () => {
      await expect(provider.checkReady(signal())).resolves.toBeUndefined();
      expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /health']);
    });

    it('is not ready when /health answers 503', async () => {
      fake.setHealth(503);
      await expect(provider.checkReady(signal())).rejects.toBeInstanceOf(BackendResponseError);
    });

    it('gives up with the signal reason when /health hangs', async () => {
      fake.setHealth('hang');
      const ac = new AbortController();
      const promise = provider.checkReady(ac.signal);
      await waitFor(() => fake.requests.length === 1);
      ac.abort('readiness timeout');
      await expect(promise).rejects.toBe('readiness timeout');
    });
  });
});
