import { BackendResponseError, BackendUnreachableError } from '../../src/generation/providers/backend.errors';
import type { ChatMessage, StreamChunk } from '../../src/generation/providers/provider.types';
import { VllmProvider } from '../../src/generation/providers/vllm.provider';
import { closedPortUrl, fakeChatCompletion, nextLoopTurn, waitFor } from '../fakes/fake-server';
import { FakeVllm } from '../fakes/fake-vllm';
import { generationParams, modelConfig } from '../fakes/model-config';

const SECRET = 'sk-vllm-secret-0123456789';
const UPSTREAM_MODEL = 'meta-llama/Meta-Llama-3-8B-Instruct';

const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Name a colour' },
  { role: 'assistant', content: 'Blue.' },
  { role: 'user', content: 'Another one, please' },
];

function signal(): AbortSignal {
  return new AbortController().signal;
}

function chat(messages: ChatMessage[] = MESSAGES, overrides = {}) {
  // The prompt must be ignored for a chat request: a value that would show up if it were sent.
  return generationParams({ prompt: 'IGNORED PROMPT', messages, ...overrides });
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

describe('VllmProvider chat against a fake vLLM', () => {
  let fake: FakeVllm;
  let provider: VllmProvider;
  const providers: VllmProvider[] = [];

  function newProvider(baseUrl = fake.url, apiKey: string | null = null): VllmProvider {
    const p = new VllmProvider(modelConfig({ provider: 'vllm', upstreamModel: UPSTREAM_MODEL, apiKey }), baseUrl);
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

  describe('request mapping', () => {
    it('sends messages and every parameter to /v1/chat/completions, never the prompt', async () => {
      await provider.generate(
        chat(MESSAGES, {
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
      expect(`${req.method} ${req.path}`).toBe('POST /v1/chat/completions');
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.body).toEqual({
        model: UPSTREAM_MODEL,
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'Name a colour' },
          { role: 'assistant', content: 'Blue.' },
          { role: 'user', content: 'Another one, please' },
        ],
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
      await provider.generate(chat([{ role: 'user', content: 'Hi' }], { topK: 0 }), signal());
      const body = fake.requests[0].body as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(
        ['max_tokens', 'messages', 'model', 'stream', 'temperature', 'top_k', 'top_p'].sort(),
      );
      expect(body.top_k).toBe(-1);
    });

    it('sends only role and content of each message', async () => {
      const extra = { role: 'user', content: 'Hi', name: 'x', cached: true } as ChatMessage;
      await provider.generate(chat([extra]), signal());
      expect((fake.requests[0].body as { messages: unknown }).messages).toEqual([{ role: 'user', content: 'Hi' }]);
    });

    it('asks for usage when streaming', async () => {
      await collectUntilError(provider.stream(chat(), signal()));
      expect(fake.requests[0].path).toBe('/v1/chat/completions');
      expect(fake.requests[0].body).toMatchObject({
        stream: true,
        stream_options: { include_usage: true },
      });
    });

    it('an empty messages array is a plain completion of the prompt', async () => {
      await provider.generate(generationParams({ prompt: 'Hello', messages: [] }), signal());
      expect(fake.requests[0].path).toBe('/v1/completions');
      expect(fake.requests[0].body).toMatchObject({ prompt: 'Hello' });
      expect(fake.requests[0].body).not.toHaveProperty('messages');
    });

    it('sends the upstream api key as a bearer token', async () => {
      await newProvider(fake.url, SECRET).generate(chat(), signal());
      expect(fake.requests[0].headers.authorization).toBe(`Bearer ${SECRET}`);
    });
  });

  describe('non-streamed', () => {
    it('returns message.content, the finish reason and usage', async () => {
      const expected = fakeChatCompletion(MESSAGES, 64);
      const result = await provider.generate(chat(MESSAGES, { maxNewTokens: 64 }), signal());
      expect(result).toEqual({
        output: expected.text,
        finishReason: 'stop',
        usage: { promptTokens: 10, completionTokens: expected.tokens.length },
      });
      expect(result.output.length).toBeGreaterThan(0);
    });

    it('maps finish_reason "length"', async () => {
      const result = await provider.generate(chat(MESSAGES, { maxNewTokens: 2 }), signal());
      expect(result.finishReason).toBe('length');
      expect(result.usage.completionTokens).toBe(2);
    });

    it('maps a stop string end to end', async () => {
      const full = fakeChatCompletion(MESSAGES, 64).text;
      const stop = full.split(' ')[3];
      const result = await provider.generate(chat(MESSAGES, { stop: [stop] }), signal());
      expect(result.finishReason).toBe('stop');
      expect(result.output).toBe(full.slice(0, full.indexOf(stop)));
    });
  });

  describe('streamed', () => {
    it('skips the role-only first chunk; deltas join to the output, then one done chunk', async () => {
      const expected = fakeChatCompletion(MESSAGES, 64);
      const { chunks, error } = await collectUntilError(provider.stream(chat(), signal()));
      expect(error).toBeNull();
      expect(chunks).toHaveLength(expected.tokens.length + 1);
      expect(chunks.slice(0, -1).every((c) => c.type === 'delta' && c.text !== '')).toBe(true);
      expect(text(chunks)).toBe(expected.text);
      expect(chunks[chunks.length - 1]).toEqual({
        type: 'done',
        finishReason: 'stop',
        usage: { promptTokens: 10, completionTokens: expected.tokens.length },
      });
    });

    it('maps finish_reason "length"', async () => {
      const { chunks } = await collectUntilError(provider.stream(chat(MESSAGES, { maxNewTokens: 3 }), signal()));
      expect(chunks).toHaveLength(4);
      expect(chunks[3]).toMatchObject({ type: 'done', finishReason: 'length' });
    });

    it('fails when the stream ends without usage and [DONE]', async () => {
      fake.setMode('truncated', { afterChunks: 2 });
      const { chunks, error } = await collectUntilError(provider.stream(chat(), signal()));
      expect(chunks).toHaveLength(2);
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe('upstream stream ended early');
    });

    it('fails when the server sends [DONE] without the usage chunk', async () => {
      fake.streamUsage = false;
      const { error } = await collectUntilError(provider.stream(chat(), signal()));
      expect(error).toBeInstanceOf(BackendResponseError);
    });
  });

  describe('upstream errors', () => {
    it('turns HTTP 500 into a sanitized BackendResponseError', async () => {
      fake.setMode('fail');
      const keyed = newProvider(fake.url, SECRET);
      const error = (await keyed.generate(chat(), signal()).catch((e: unknown) => e)) as
        BackendResponseError | undefined;
      expect(error).toBeInstanceOf(BackendResponseError);
      expect(error?.upstreamStatus).toBe(500);
      expect(error?.message).toMatch(/^upstream returned HTTP 500: EngineCore encountered an issue/);
      expect(fake.failMessage(fake.requests[0])).toContain(SECRET);
      expect(error?.message).not.toContain(SECRET);
      expect(error?.message).not.toContain('127.0.0.1');
    });

    it('turns a 400 from the server into BackendResponseError with its status', async () => {
      const bad = [{ role: 'user', content: 42 }] as unknown as ChatMessage[];
      await expect(provider.generate(chat(bad), signal())).rejects.toMatchObject({
        name: 'BackendResponseError',
        upstreamStatus: 400,
      });
    });

    it('turns garbage into BackendResponseError', async () => {
      fake.setMode('garbage');
      await expect(provider.generate(chat(), signal())).rejects.toThrow('upstream sent an unparseable response');
      const { error } = await collectUntilError(provider.stream(chat(), signal()));
      expect((error as Error).message).toBe('upstream sent an unparseable response');
    });

    it('turns an error event after some chunks into BackendResponseError', async () => {
      fake.setMode('mid-stream-error', { afterChunks: 2 });
      const { chunks, error } = await collectUntilError(provider.stream(chat(), signal()));
      expect(chunks).toHaveLength(2);
      expect(chunks.every((c) => c.type === 'delta')).toBe(true);
      expect((error as Error).message).toBe('upstream reported an error: Engine loop has died');
    });

    it('reports a refused connection as BackendUnreachableError', async () => {
      const dead = newProvider(await closedPortUrl());
      await expect(dead.generate(chat(), signal())).rejects.toBeInstanceOf(BackendUnreachableError);
      const { error } = await collectUntilError(dead.stream(chat(), signal()));
      expect(error).toBeInstanceOf(BackendUnreachableError);
    });
  });

  describe('aborts', () => {
    it('aborts a hanging chat request at once with the signal reason', async () => {
      fake.setMode('hang');
      const ac = new AbortController();
      const promise = provider.generate(chat(), ac.signal);
      await waitFor(() => fake.requests.length === 1);
      const reason = new Error('client disconnected');
      ac.abort(reason);
      await expect(promise).rejects.toBe(reason);
      await waitFor(() => fake.aborted.length === 1, 1000);
      expect(fake.aborted[0].path).toBe('/v1/chat/completions');
    });

    it('aborts a chat stream mid-way with the signal reason', async () => {
      fake.setMode('slow', { delayMs: 100 });
      const ac = new AbortController();
      const chunks: StreamChunk[] = [];
      const consume = (async () => {
        for await (const chunk of provider.stream(chat(), ac.signal)) {
          chunks.push(chunk);
          ac.abort('timeout');
        }
      })();
      await expect(consume).rejects.toBe('timeout');
      expect(chunks).toHaveLength(1);
      await waitFor(() => fake.aborted.length === 1, 1000);
    });
  });

  it('chat and completion requests share one keep-alive connection', async () => {
    const fresh = newProvider();
    for (let i = 0; i < 3; i += 1) {
      await fresh.generate(chat(), signal());
      await nextLoopTurn();
      await collectUntilError(fresh.stream(chat(), signal()));
      await nextLoopTurn();
      await fresh.generate(generationParams(), signal());
      await nextLoopTurn();
    }
    expect(fake.requests).toHaveLength(9);
    expect(fake.connections).toBe(1);
  });
});
