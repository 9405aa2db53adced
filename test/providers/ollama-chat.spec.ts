import { BackendResponseError, BackendUnreachableError } from '../../src/generation/providers/backend.errors';
import { OllamaProvider } from '../../src/generation/providers/ollama.provider';
import type { ChatMessage, StreamChunk } from '../../src/generation/providers/provider.types';
import { closedPortUrl, fakeChatCompletion, nextLoopTurn, waitFor } from '../fakes/fake-server';
import { FakeOllama } from '../fakes/fake-ollama';
import { generationParams, modelConfig } from '../fakes/model-config';

const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'Talk like a pirate.' },
  { role: 'user', content: 'Why is the sky blue?' },
];

function signal(): AbortSignal {
  return new AbortController().signal;
}

function chat(overrides = {}, messages: ChatMessage[] = MESSAGES) {
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

describe('OllamaProvider chat against a fake Ollama', () => {
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
    it('sends messages and options to /api/chat, without raw and without the prompt', async () => {
      await provider.generate(
        chat({ maxNewTokens: 7, temperature: 0.3, topP: 0.8, topK: 20, stop: ['\n\n'], seed: 1234 }),
        signal(),
      );
      const [req] = fake.requests;
      expect(`${req.method} ${req.path}`).toBe('POST /api/chat');
      expect(req.body).toEqual({
        model: 'llama3:8b',
        messages: [
          { role: 'system', content: 'Talk like a pirate.' },
          { role: 'user', content: 'Why is the sky blue?' },
        ],
        stream: false,
        options: {
          num_predict: 7,
          temperature: 0.3,
          top_p: 0.8,
          top_k: 20,
          stop: ['\n\n'],
          seed: 1234,
        },
      });
    });

    it('sends top_k 0 when disabled, omits empty stop and null seed, stream: true explicitly', async () => {
      await collectUntilError(provider.stream(chat({ maxNewTokens: 3, topK: 0 }), signal()));
      expect(fake.requests[0].body).toEqual({
        model: 'llama3:8b',
        messages: MESSAGES,
        stream: true,
        options: { num_predict: 3, temperature: 1, top_p: 1, top_k: 0 },
      });
    });

    it('an empty messages array is a raw /api/generate of the prompt', async () => {
      await provider.generate(generationParams({ prompt: 'Hello', messages: [] }), signal());
      expect(fake.requests[0].path).toBe('/api/generate');
      expect(fake.requests[0].body).toMatchObject({ prompt: 'Hello', raw: true });
    });
  });

  describe('non-streamed', () => {
    it('returns message.content, done_reason and the counts', async () => {
      const expected = fakeChatCompletion(MESSAGES, 64);
      const result = await provider.generate(chat(), signal());
      expect(result).toEqual({
        output: expected.text,
        finishReason: 'stop',
        usage: { promptTokens: 9, completionTokens: expected.tokens.length },
      });
      expect(result.output.length).toBeGreaterThan(0);
    });

    it('maps done_reason "length"; a cached prompt counts as 0 prompt tokens', async () => {
      fake.promptCached = true;
      const result = await provider.generate(chat({ maxNewTokens: 2 }), signal());
      expect(result.finishReason).toBe('length');
      expect(result.usage).toEqual({ promptTokens: 0, completionTokens: 2 });
    });
  });

  describe('streamed', () => {
    it('yields message.content deltas that join to the output, then one done chunk', async () => {
      const expected = fakeChatCompletion(MESSAGES, 64);
      const { chunks, error } = await collectUntilError(provider.stream(chat(), signal()));
      expect(error).toBeNull();
      expect(chunks).toHaveLength(expected.tokens.length + 1);
      expect(text(chunks)).toBe(expected.text);
      expect(chunks[chunks.length - 1]).toEqual({
        type: 'done',
        finishReason: 'stop',
        usage: { promptTokens: 9, completionTokens: expected.tokens.length },
      });
    });

    it('maps done_reason "length" and honours stop strings', async () => {
      const long = await collectUntilError(provider.stream(chat({ maxNewTokens: 1 }), signal()));
      expect(long.chunks).toHaveLength(2);
      expect(long.chunks[1]).toMatchObject({ finishReason: 'length' });

      const full = fakeChatCompletion(MESSAGES, 64).text;
      const stop = full.split(' ')[2];
      const stopped = await collectUntilError(provider.stream(chat({ stop: [stop] }), signal()));
      expect(text(stopped.chunks)).toBe(full.slice(0, full.indexOf(stop)));
      expect(stopped.chunks[stopped.chunks.length - 1]).toMatchObject({ finishReason: 'stop' });
    });

    it('fails when the stream ends without the done line', async () => {
      fake.setMode('truncated', { afterChunks: 2 });
      const { chunks, error } = await collectUntilError(provider.stream(chat(), signal()));
      expect(chunks).toHaveLength(2);
      expect((error as Error).message).toBe('upstream stream ended early');
    });
  });

  describe('upstream errors', () => {
    it('turns HTTP 500 into a sanitized BackendResponseError', async () => {
      fake.setMode('fail');
      const error = (await provider.generate(chat(), signal()).catch((e: unknown) => e)) as
        BackendResponseError | undefined;
      expect(error).toBeInstanceOf(BackendResponseError);
      expect(error?.upstreamStatus).toBe(500);
      expect(error?.message).toMatch(/^upstream returned HTTP 500: llama runner process/);
      expect(error?.message).not.toContain('127.0.0.1');
    });

    it('reports a missing model (404) naming it', async () => {
      const missing = newProvider(fake.url, 'phi3:mini');
      await expect(missing.generate(chat(), signal())).rejects.toMatchObject({
        name: 'BackendResponseError',
        upstreamStatus: 404,
        message: 'upstream returned HTTP 404: model "phi3:mini" not found, try pulling it first',
      });
    });

    it('turns garbage into BackendResponseError', async () => {
      fake.setMode('garbage');
      await expect(provider.generate(chat(), signal())).rejects.toThrow('upstream sent an unparseable response');
      const { error } = await collectUntilError(provider.stream(chat(), signal()));
      expect((error as Error).message).toBe('upstream sent an unparseable response');
    });

    it('turns an {"error"} line inside a 200 stream into BackendResponseError after the chunks', async () => {
      fake.setMode('mid-stream-error', { afterChunks: 3 });
      const { chunks, error } = await collectUntilError(provider.stream(chat(), signal()));
      expect(chunks).toHaveLength(3);
      expect(chunks.every((c) => c.type === 'delta')).toBe(true);
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe(
        'upstream reported an error: an error was encountered while running the model: CUDA error',
      );
    });

    it('reports a refused connection as BackendUnreachableError', async () => {
      const dead = newProvider(await closedPortUrl());
      await expect(dead.generate(chat(), signal())).rejects.toBeInstanceOf(BackendUnreachableError);
    });
  });

  describe('aborts', () => {
    it('aborts a hanging chat at once with the signal reason', async () => {
      fake.setMode('hang');
      const ac = new AbortController();
      const promise = provider.generate(chat(), ac.signal);
      await waitFor(() => fake.requests.length === 1);
      const reason = new Error('deadline exceeded');
      ac.abort(reason);
      await expect(promise).rejects.toBe(reason);
      await waitFor(() => fake.aborted.length === 1, 1000);
      expect(fake.aborted[0].path).toBe('/api/chat');
    });

    it('aborts a slow chat stream mid-way', async () => {
      fake.setMode('slow', { delayMs: 100 });
      const ac = new AbortController();
      const chunks: StreamChunk[] = [];
      const reason = new Error('client gone');
      const consume = (async () => {
        for await (const chunk of provider.stream(chat(), ac.signal)) {
          chunks.push(chunk);
          ac.abort(reason);
        }
      })();
      await expect(consume).rejects.toBe(reason);
      expect(chunks).toHaveLength(1);
      await waitFor(() => fake.aborted.length === 1, 1000);
    });
  });

  it('reuses one keep-alive connection across chat and generate requests', async () => {
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
