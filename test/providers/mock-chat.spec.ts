import { BackendResponseError, BackendUnreachableError } from '../../src/contracts/backend-errors';
import { MockProvider } from '../../src/modules/providers/mock.provider';
import { mockChatCompletion, mockCompletion } from '../../src/modules/providers/mock-answers';
import type { ChatMessage, GenerationParams } from '../../src/contracts/generation';
import { generationParams, modelConfig } from '../fakes/model-config';
import { chatParams, collectUntilError, signal, words } from './provider-fixtures';

const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Hello there' },
  { role: 'assistant', content: 'Hi! How can I help?' },
  { role: 'user', content: 'Tell me a story' },
];

function chat(messages: ChatMessage[] = MESSAGES, overrides: Partial<GenerationParams> = {}) {
  return chatParams(messages, overrides);
}

// Streaming a chat answer is tested with completions in mock.provider.spec.ts.
describe('MockProvider chat', () => {
  const provider = new MockProvider(modelConfig({ provider: 'mock' }));

  it('is deterministic and equals mockChatCompletion(); prompt tokens = words of all contents', async () => {
    const a = await provider.generate(chat(), signal());
    const b = await provider.generate(chat(MESSAGES.map((m) => ({ ...m }))), signal());
    expect(b).toEqual(a);
    expect(a).toEqual(mockChatCompletion(chat()));
    expect(a).toEqual(mockCompletion(chat()));
    expect(a.output).toMatch(/^( \S+){8,24}$/);
    expect(a.finishReason).toBe('stop');
    expect(a.usage).toEqual({ promptTokens: 5 + 2 + 5 + 4, completionTokens: words(a.output) });
  });

  it('ignores the prompt of a chat request', async () => {
    const a = await provider.generate(chat(MESSAGES, { prompt: 'one' }), signal());
    const b = await provider.generate(chat(MESSAGES, { prompt: 'something else entirely' }), signal());
    expect(b).toEqual(a);
  });

  it('depends on every message (role and content, in order) and on the sampling parameters', async () => {
    const base = chat();
    const variants: GenerationParams[] = [
      base,
      chat([...MESSAGES.slice(0, 3), { role: 'user', content: 'Tell me a joke' }]),
      chat([{ role: 'system', content: 'Be rude.' }, ...MESSAGES.slice(1)]),
      chat(MESSAGES.map((m) => (m.role === 'system' ? { ...m, role: 'user' as const } : m))),
      chat([MESSAGES[0], MESSAGES[3]]),
      { ...base, seed: 1 },
      { ...base, temperature: 0.5 },
      { ...base, topP: 0.9 },
      { ...base, topK: 10 },
    ];
    const outputs = new Set(variants.map((p) => mockCompletion(p).output));
    expect(outputs.size).toBe(variants.length);
  });

  it('differs from a completion whose prompt is a message content', () => {
    const single = chat([{ role: 'user', content: 'hello world' }]);
    expect(mockCompletion(single).output).not.toBe(mockCompletion(generationParams({ prompt: 'hello world' })).output);
  });

  it('applies the length and stop rules of completions', async () => {
    const full = (await provider.generate(chat(), signal())).output;
    const cut = await provider.generate(chat(MESSAGES, { maxNewTokens: 3 }), signal());
    expect(cut.finishReason).toBe('length');
    expect(words(cut.output)).toBe(3);
    expect(full.startsWith(cut.output)).toBe(true);
    const third = full.split(' ')[3];
    const stopped = await provider.generate(chat(MESSAGES, { stop: [third] }), signal());
    expect(stopped.output).toBe(full.slice(0, full.indexOf(third)));
    expect(stopped.finishReason).toBe('stop');
  });

  it('reads the tags from the start of the LAST user message only', async () => {
    const echo = chat([
      { role: 'system', content: '[mock:error] not a tag here' },
      { role: 'user', content: '[mock:error] nor here' },
      { role: 'assistant', content: '[mock:error] nor here' },
      { role: 'user', content: '[mock:echo] one two three' },
      { role: 'assistant', content: 'a trailing assistant message' },
    ]);
    await expect(provider.generate(echo, signal())).resolves.toEqual({
      output: 'one two three',
      finishReason: 'stop',
      usage: { promptTokens: 5 + 3 + 3 + 4 + 4, completionTokens: 3 },
    });
    const failing = chat([
      { role: 'user', content: 'fine' },
      { role: 'user', content: '[mock:unreachable] x' },
    ]);
    await expect(provider.generate(failing, signal())).rejects.toBeInstanceOf(BackendUnreachableError);
    const tagInMiddle = chat([{ role: 'user', content: 'please [mock:error]' }]);
    await expect(provider.generate(tagInMiddle, signal())).resolves.toMatchObject({
      finishReason: 'stop',
    });
    const noUser = chat([{ role: 'system', content: '[mock:error]' }]);
    await expect(provider.generate(noUser, signal())).resolves.toMatchObject({
      usage: { promptTokens: 1 },
    });
  });

  it('supports fail-after and hang in the last user message', async () => {
    const failAfter = chat([{ role: 'user', content: '[mock:fail-after:2] go' }]);
    const { chunks, error } = await collectUntilError(provider.stream(failAfter, signal()));
    expect(chunks).toHaveLength(2);
    expect(error).toBeInstanceOf(BackendResponseError);

    const ac = new AbortController();
    const pending = provider.generate(chat([{ role: 'user', content: '[mock:hang]' }]), ac.signal);
    const reason = new Error('gone');
    ac.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it('mockChatCompletion() refuses a request without messages', () => {
    expect(() => mockChatCompletion(chat([]))).toThrow(TypeError);
  });
});
