import {
  BackendResponseError,
  BackendUnreachableError,
} from '../../src/generation/providers/backend.errors';
import { OpenAiProvider } from '../../src/generation/providers/openai.provider';
import type { StreamChunk } from '../../src/generation/providers/provider.types';
import { closedPortUrl, fakeCompletion, nextLoopTurn, waitFor } from '../fakes/fake-server';
import { FakeVllm } from '../fakes/fake-vllm';
import { generationParams, modelConfig } from '../fakes/model-config';

// vLLM is OpenAI-compatible, so its fake doubles as a generic OpenAI-compatible server.
const SECRET = 'sk-openai-secret-abcdef123456';

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

describe('OpenAiProvider against a fake OpenAI-compatible server', () => {
  let fake: FakeVllm;
  let provider: OpenAiProvider;
  const providers: OpenAiProvider[] = [];

  function newProvider(baseUrl = fake.url, apiKey: string | null = SECRET): OpenAiProvider {
    const p = new OpenAiProvider(
      modelConfig({ provider: 'openai', upstreamModel: 'gpt-3.5-turbo-instruct', apiKey }),
      baseUrl,
    );
    providers.push(p);
    return p;
  }

  beforeAll(async () => {
    fake = await FakeVllm.start();
    provider = newProvider();
  });

  beforeEach(() => fake.reset());

  afterAll(async () => {
    await Promise.all(providers.map((p) => p.close()));
    await fake.close();
  });

  it('maps every parameter, sending top_k only when enabled', async () => {
    const params = generationParams({
      prompt: 'Say hi',
      maxNewTokens: 9,
      temperature: 0.2,
      topP: 0.5,
      topK: 5,
      stop: ['.'],
      seed: 42,
    });
    await provider.generate(params, signal());
    await provider.generate({ ...params, topK: 0, stop: [], seed: null }, signal());
    expect(fake.requests[0].path).toBe('/v1/completions');
    expect(fake.requests[0].body).toEqual({
      model: 'gpt-3.5-turbo-instruct',
      prompt: 'Say hi',
      max_tokens: 9,
      temperature: 0.2,
      top_p: 0.5,
      top_k: 5,
      stop: ['.'],
      seed: 42,
      stream: false,
    });
    expect(fake.requests[1].body).toEqual({
      model: 'gpt-3.5-turbo-instruct',
      prompt: 'Say hi',
      max_tokens: 9,
      temperature: 0.2,
      top_p: 0.5,
      stream: false,
    });
    expect(provider.kind).toBe('openai');
  });

  it('sends the api key as a bearer token (and works with a key-checking server)', async () => {
    fake.requiredApiKey = SECRET;
    await provider.generate(generationParams(), signal());
    expect(fake.requests[0].headers.authorization).toBe(`Bearer ${SECRET}`);
    const anonymous = newProvider(fake.url, null);
    await expect(anonymous.generate(generationParams(), signal())).rejects.toMatchObject({
      name: 'BackendResponseError',
      upstreamStatus: 401,
    });
  });

  it('returns the non-streamed completion', async () => {
    const expected = fakeCompletion('one two', 3);
    const result = await provider.generate(
      generationParams({ prompt: 'one two', maxNewTokens: 3 }),
      signal(),
    );
    expect(result).toEqual({
      output: expected.text,
      finishReason: expected.finish,
      usage: { promptTokens: 2, completionTokens: expected.tokens.length },
    });
  });

  it('streams deltas and one done chunk with usage, asking for include_usage', async () => {
    const expected = fakeCompletion('stream me', 64);
    const { chunks, error } = await collectUntilError(
      provider.stream(generationParams({ prompt: 'stream me' }), signal()),
    );
    expect(error).toBeNull();
    expect(fake.requests[0].body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(text(chunks)).toBe(expected.text);
    expect(chunks.filter((c) => c.type === 'done')).toEqual([
      {
        type: 'done',
        finishReason: 'stop',
        usage: { promptTokens: 2, completionTokens: expected.tokens.length },
      },
    ]);
    expect(chunks[chunks.length - 1].type).toBe('done');
  });

  it('tolerates a server that ignores include_usage: counts one token per text chunk', async () => {
    fake.streamUsage = false;
    const expected = fakeCompletion('no usage', 64);
    const { chunks, error } = await collectUntilError(
      provider.stream(generationParams({ prompt: 'no usage' }), signal()),
    );
    expect(error).toBeNull();
    expect(chunks[chunks.length - 1]).toEqual({
      type: 'done',
      finishReason: 'stop',
      usage: { promptTokens: 0, completionTokens: expected.tokens.length },
    });
  });

  it('fails a stream that ends without a finish reason or [DONE]', async () => {
    fake.setMode('truncated', { afterChunks: 1 });
    const { chunks, error } = await collectUntilError(
      provider.stream(generationParams(), signal()),
    );
    expect(chunks).toHaveLength(1);
    expect((error as Error).message).toBe('upstream stream ended early');
  });

  it('sanitizes HTTP errors', async () => {
    fake.setMode('fail', { status: 500 });
    const error = (await provider
      .generate(generationParams(), signal())
      .catch((e: unknown) => e)) as BackendResponseError | undefined;
    expect(error).toBeInstanceOf(BackendResponseError);
    expect(error?.message).toMatch(/^upstream returned HTTP 500: /);
    expect(error?.message).not.toContain(fake.url);
    expect(error?.message).not.toContain(SECRET);
  });

  it('turns garbage and mid-stream error events into BackendResponseError', async () => {
    fake.setMode('garbage');
    await expect(provider.generate(generationParams(), signal())).rejects.toBeInstanceOf(
      BackendResponseError,
    );
    fake.setMode('mid-stream-error', { afterChunks: 3 });
    const { chunks, error } = await collectUntilError(
      provider.stream(generationParams(), signal()),
    );
    expect(chunks).toHaveLength(3);
    expect(error).toBeInstanceOf(BackendResponseError);
  });

  it('reports a refused connection as BackendUnreachableError', async () => {
    const dead = newProvider(await closedPortUrl());
    await expect(dead.generate(generationParams(), signal())).rejects.toBeInstanceOf(
      BackendUnreachableError,
    );
  });

  it('aborts a hanging request with the signal reason and the server sees it', async () => {
    fake.setMode('hang');
    const ac = new AbortController();
    const { error } = await (async () => {
      const pending = collectUntilError(provider.stream(generationParams(), ac.signal));
      await waitFor(() => fake.requests.length === 1);
      ac.abort('client closed');
      return pending;
    })();
    expect(error).toBe('client closed');
    await waitFor(() => fake.aborted.length === 1, 1000);
  });

  it('reuses one keep-alive connection', async () => {
    const fresh = newProvider();
    for (let i = 0; i < 10; i += 1) {
      await fresh.generate(generationParams(), signal());
      await nextLoopTurn();
    }
    expect(fake.connections).toBe(1);
  });

  it('checks readiness with GET /v1/models', async () => {
    await provider.checkReady(signal());
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/models']);
    fake.setHealth(503);
    await expect(provider.checkReady(signal())).rejects.toBeInstanceOf(BackendResponseError);
  });
});
