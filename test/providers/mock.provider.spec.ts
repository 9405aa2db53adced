import { BackendBusyError, BackendResponseError, BackendUnreachableError } from '../../src/contracts/backend-errors';
import { MockProvider } from '../../src/modules/providers/mock.provider';
import { mockCompletion } from '../../src/modules/providers/mock-answers';
import type { StreamChunk } from '../../src/contracts/generation';
import { sleep } from '../fakes/fake-server';
import { generationParams, modelConfig } from '../fakes/model-config';
import { CHAT_MESSAGES, chatParams, collectUntilError, signal, words } from './provider-fixtures';

describe('MockProvider', () => {
  const provider = new MockProvider(modelConfig({ provider: 'mock' }));

  it('is deterministic: same prompt and params, same answer', async () => {
    const params = generationParams({ prompt: 'hello world', seed: 3 });
    const a = await provider.generate(params, signal());
    const b = await provider.generate({ ...params }, signal());
    expect(a).toEqual(b);
    expect(a.output).toMatch(/^( \S+){8,24}$/);
    expect(a.finishReason).toBe('stop');
    expect(a.usage).toEqual({ promptTokens: 2, completionTokens: words(a.output) });
  });

  it('depends on the prompt and the sampling parameters', async () => {
    const base = generationParams({ prompt: 'hello world' });
    const outputs = new Set(
      await Promise.all(
        [
          base,
          { ...base, prompt: 'hello there' },
          { ...base, seed: 1 },
          { ...base, temperature: 0.5 },
          { ...base, topP: 0.9 },
          { ...base, topK: 10 },
        ].map(async (p) => (await provider.generate(p, signal())).output),
      ),
    );
    expect(outputs.size).toBe(6);
  });

  it('cuts at maxNewTokens words with finish "length", as a prefix of the full answer', async () => {
    const full = await provider.generate(generationParams(), signal());
    const cut = await provider.generate(generationParams({ maxNewTokens: 3 }), signal());
    expect(cut.finishReason).toBe('length');
    expect(words(cut.output)).toBe(3);
    expect(cut.usage.completionTokens).toBe(3);
    expect(full.output.startsWith(cut.output)).toBe(true);
  });

  it('cuts before the first stop string with finish "stop"', async () => {
    const full = (await provider.generate(generationParams(), signal())).output;
    const third = full.split(' ')[3];
    const fifth = full.split(' ')[5];
    const result = await provider.generate(generationParams({ stop: [fifth, third] }), signal());
    const first = Math.min(full.indexOf(third), full.indexOf(fifth));
    expect(result.output).toBe(full.slice(0, first));
    expect(result.output.length).toBeLessThan(full.length);
    expect(result.finishReason).toBe('stop');
  });

  it('ignores a stop string beyond the length cut', async () => {
    const full = (await provider.generate(generationParams(), signal())).output;
    const last = full.split(' ').pop() ?? '';
    const result = await provider.generate(generationParams({ maxNewTokens: 2, stop: [` ${last}`] }), signal());
    expect(result.finishReason).toBe('length');
  });

  it('echoes the prompt with [mock:echo]', async () => {
    const result = await provider.generate(
      generationParams({ prompt: '[mock:echo] one two three', maxNewTokens: 2 }),
      signal(),
    );
    expect(result).toEqual({
      output: 'one two',
      finishReason: 'length',
      usage: { promptTokens: 4, completionTokens: 2 },
    });
  });

  it.each([
    ['a completion', generationParams({ prompt: 'stream this' })],
    ['a chat', chatParams(CHAT_MESSAGES)],
  ])('streams one delta per word that join to the output, then done (%s)', async (_kind, params) => {
    const expected = mockCompletion(params);
    const { chunks, error } = await collectUntilError(provider.stream(params, signal()));
    expect(error).toBeNull();
    const deltas = chunks.slice(0, -1).map((c) => (c.type === 'delta' ? c.text : ''));
    expect(deltas).toHaveLength(words(expected.output));
    expect(deltas.every((d) => /^ \S+$/.test(d))).toBe(true);
    expect(deltas.join('')).toBe(expected.output);
    expect(chunks[chunks.length - 1]).toEqual({
      type: 'done',
      finishReason: expected.finishReason,
      usage: expected.usage,
    });
  });

  it('fails with [mock:error], [mock:unreachable] and [mock:busy]', async () => {
    await expect(provider.generate(generationParams({ prompt: '[mock:error] x' }), signal())).rejects.toBeInstanceOf(
      BackendResponseError,
    );
    await expect(
      provider.generate(generationParams({ prompt: '[mock:unreachable] x' }), signal()),
    ).rejects.toBeInstanceOf(BackendUnreachableError);
    const { chunks, error } = await collectUntilError(
      provider.stream(generationParams({ prompt: '[mock:busy] x' }), signal()),
    );
    expect(chunks).toHaveLength(0);
    expect(error).toBeInstanceOf(BackendBusyError);
  });

  it('streams n chunks then fails with [mock:fail-after:n]', async () => {
    const params = generationParams({ prompt: '[mock:fail-after:3] tell me' });
    const { chunks, error } = await collectUntilError(provider.stream(params, signal()));
    expect(chunks).toHaveLength(3);
    expect(chunks.every((c) => c.type === 'delta')).toBe(true);
    expect(error).toBeInstanceOf(BackendResponseError);
    await expect(provider.generate(params, signal())).rejects.toBeInstanceOf(BackendResponseError);
  });

  it('hangs with [mock:hang] until aborted, then rejects with the reason at once', async () => {
    const ac = new AbortController();
    const promise = provider.generate(generationParams({ prompt: '[mock:hang]' }), ac.signal);
    let settled = false;
    void promise.catch(() => undefined).finally(() => (settled = true));
    await sleep(30);
    expect(settled).toBe(false);
    const reason = new Error('gone');
    ac.abort(reason);
    await expect(promise).rejects.toBe(reason);

    const streamAc = new AbortController();
    const pending = collectUntilError(provider.stream(generationParams({ prompt: '[mock:hang] x' }), streamAc.signal));
    streamAc.abort('timeout');
    expect(await pending).toEqual({ chunks: [], error: 'timeout' });
  });

  it('delays each chunk with [mock:slow:ms] and honours an abort mid-stream', async () => {
    const ac = new AbortController();
    const chunks: StreamChunk[] = [];
    const params = generationParams({ prompt: '[mock:slow:10000][mock:echo] a b c' });
    const consume = (async () => {
      for await (const chunk of provider.stream(params, ac.signal)) chunks.push(chunk);
    })();
    await sleep(30);
    expect(chunks).toHaveLength(0);
    ac.abort('stop now');
    await expect(consume).rejects.toBe('stop now');
    expect(chunks).toHaveLength(0);
  });

  it('streams slowly but completely with a short [mock:slow:ms]', async () => {
    const params = generationParams({ prompt: '[mock:slow:5][mock:echo] a b c' });
    const { chunks } = await collectUntilError(provider.stream(params, signal()));
    expect(chunks.map((c) => (c.type === 'delta' ? c.text : c.type))).toEqual(['a', ' b', ' c', 'done']);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort('early');
    await expect(provider.generate(generationParams(), ac.signal)).rejects.toBe('early');
    expect(await collectUntilError(provider.stream(generationParams(), ac.signal))).toEqual({
      chunks: [],
      error: 'early',
    });
  });

  it('is ready, unless its upstream_model is mock-not-ready', async () => {
    await expect(provider.checkReady(signal())).resolves.toBeUndefined();
    const notReady = new MockProvider(modelConfig({ provider: 'mock', upstreamModel: 'mock-not-ready' }));
    await expect(notReady.checkReady(signal())).rejects.toThrow('not ready');
    expect(provider.kind).toBe('mock');
    expect(provider.upstreamLabel).toBe('mock');
  });
});
