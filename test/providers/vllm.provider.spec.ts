/**
 * vLLM specifics: the request on the wire (completions and chat), the strict stream, the label
 * and readiness. What all remote providers share is in remote-providers.spec.ts.
 */
import { BackendResponseError } from '../../src/contracts/backend-errors';
import type { ChatMessage } from '../../src/contracts/generation';
import { waitFor } from '../fakes/fake-server';
import { generationParams } from '../fakes/model-config';
import {
  chatParams,
  collectUntilError,
  remoteCasesOf,
  SECRET,
  signal,
  useFakeBackend,
  VLLM,
} from './provider-fixtures';

describe('VllmProvider against a fake vLLM', () => {
  const ctx = useFakeBackend(VLLM);

  describe.each(remoteCasesOf(VLLM))('$name request', ({ path, request, wireInput }) => {
    it('maps every parameter, and nothing else (a chat request never sends the prompt)', async () => {
      await ctx.provider.generate(
        request({
          maxNewTokens: 5,
          temperature: 0.7,
          topP: 0.9,
          topK: 40,
          stop: ['\n', 'END'],
          seed: 7,
        }),
        signal(),
      );
      expect(ctx.fake.requests).toHaveLength(1);
      const [req] = ctx.fake.requests;
      expect(`${req.method} ${req.path}`).toBe(`POST ${path}`);
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.body).toEqual({
        model: VLLM.upstreamModel,
        ...wireInput,
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
      await ctx.provider.generate(request({ topK: 0 }), signal());
      const body = ctx.fake.requests[0].body as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(
        [...Object.keys(wireInput), 'max_tokens', 'model', 'stream', 'temperature', 'top_k', 'top_p'].sort(),
      );
      expect(body.top_k).toBe(-1);
    });

    it('asks for usage when streaming', async () => {
      await collectUntilError(ctx.provider.stream(request(), signal()));
      expect(ctx.fake.requests[0].path).toBe(path);
      expect(ctx.fake.requests[0].body).toMatchObject({
        stream: true,
        stream_options: { include_usage: true },
      });
    });

    it('sends the upstream api key as a bearer token only when configured', async () => {
      await ctx.newProvider({ apiKey: SECRET }).generate(request(), signal());
      await ctx.provider.generate(request(), signal());
      expect(ctx.fake.requests[0].headers.authorization).toBe(`Bearer ${SECRET}`);
      expect(ctx.fake.requests[1].headers.authorization).toBeUndefined();
    });

    it('fails a stream when the server sends [DONE] without the usage chunk', async () => {
      ctx.fake.streamUsage = false;
      const { error } = await collectUntilError(ctx.provider.stream(request(), signal()));
      expect(error).toBeInstanceOf(BackendResponseError);
      expect((error as Error).message).toBe('upstream stream ended early');
    });
  });

  describe('chat request', () => {
    it('sends only role and content of each message', async () => {
      const extra = { role: 'user', content: 'Hi', name: 'x', cached: true } as ChatMessage;
      await ctx.provider.generate(chatParams([extra]), signal());
      expect((ctx.fake.requests[0].body as { messages: unknown }).messages).toEqual([{ role: 'user', content: 'Hi' }]);
    });

    it('an empty messages array is a plain completion of the prompt', async () => {
      await ctx.provider.generate(generationParams({ prompt: 'Hello', messages: [] }), signal());
      expect(ctx.fake.requests[0].path).toBe('/v1/completions');
      expect(ctx.fake.requests[0].body).toMatchObject({ prompt: 'Hello' });
      expect(ctx.fake.requests[0].body).not.toHaveProperty('messages');
    });

    it('turns a 400 from the server into BackendResponseError with its status', async () => {
      const bad = [{ role: 'user', content: 42 }] as unknown as ChatMessage[];
      await expect(ctx.provider.generate(chatParams(bad), signal())).rejects.toMatchObject({
        name: 'BackendResponseError',
        upstreamStatus: 400,
      });
    });
  });

  it('labels the upstream by host:port', () => {
    expect(ctx.provider.upstreamLabel).toBe(ctx.fake.url.replace('http://', ''));
    expect(ctx.provider.kind).toBe('vllm');
  });

  describe('readiness', () => {
    it('is ready when GET /health answers 200', async () => {
      await expect(ctx.provider.checkReady(signal())).resolves.toBeUndefined();
      expect(ctx.fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /health']);
    });

    it('is not ready when /health answers 503', async () => {
      ctx.fake.setHealth(503);
      await expect(ctx.provider.checkReady(signal())).rejects.toBeInstanceOf(BackendResponseError);
    });

    it('gives up with the signal reason when /health hangs', async () => {
      ctx.fake.setHealth('hang');
      const ac = new AbortController();
      const promise = ctx.provider.checkReady(ac.signal);
      await waitFor(() => ctx.fake.requests.length === 1);
      ac.abort('readiness timeout');
      await expect(promise).rejects.toBe('readiness timeout');
    });
  });
});
