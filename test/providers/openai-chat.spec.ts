import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BackendResponseError } from '../../src/generation/providers/backend.errors';
import { OpenAiProvider } from '../../src/generation/providers/openai.provider';
import type { ChatMessage, StreamChunk } from '../../src/generation/providers/provider.types';
import { fakeChatCompletion, waitFor } from '../fakes/fake-server';
import { FakeVllm } from '../fakes/fake-vllm';
import { generationParams, modelConfig } from '../fakes/model-config';

// vLLM is OpenAI-compatible, so its fake doubles as a generic OpenAI-compatible server; its
// `chatStyle = 'openai'` streams like OpenAI (finish reason on an extra empty-delta chunk).
const SECRET = 'sk-openai-secret-abcdef123456';
const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'Answer in one word.' },
  { role: 'user', content: 'Capital of France?' },
];

function signal(): AbortSignal {
  return new AbortController().signal;
}

function chat(overrides = {}) {
  return generationParams({ prompt: '', messages: MESSAGES, ...overrides });
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

describe('OpenAiProvider chat against a fake OpenAI-compatible server', () => {
  let fake: FakeVllm;
  let provider: OpenAiProvider;
  const providers: OpenAiProvider[] = [];

  function newProvider(baseUrl = fake.url): OpenAiProvider {
    const p = new OpenAiProvider(
      modelConfig({ provider: 'openai', upstreamModel: 'gpt-4o-mini', apiKey: SECRET }),
      baseUrl,
    );
    providers.push(p);
    return p;
  }

  beforeAll(async () => {
    fake = await FakeVllm.start();
    provider = newProvider();
  });

  beforeEach(() => {
    fake.reset();
    fake.chatStyle = 'openai';
  });

  afterAll(async () => {
    await Promise.all(providers.map((p) => p.close()));
    await fake.close();
  });

  it('maps every parameter to /v1/chat/completions, sending top_k only when enabled', async () => {
    const params = chat({ maxNewTokens: 9, temperature: 0.2, topP: 0.5, topK: 5, stop: ['.'], seed: 42 });
    await provider.generate(params, signal());
    await provider.generate({ ...params, topK: 0, stop: [], seed: null }, signal());
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /v1/chat/completions',
      'POST /v1/chat/completions',
    ]);
    expect(fake.requests[0].headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(fake.requests[0].body).toEqual({
      model: 'gpt-4o-mini',
      messages: MESSAGES,
      max_tokens: 9,
      temperature: 0.2,
      top_p: 0.5,
      top_k: 5,
      stop: ['.'],
      seed: 42,
      stream: false,
    });
    expect(fake.requests[1].body).toEqual({
      model: 'gpt-4o-mini',
      messages: MESSAGES,
      max_tokens: 9,
      temperature: 0.2,
      top_p: 0.5,
      stream: false,
    });
  });

  it('returns the non-streamed answer', async () => {
    const expected = fakeChatCompletion(MESSAGES, 3);
    const result = await provider.generate(chat({ maxNewTokens: 3 }), signal());
    expect(result).toEqual({
      output: expected.text,
      finishReason: expected.finish,
      usage: { promptTokens: 7, completionTokens: expected.tokens.length },
    });
  });

  it('streams OpenAI-style: role chunk, content deltas, an empty-delta finish chunk, usage', async () => {
    const expected = fakeChatCompletion(MESSAGES, 3);
    expect(expected.finish).toBe('length');
    const { chunks, error } = await collectUntilError(provider.stream(chat({ maxNewTokens: 3 }), signal()));
    expect(error).toBeNull();
    expect(fake.requests[0].body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(chunks).toHaveLength(4);
    expect(text(chunks)).toBe(expected.text);
    expect(chunks[3]).toEqual({
      type: 'done',
      finishReason: 'length',
      usage: { promptTokens: 7, completionTokens: 3 },
    });
  });

  it('tolerates a server that ignores include_usage: counts one token per text chunk', async () => {
    fake.streamUsage = false;
    const expected = fakeChatCompletion(MESSAGES, 64);
    const { chunks, error } = await collectUntilError(provider.stream(chat(), signal()));
    expect(error).toBeNull();
    expect(chunks[chunks.length - 1]).toEqual({
      type: 'done',
      finishReason: 'stop',
      usage: { promptTokens: 0, completionTokens: expected.tokens.length },
    });
  });

  it('fails a stream that ends without a finish reason or [DONE]', async () => {
    fake.setMode('truncated', { afterChunks: 1 });
    const { chunks, error } = await collectUntilError(provider.stream(chat(), signal()));
    expect(chunks).toHaveLength(1);
    expect((error as Error).message).toBe('upstream stream ended early');
  });

  it('sanitizes HTTP errors and mid-stream error events', async () => {
    fake.setMode('fail', { status: 500 });
    const error = (await provider.generate(chat(), signal()).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(BackendResponseError);
    expect(error.message).toMatch(/^upstream returned HTTP 500: /);
    expect(error.message).not.toContain(SECRET);
    expect(error.message).not.toContain(fake.url);
    fake.setMode('mid-stream-error', { afterChunks: 3 });
    const mid = await collectUntilError(provider.stream(chat(), signal()));
    expect(mid.chunks).toHaveLength(3);
    expect(mid.error).toBeInstanceOf(BackendResponseError);
  });

  it('aborts a hanging chat stream with the signal reason and the server sees it', async () => {
    fake.setMode('hang');
    const ac = new AbortController();
    const pending = collectUntilError(provider.stream(chat(), ac.signal));
    await waitFor(() => fake.requests.length === 1);
    ac.abort('client closed');
    expect((await pending).error).toBe('client closed');
    await waitFor(() => fake.aborted.length === 1, 1000);
  });
});

describe('OpenAiProvider chat against odd but valid answers', () => {
  let server: Server;
  let url = '';
  let answer = '';
  let provider: OpenAiProvider;

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(answer);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    provider = new OpenAiProvider(modelConfig({ provider: 'openai' }), url);
  });

  afterAll(async () => {
    await provider.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('a null message content (refusal, content filter) is an empty output, finish "stop"', async () => {
    answer = JSON.stringify({
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: null, refusal: 'I cannot help with that.' },
          finish_reason: 'content_filter',
        },
      ],
      usage: { prompt_tokens: 5, completion_tokens: 0, total_tokens: 5 },
    });
    await expect(provider.generate(chat(), signal())).resolves.toEqual({
      output: '',
      finishReason: 'stop',
      usage: { promptTokens: 5, completionTokens: 0 },
    });
  });

  it('a choice without a message, or a non-string content, is unparseable', async () => {
    answer = JSON.stringify({ choices: [{ index: 0, text: 'completion-shaped' }], usage: {} });
    await expect(provider.generate(chat(), signal())).rejects.toThrow('upstream sent an unparseable response');
    answer = JSON.stringify({
      choices: [{ index: 0, message: { role: 'assistant', content: 42 } }],
      usage: { prompt_tokens: 1 },
    });
    await expect(provider.generate(chat(), signal())).rejects.toThrow('upstream sent an unparseable response');
  });
});
