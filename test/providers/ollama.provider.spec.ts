import {
  BackendResponseError,
  BackendUnreachableError,
} from '../../src/generation/providers/backend.errors';
import { normalizeOllamaTag, OllamaProvider } from '../../src/generation/providers/ollama.provider';
import type { StreamChunk } from '../../src/generation/providers/provider.types';
import { closedPortUrl, fakeCompletion, nextLoopTurn, waitFor } from '../fakes/fake-server';
import { FakeOllama } from '../fakes/fake-ollama';
import { generationParams, modelConfig } from '../fakes/model-config';

function signal(): AbortSignal {
  return new AbortController().signal;
}

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

function text(chunks: StreamChunk[]): string {
  return chunks.map((c) => (c.type === 'delta' ? c.text : '')).join('');
}

describe('normalizeOllamaTag', () => {
  it('implies :latest for tag-less names only', () => {
    expect(normalizeOllamaTag('llama3')).toBe('llama3:latest');
    expect(normalizeOllamaTag('llama3:8b')).toBe('llama3:8b');
    expect(normalizeOllamaTag('registry:5000/team/llama3')).toBe(
      'registry:5000/team/llama3:latest',
    );
  });
});

describe('OllamaProvider against a fake Ollama', () => {
  let fake: FakeOllama;
  let provider: OllamaProvider;
  const providers: OllamaProvider[] = [];

  function newProvider(baseUrl = fake.url, upstreamModel = 'llama3:8b'): OllamaProvider {
    const p = new OllamaProvider(modelConfig({ provider: 'ollama', upstreamModel }), baseUrl);
    providers.push(p);
    return p;
  }

  beforeAll(async () => {
    fake = await FakeOllama.start();
    provider = newProvider();
  });

  beforeEach(() => fake.reset());

  afterAll(async () => {
    await Promise.all(providers.map((p) => p.close()));
    await fake.close();
  });

  describe('request mapping', () => {
    it('maps every parameter into options, raw mode, and stream: false explicitly', async () => {
      await provider.generate(
        generationParams({
          prompt: 'Why is the sky blue?',
          maxNewTokens: 7,
          temperature: 0.3,
          topP: 0.8,
          topK: 20,
          stop: ['\n\n', 'User:'],
          seed: 1234,
        }),
        signal(),
      );
      const [req] = fake.requests;
      expect(`${req.method} ${req.path}`).toBe('POST /api/generate');
      expect(req.body).toEqual({
        model: 'llama3:8b',
        prompt: 'Why is the sky blue?',
        raw: true,
        stream: false,
        options: {
          num_predict: 7,
          temperature: 0.3,
          top_p: 0.8,
          top_k: 20,
          stop: ['\n\n', 'User:'],
          seed: 1234,
        },
      });
    });

    it('sends top_k 0 when disabled and omits empty stop and null seed', async () => {
      await provider.generate(generationParams({ maxNewTokens: 3, topK: 0 }), signal());
      expect((fake.requests[0].body as { options: unknown }).options).toEqual({
        num_predict: 3,
        temperature: 1,
        top_p: 1,
        top_k: 0,
      });
    });

    it('sends stream: true explicitly when streaming', async () => {
      await collectUntilError(provider.stream(generationParams(), signal()));
      expect(fake.requests[0].body).toMatchObject({ stream: true, raw: true });
    });
  });

  describe('non-streamed', () => {
    it('returns the response, finish reason and usage', async () => {
      const expected = fakeCompletion('a b c', 64);
      const result = await provider.generate(generationParams({ prompt: 'a b c' }), signal());
      expect(result).toEqual({
        output: expected.text,
        finishReason: 'stop',
        usage: { promptTokens: 3, completionTokens: expected.tokens.length },
      });
    });

    it('maps done_reason "length"', async () => {
      const result = await provider.generate(generationParams({ maxNewTokens: 2 }), signal());
      expect(result.finishReason).toBe('length');
      expect(result.usage.completionTokens).toBe(2);
    });

    it('counts a cached prompt (no prompt_eval_count) as 0 prompt tokens', async () => {
      fake.promptCached = true;
      const result = await provider.generate(generationParams(), signal());
      expect(result.usage.promptTokens).toBe(0);
      expect(result.usage.completionTokens).toBeGreaterThan(0);
    });
  });

  describe('streamed', () => {
    it('yields deltas that join to the output, then one done chunk', async () => {
      const expected = fakeCompletion('tell me a story', 64);
      const { chunks, error } = await collectUntilError(
        provider.stream(generationParams({ prompt: 'tell me a story' }), signal()),
      );
      expect(error).toBeNull();
      expect(chunks).toHaveLength(expected.tokens.length + 1);
      expect(text(chunks)).toBe(expected.text);
      expect(chunks[chunks.length - 1]).toEqual({
        type: 'done',
        finishReason: 'stop',
        usage: { promptTokens: 4, completionTokens: expected.tokens.length },
      });
    });

    it('maps done_reason "length" and honours stop strings end to end', async () => {
      const long = await collectUntilError(
        provider.stream(generationParams({ maxNewTokens: 1 }), signal()),
      );
      expect(long.chunks[long.chunks.length - 1]).toMatchObject({ finishReason: 'length' });

      const full = fakeCompletion('stop here', 64).text;
      const stop = full.split(' ')[2];
      const stopped = await collectUntilError(
        provider.stream(generationParams({ prompt: 'stop here', stop: [stop] }), signal()),
      );
      expect(text(stopped.chunks)).toBe(full.slice(0, full.indexOf(stop)));
      expect(stopped.chunks[stopped.chunks.length - 1]).toMatchObject({ finishReason: 'stop' });
    });

    it('fails when the stream ends without the done line', async () => {
      fake.setMode('truncated', { afterChunks: 2 });
      const { chunks, error } = await collectUntilError(
        provider.stream(generationParams(), signal()),
      );
      expect(chunks).toHaveLength(2);
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe('upstream stream ended early');
    });
  });

  describe('upstream errors', () => {
    it('turns HTTP 500 into a sanitized BackendResponseError', async () => {
      fake.setMode('fail');
      const error = (await provider
        .generate(generationParams(), signal())
        .catch((e: unknown) => e)) as BackendResponseError | undefined;
      expect(error).toBeInstanceOf(BackendResponseError);
      expect(error?.upstreamStatus).toBe(500);
      expect(error?.message).toMatch(
        /^upstream returned HTTP 500: llama runner process has terminated/,
      );
      expect(error?.message).not.toContain(fake.url);
      expect(error?.message).not.toContain('127.0.0.1');
      // eslint-disable-next-line no-control-regex
      expect(error?.message).not.toMatch(/[\u0000-\u001f]/);
    });

    it('reports a missing model (404) as BackendResponseError naming it', async () => {
      const missing = newProvider(fake.url, 'phi3:mini');
      await expect(missing.generate(generationParams(), signal())).rejects.toMatchObject({
        name: 'BackendResponseError',
        upstreamStatus: 404,
        message: 'upstream returned HTTP 404: model "phi3:mini" not found, try pulling it first',
      });
    });

    it('turns garbage into BackendResponseError', async () => {
      fake.setMode('garbage');
      await expect(provider.generate(generationParams(), signal())).rejects.toThrow(
        'upstream sent an unparseable response',
      );
      const { error } = await collectUntilError(provider.stream(generationParams(), signal()));
      expect((error as Error).message).toBe('upstream sent an unparseable response');
    });

    it('turns an {"error"} line inside a 200 stream into BackendResponseError after the chunks', async () => {
      fake.setMode('mid-stream-error', { afterChunks: 3 });
      const { chunks, error } = await collectUntilError(
        provider.stream(generationParams(), signal()),
      );
      expect(chunks).toHaveLength(3);
      expect(chunks.every((c) => c.type === 'delta')).toBe(true);
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe(
        'upstream reported an error: an error was encountered while running the model: CUDA error',
      );
    });

    it('reports a refused connection as BackendUnreachableError', async () => {
      const dead = newProvider(await closedPortUrl());
      await expect(dead.generate(generationParams(), signal())).rejects.toBeInstanceOf(
        BackendUnreachableError,
      );
      await expect(dead.checkReady(signal())).rejects.toBeInstanceOf(BackendUnreachableError);
    });
  });

  describe('aborts', () => {
    it('aborts a hanging generate at once with the signal reason', async () => {
      fake.setMode('hang');
      const ac = new AbortController();
      const promise = provider.generate(generationParams(), ac.signal);
      await waitFor(() => fake.requests.length === 1);
      const reason = new Error('deadline exceeded');
      const abortedAt = Date.now();
      ac.abort(reason);
      await expect(promise).rejects.toBe(reason);
      expect(Date.now() - abortedAt).toBeLessThan(1000);
      await waitFor(() => fake.aborted.length === 1, 1000);
    });

    it('aborts a slow stream mid-way', async () => {
      fake.setMode('slow', { delayMs: 100 });
      const ac = new AbortController();
      const chunks: StreamChunk[] = [];
      const reason = new Error('client gone');
      const consume = (async () => {
        for await (const chunk of provider.stream(generationParams(), ac.signal)) {
          chunks.push(chunk);
          ac.abort(reason);
        }
      })();
      await expect(consume).rejects.toBe(reason);
      expect(chunks).toHaveLength(1);
      await waitFor(() => fake.aborted.length === 1, 1000);
    });
  });

  it('reuses one keep-alive connection for sequential requests', async () => {
    const fresh = newProvider();
    for (let i = 0; i < 5; i += 1) {
      await fresh.generate(generationParams(), signal());
      await nextLoopTurn();
      await collectUntilError(fresh.stream(generationParams(), signal()));
      await nextLoopTurn();
    }
    expect(fake.requests).toHaveLength(10);
    expect(fake.connections).toBe(1);
  });

  describe('readiness', () => {
    it('is ready when /api/tags lists the model', async () => {
      await expect(provider.checkReady(signal())).resolves.toBeUndefined();
      expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /api/tags']);
    });

    it('matches a tag-less model name against :latest', async () => {
      fake.setModels(['llama3:latest']);
      await expect(newProvider(fake.url, 'llama3').checkReady(signal())).resolves.toBeUndefined();
      fake.setModels(['llama3']);
      await expect(
        newProvider(fake.url, 'llama3:latest').checkReady(signal()),
      ).resolves.toBeUndefined();
    });

    it('is not ready when the model is not listed, naming it', async () => {
      fake.setModels(['llama3:70b', 'mistral:latest']);
      await expect(provider.checkReady(signal())).rejects.toThrow('"llama3:8b"');
    });

    it('is not ready when /api/tags fails', async () => {
      fake.setHealth(500);
      await expect(provider.checkReady(signal())).rejects.toBeInstanceOf(BackendResponseError);
    });
  });
});
