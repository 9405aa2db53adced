/**
 * Ollama specifics: tag names, the request on the wire (/api/generate and /api/chat), omitted
 * counts, missing models and readiness. What all remote providers share is in
 * remote-providers.spec.ts.
 */
import { promptText } from '../../src/contracts/generation';
import { BackendResponseError } from '../../src/contracts/backend-errors';
import { normalizeOllamaTag } from '../../src/modules/providers/ollama.provider';
import { generationParams } from '../fakes/model-config';
import { collectUntilError, OLLAMA, remoteCasesOf, signal, useFakeBackend } from './provider-fixtures';

describe('normalizeOllamaTag', () => {
  it('implies :latest for tag-less names only', () => {
    expect(normalizeOllamaTag('llama3')).toBe('llama3:latest');
    expect(normalizeOllamaTag('llama3:8b')).toBe('llama3:8b');
    expect(normalizeOllamaTag('registry:5000/team/llama3')).toBe('registry:5000/team/llama3:latest');
  });
});

describe('OllamaProvider against a fake Ollama', () => {
  const ctx = useFakeBackend(OLLAMA);

  describe.each(remoteCasesOf(OLLAMA))('$name request', ({ endpoint, path, request, wireInput }) => {
    // A completion goes raw (no chat template); a chat request lets Ollama apply the template.
    const input = endpoint === 'completions' ? { ...wireInput, raw: true } : wireInput;

    it('maps every parameter into options, with stream: false explicitly (raw only for completions)', async () => {
      await ctx.provider.generate(
        request({
          maxNewTokens: 7,
          temperature: 0.3,
          topP: 0.8,
          topK: 20,
          stop: ['\n\n', 'User:'],
          seed: 1234,
        }),
        signal(),
      );
      const [req] = ctx.fake.requests;
      expect(`${req.method} ${req.path}`).toBe(`POST ${path}`);
      expect(req.body).toEqual({
        model: 'llama3:8b',
        ...input,
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

    it('sends top_k 0 when disabled, omits empty stop and null seed, and stream: true explicitly when streaming', async () => {
      const minimalOptions = { num_predict: 3, temperature: 1, top_p: 1, top_k: 0 };
      await ctx.provider.generate(request({ maxNewTokens: 3, topK: 0 }), signal());
      await collectUntilError(ctx.provider.stream(request({ maxNewTokens: 3, topK: 0 }), signal()));
      expect(ctx.fake.requests.map((r) => r.body)).toEqual([
        { model: 'llama3:8b', ...input, stream: false, options: minimalOptions },
        { model: 'llama3:8b', ...input, stream: true, options: minimalOptions },
      ]);
    });

    it('counts a cached prompt (no prompt_eval_count) by its words: never 0 prompt tokens (API.md "Quotas")', async () => {
      ctx.fake.promptCached = true;
      const params = request({ maxNewTokens: 2 });
      const result = await ctx.provider.generate(params, signal());
      expect(result.finishReason).toBe('length');
      const promptWords = promptText(params).split(/\s+/).filter(Boolean).length;
      expect(promptWords).toBeGreaterThan(0);
      expect(result.usage).toEqual({ promptTokens: promptWords, completionTokens: 2 });
    });

    it('reports a missing model (404) as BackendResponseError naming it', async () => {
      const missing = ctx.newProvider({ upstreamModel: 'phi3:mini' });
      await expect(missing.generate(request(), signal())).rejects.toMatchObject({
        name: 'BackendResponseError',
        upstreamStatus: 404,
        message: 'upstream returned HTTP 404: model "phi3:mini" not found, try pulling it first',
      });
    });
  });

  it('an empty messages array is a raw /api/generate of the prompt', async () => {
    await ctx.provider.generate(generationParams({ prompt: 'Hello', messages: [] }), signal());
    expect(ctx.fake.requests[0].path).toBe('/api/generate');
    expect(ctx.fake.requests[0].body).toMatchObject({ prompt: 'Hello', raw: true });
  });

  describe('readiness', () => {
    it('is ready when /api/tags lists the model', async () => {
      await expect(ctx.provider.checkReady(signal())).resolves.toBeUndefined();
      expect(ctx.fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /api/tags']);
    });

    it('matches a tag-less model name against :latest', async () => {
      ctx.fake.setModels(['llama3:latest']);
      const tagless = ctx.newProvider({ upstreamModel: 'llama3' });
      await expect(tagless.checkReady(signal())).resolves.toBeUndefined();
      ctx.fake.setModels(['llama3']);
      const latest = ctx.newProvider({ upstreamModel: 'llama3:latest' });
      await expect(latest.checkReady(signal())).resolves.toBeUndefined();
    });

    it('is not ready when the model is not listed, naming it', async () => {
      ctx.fake.setModels(['llama3:70b', 'mistral:latest']);
      await expect(ctx.provider.checkReady(signal())).rejects.toThrow('"llama3:8b"');
    });

    it('is not ready when /api/tags fails', async () => {
      ctx.fake.setHealth(500);
      await expect(ctx.provider.checkReady(signal())).rejects.toBeInstanceOf(BackendResponseError);
    });
  });
});
