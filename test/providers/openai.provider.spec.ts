/**
 * OpenAI-compatible specifics: the request on the wire (/v1/completions and
 * /v1/chat/completions), servers that check the key or ignore include_usage, readiness, and
 * odd but valid chat answers. What all remote providers share is in remote-providers.spec.ts.
 */
import { BackendResponseError } from '../../src/contracts/backend-errors';
import { promptText } from '../../src/contracts/generation';
import { OpenAiProvider } from '../../src/modules/providers/openai.provider';
import { modelConfig } from '../fakes/model-config';
import {
  chatParams,
  collectUntilError,
  OPENAI,
  remoteCasesOf,
  SECRET,
  signal,
  useBareServer,
  useFakeBackend,
} from './provider-fixtures';

const FRANCE = [
  { role: 'system' as const, content: 'Answer in one word.' },
  { role: 'user' as const, content: 'Capital of France?' },
];

describe('OpenAiProvider against a fake OpenAI-compatible server', () => {
  const ctx = useFakeBackend(OPENAI);

  describe.each(remoteCasesOf(OPENAI))('$name request', ({ path, request, wireInput, expected }) => {
    it('maps every parameter, sending top_k only when enabled', async () => {
      const params = request({
        maxNewTokens: 9,
        temperature: 0.2,
        topP: 0.5,
        topK: 5,
        stop: ['.'],
        seed: 42,
      });
      await ctx.provider.generate(params, signal());
      await ctx.provider.generate({ ...params, topK: 0, stop: [], seed: null }, signal());
      expect(ctx.fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`POST ${path}`, `POST ${path}`]);
      expect(ctx.fake.requests[0].headers.authorization).toBe(`Bearer ${SECRET}`);
      expect(ctx.fake.requests[0].body).toEqual({
        model: 'gpt-4o-mini',
        ...wireInput,
        max_tokens: 9,
        temperature: 0.2,
        top_p: 0.5,
        top_k: 5,
        stop: ['.'],
        seed: 42,
        stream: false,
      });
      expect(ctx.fake.requests[1].body).toEqual({
        model: 'gpt-4o-mini',
        ...wireInput,
        max_tokens: 9,
        temperature: 0.2,
        top_p: 0.5,
        stream: false,
      });
      expect(ctx.provider.kind).toBe('openai');
    });

    it('asks for usage when streaming', async () => {
      const { error } = await collectUntilError(ctx.provider.stream(request(), signal()));
      expect(error).toBeNull();
      expect(ctx.fake.requests[0].body).toMatchObject({
        stream: true,
        stream_options: { include_usage: true },
      });
    });

    it('tolerates a server that ignores include_usage: counts the prompt’s words and one token per text chunk', async () => {
      ctx.fake.streamUsage = false;
      const params = request();
      const { chunks, error } = await collectUntilError(ctx.provider.stream(params, signal()));
      expect(error).toBeNull();
      const promptWords = promptText(params).split(/\s+/).filter(Boolean).length;
      expect(promptWords).toBeGreaterThan(0);
      expect(chunks[chunks.length - 1]).toEqual({
        type: 'done',
        finishReason: 'stop',
        usage: { promptTokens: promptWords, completionTokens: expected(64).tokens.length },
      });
    });

    it('sends the api key as a bearer token (and works with a key-checking server)', async () => {
      ctx.fake.requiredApiKey = SECRET;
      await ctx.provider.generate(request(), signal());
      expect(ctx.fake.requests[0].headers.authorization).toBe(`Bearer ${SECRET}`);
      const anonymous = ctx.newProvider({ apiKey: null });
      await expect(anonymous.generate(request(), signal())).rejects.toMatchObject({
        name: 'BackendResponseError',
        upstreamStatus: 401,
      });
    });
  });

  it('checks readiness with GET /v1/models', async () => {
    await ctx.provider.checkReady(signal());
    expect(ctx.fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/models']);
    ctx.fake.setHealth(503);
    await expect(ctx.provider.checkReady(signal())).rejects.toBeInstanceOf(BackendResponseError);
  });
});

describe('OpenAiProvider chat against odd but valid answers', () => {
  const server = useBareServer();
  let answer = '';
  let provider: OpenAiProvider;

  beforeAll(() => {
    server.handler = (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(answer);
      });
    };
    provider = new OpenAiProvider(modelConfig({ provider: 'openai' }), server.url);
  });

  afterAll(() => provider.close());

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
    await expect(provider.generate(chatParams(FRANCE), signal())).resolves.toEqual({
      output: '',
      finishReason: 'stop',
      usage: { promptTokens: 5, completionTokens: 0 },
    });
  });

  it('a choice without a message, or a non-string content, is unparseable', async () => {
    answer = JSON.stringify({ choices: [{ index: 0, text: 'completion-shaped' }], usage: {} });
    await expect(provider.generate(chatParams(FRANCE), signal())).rejects.toThrow(
      'upstream sent an unparseable response',
    );
    answer = JSON.stringify({
      choices: [{ index: 0, message: { role: 'assistant', content: 42 } }],
      usage: { prompt_tokens: 1 },
    });
    await expect(provider.generate(chatParams(FRANCE), signal())).rejects.toThrow(
      'upstream sent an unparseable response',
    );
  });
});
