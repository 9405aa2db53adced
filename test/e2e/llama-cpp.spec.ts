/**
 * The embedded llama.cpp engine against a real (tiny, random-weight) GGUF model written in
 * beforeAll. The tiny model's vocabulary is byte-level and it can only emit printable ASCII,
 * so every generated token is exactly one character of output and a prompt of n ASCII
 * characters is n + 1 tokens (BOS).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelConfig, LlamaCppConfig } from '../../src/contracts/model-config';
import { modelConfig } from '../fakes/model-config';
import {
  BackendBusyError,
  BackendResponseError,
  UnsupportedRequestError,
  BackendUnreachableError,
} from '../../src/contracts/backend-errors';
import { GgufFileError, GgufValueType } from '../../src/modules/gguf/gguf-format';
import { readGgufHeader } from '../../src/modules/gguf/gguf-reader';
import { GgufWriter } from '../../src/modules/gguf/gguf-writer';
import { PLAIN_CHAT_TEMPLATE, renderPlainChat } from '../../src/modules/providers/llama-cpp/chat-rendering';
import {
  createLlamaCppProvider,
  type LlamaCppProvider,
} from '../../src/modules/providers/llama-cpp/llama-cpp.provider';
import { StopStringFilter } from '../../src/modules/providers/llama-cpp/stop-string-filter';
import {
  buildTinyModel,
  TINY_CHAT_TEMPLATE,
  TINY_TOOLS_CHAT_TEMPLATE,
  TINY_MODEL,
  writeTinyModel,
} from '../../src/modules/gguf/tiny-model';
import type { ChatMessage, GenerationParams, GenerationResult, StreamChunk } from '../../src/contracts/generation';

jest.setTimeout(30_000);

let dir: string;
let modelPath: string;
const providers: LlamaCppProvider[] = [];

function llamaCppModel(llamaCpp: Partial<LlamaCppConfig>): ModelConfig {
  return modelConfig({
    name: 'tiny',
    provider: 'llama-cpp',
    defaultMaxNewTokens: 64,
    timeoutMs: 30_000,
    required: true,
    llamaCpp: {
      modelPath,
      threads: 1,
      contextSize: 2048,
      sequences: 2,
      maxQueue: 8,
      generateIfMissing: false,
      ...llamaCpp,
    },
  });
}

function provider(llamaCpp: Partial<LlamaCppConfig> = {}): LlamaCppProvider {
  const p = createLlamaCppProvider(llamaCppModel(llamaCpp));
  providers.push(p);
  return p;
}

const never = (): AbortSignal => new AbortController().signal;

function params(over: Partial<GenerationParams> = {}): GenerationParams {
  return { prompt: 'Once upon a time', maxNewTokens: 32, temperature: 0, topP: 1, topK: 0, stop: [], seed: 1, ...over };
}

async function collect(it: AsyncIterable<StreamChunk>): Promise<StreamChunk[]> {
  const out: StreamChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

function joinDeltas(chunks: StreamChunk[]): string {
  return chunks.map((c) => (c.type === 'delta' ? c.text : '')).join('');
}

async function expectRejectsQuickly(
  p: Promise<unknown>,
  reason: unknown,
  since: number,
  withinMs = 1000,
): Promise<void> {
  let caught: unknown = null;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught).toBe(reason);
  expect(performance.now() - since).toBeLessThan(withinMs);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'llama-cpp-spec-'));
  modelPath = join(dir, 'tiny.gguf');
  writeTinyModel(modelPath, 42);
});

afterAll(async () => {
  await Promise.all(providers.map((p) => p.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('tiny model writer', () => {
  it('is deterministic: same seed → identical bytes, different seed → different bytes', () => {
    const again = join(dir, 'again.gguf');
    const other = join(dir, 'other.gguf');
    const r = writeTinyModel(again, 42);
    writeTinyModel(other, 43);
    const a = readFileSync(modelPath);
    expect(r.bytes).toBe(a.length);
    expect(readFileSync(again).equals(a)).toBe(true);
    const b = readFileSync(other);
    expect(b.length).toBe(a.length);
    expect(b.equals(a)).toBe(false);
    // Atomic write: no temporary files left behind.
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('writes well-formed GGUF v3 with aligned tensors', async () => {
    const h = await readGgufHeader(modelPath);
    expect(h.version).toBe(3);
    expect(h.architecture).toBe('llama');
    expect(h.trainedContextLength).toBe(TINY_MODEL.contextLength);
    expect(h.vocabularySize).toBe(TINY_MODEL.vocabSize);
    expect(h.tensors).toHaveLength(3 + 9 * TINY_MODEL.blockCount);
    expect(h.dataOffset % 32).toBe(0);
    const embd = h.tensors.find((t) => t.name === 'token_embd.weight')!;
    expect(embd.dims).toEqual([TINY_MODEL.embeddingLength, TINY_MODEL.vocabSize]);
    expect(embd.byteLength).toBe(TINY_MODEL.embeddingLength * TINY_MODEL.vocabSize * 4);
    const last = h.tensors[h.tensors.length - 1];
    expect(h.dataOffset + last.offset + last.byteLength!).toBeLessThanOrEqual(statSync(modelPath).size);
    expect(h.metadata.get('tokenizer.ggml.add_space_prefix')).toBe(false);
  });

  it('GgufWriter round-trips metadata of every type', async () => {
    const w = new GgufWriter(64)
      .addString('general.architecture', 'test')
      .addUint8('u8', 200)
      .addInt16('i16', -300)
      .addUint64('u64', 2n ** 40n)
      .addFloat64('f64', 0.5)
      .addBool('b', true)
      .addArray('arr', GgufValueType.INT32, [1, -2, 3])
      .addTensorF32('t', [3], new Float32Array([1, 2, 3]));
    const p = join(dir, 'types.gguf');
    writeFileSync(p, w.toBuffer());
    // Not a loadable model (no context_length …), so validation fails, but it must parse that far.
    await expect(readGgufHeader(p)).rejects.toThrow('required metadata test.context_length is missing');
    expect(() => w.addUint8('u8', 1)).toThrow('added twice');
    expect(() => new GgufWriter(24)).toThrow('power of two');
  });
});

describe('GGUF header validation', () => {
  function writeVariant(name: string, edit: (w: GgufWriter) => void): string {
    const w = buildTinyModel(42);
    edit(w);
    const p = join(dir, name);
    writeFileSync(p, w.toBuffer());
    return p;
  }

  async function expectInvalid(path: string, problem: RegExp): Promise<GgufFileError> {
    let caught: unknown = null;
    try {
      await readGgufHeader(path);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GgufFileError);
    const err = caught as GgufFileError;
    expect(err.message).toContain(path);
    expect(err.message).toMatch(problem);
    return err;
  }

  it('a missing file', async () => {
    await expectInvalid(join(dir, 'nope.gguf'), /file not found/);
  });

  it('a truncated file (tensor data cut, and header cut)', async () => {
    const full = readFileSync(modelPath);
    const half = join(dir, 'half.gguf');
    writeFileSync(half, full.subarray(0, Math.floor(full.length / 2)));
    await expectInvalid(half, /truncated/);
    const head = join(dir, 'head.gguf');
    writeFileSync(head, full.subarray(0, 300));
    await expectInvalid(head, /truncated/);
    const tiny = join(dir, 'tiny-file.gguf');
    writeFileSync(tiny, full.subarray(0, 10));
    await expectInvalid(tiny, /too small/);
  });

  it('wrong magic', async () => {
    const buf = Buffer.from(readFileSync(modelPath));
    buf.write('GGML', 0, 'latin1');
    const p = join(dir, 'magic.gguf');
    writeFileSync(p, buf);
    await expectInvalid(p, /not a GGUF file/);
  });

  it('missing llama.feed_forward_length (llama.cpp would abort the process)', async () => {
    const p = writeVariant('no-ff.gguf', (w) => w.removeMetadata('llama.feed_forward_length'));
    await expectInvalid(p, /llama\.feed_forward_length is missing/);
  });

  it('missing llama.attention.head_count (llama.cpp would abort the process)', async () => {
    const p = writeVariant('no-heads.gguf', (w) => w.removeMetadata('llama.attention.head_count'));
    await expectInvalid(p, /llama\.attention\.head_count is missing/);
  });

  it('other required keys and inconsistent values', async () => {
    await expectInvalid(
      writeVariant('no-arch.gguf', (w) => w.removeMetadata('general.architecture')),
      /general\.architecture/,
    );
    await expectInvalid(
      writeVariant('no-ctx.gguf', (w) => w.removeMetadata('llama.context_length')),
      /llama\.context_length is missing/,
    );
    await expectInvalid(
      writeVariant('no-tokens.gguf', (w) => w.removeMetadata('tokenizer.ggml.tokens')),
      /tokenizer\.ggml\.tokens/,
    );
    await expectInvalid(
      writeVariant('bad-heads.gguf', (w) => {
        w.removeMetadata('llama.attention.head_count');
        w.addUint32('llama.attention.head_count', 5);
      }),
      /not a multiple/,
    );
  });

  it('a provider given a bad file fails init with that error and never loads it', async () => {
    const p = provider({
      modelPath: writeVariant('no-ff-2.gguf', (w) => w.removeMetadata('llama.feed_forward_length')),
    });
    await expect(p.init()).rejects.toThrow(
      /Invalid GGUF model file .*no-ff-2\.gguf: required metadata llama\.feed_forward_length/,
    );
    await expect(p.checkReady(never())).rejects.toThrow('failed to load');
    await expect(p.generate(params(), never())).rejects.toBeInstanceOf(BackendUnreachableError);
  });
});

describe('StopStringFilter', () => {
  it('holds back partial matches and cuts before the earliest stop string', () => {
    const f = new StopStringFilter(['END', 'xy']);
    expect(f.push('abc E')).toBe('abc ');
    expect(f.push('N')).toBe('');
    expect(f.push('Dzz')).toBe('');
    expect(f.stopped).toBe(true);
    expect(f.output).toBe('abc ');
    const g = new StopStringFilter(['END']);
    expect(g.push('abEN')).toBe('ab');
    expect(g.push('x')).toBe('ENx');
    expect(g.push('E')).toBe('');
    expect(g.flush()).toBe('E');
    expect(g.output).toBe('abENxE');
    const h = new StopStringFilter(['bc', 'abcd']);
    h.push('a');
    h.push('bcd');
    expect(h.output).toBe(''); // 'abcd' starts first
    const k = new StopStringFilter(['cd', 'abcdX']);
    expect(k.push('ab')).toBe('');
    expect(k.push('cd')).toBe('ab');
    expect(k.output).toBe('ab');
    expect(new StopStringFilter([]).push('anything')).toBe('anything');
  });
});

describe('llama-cpp provider (real engine, tiny model)', () => {
  let p: LlamaCppProvider;
  let greedy: GenerationResult;

  beforeAll(async () => {
    p = provider();
    await p.init();
    greedy = await p.generate(params({ maxNewTokens: 64 }), never());
  });

  it('is ready after init, with the context capped to the trained context', async () => {
    await expect(p.checkReady(never())).resolves.toBeUndefined();
    expect(p.kind).toBe('llama-cpp');
    expect(p.upstreamLabel).toBe('embedded');
    expect(p.info).toMatchObject({ contextSize: 2048, sequences: 2, threads: 1, trainedContextLength: 4096 });
    const capped = provider({ contextSize: 100_000, sequences: 1 });
    await capped.init();
    expect(capped.info!.contextSize).toBe(TINY_MODEL.contextLength);
    await capped.close();
  });

  it('checkReady rejects before init', async () => {
    await expect(provider().checkReady(never())).rejects.toThrow('not loaded');
  });

  it('generates printable text, exactly max_new_tokens long, finish "length"', () => {
    expect(greedy.finishReason).toBe('length');
    expect(greedy.usage.completionTokens).toBe(64);
    expect(greedy.output).toHaveLength(64); // one character per token for this model
    expect(greedy.output).toMatch(/^[\x20-\x7e\n]+$/);
  });

  it('same seed → same output; greedy ignores the seed; other seeds differ', async () => {
    const sampled = params({ temperature: 0.9, topK: 40, topP: 0.95, seed: 1234, maxNewTokens: 48 });
    const a = await p.generate(sampled, never());
    const b = await p.generate(sampled, never());
    expect(b).toEqual(a);
    const outputs = new Set<string>();
    for (const seed of [1, 2, 3]) outputs.add((await p.generate({ ...sampled, seed }, never())).output);
    expect(outputs.size).toBeGreaterThan(1);
    const g2 = await p.generate(params({ maxNewTokens: 64, seed: 999 }), never());
    expect(g2.output).toBe(greedy.output);
    // seed null: a fresh random seed per request, still valid output.
    const r = await p.generate({ ...sampled, seed: null }, never());
    expect(r.usage.completionTokens).toBe(48);
  });

  it('max_new_tokens is respected exactly', async () => {
    for (const n of [1, 7, 100]) {
      const r = await p.generate(params({ maxNewTokens: n, temperature: 0.7, seed: n }), never());
      expect(r.usage.completionTokens).toBe(n);
      expect(r.finishReason).toBe('length');
      expect(r.output).toHaveLength(n);
    }
  });

  it('a stop string cuts the output before it, finish "stop"', async () => {
    // A 2-character string known to occur in the greedy output (not at its very start).
    const stop = greedy.output.slice(20, 22);
    const at = greedy.output.indexOf(stop);
    const r = await p.generate(params({ maxNewTokens: 64, stop: [stop] }), never());
    expect(r.finishReason).toBe('stop');
    expect(r.output).toBe(greedy.output.slice(0, at));
    expect(r.output).not.toContain(stop);
    expect(r.usage.completionTokens).toBe(at + stop.length); // the stop string's tokens were generated
    // The earliest of several stop strings wins; a stop string that never occurs changes nothing.
    const later = greedy.output.slice(40, 43);
    const r2 = await p.generate(params({ maxNewTokens: 64, stop: ['\u0000never', later, stop] }), never());
    expect(r2.output).toBe(greedy.output.slice(0, Math.min(at, greedy.output.indexOf(later))));
  });

  it('streaming chunks join to the non-stream output (with and without stop strings)', async () => {
    const stop = greedy.output.slice(30, 33);
    for (const q of [
      params({ maxNewTokens: 64 }),
      params({ maxNewTokens: 64, stop: [stop] }),
      params({ temperature: 1, seed: 77, maxNewTokens: 80 }),
    ]) {
      const whole = await p.generate(q, never());
      const chunks = await collect(p.stream(q, never()));
      const deltas = chunks.filter((c) => c.type === 'delta');
      expect(deltas.length).toBeGreaterThan(1);
      expect(chunks.filter((c) => c.type === 'done')).toHaveLength(1);
      expect(chunks[chunks.length - 1]).toEqual({ type: 'done', finishReason: whole.finishReason, usage: whole.usage });
      expect(joinDeltas(chunks)).toBe(whole.output);
      if (q.stop.length > 0) {
        expect(whole.finishReason).toBe('stop');
        for (const d of deltas) expect(d.type === 'delta' && d.text.includes(stop)).toBe(false);
        expect(joinDeltas(chunks)).not.toContain(stop);
      }
    }
  });

  it('a partial stop-string match at the length limit is kept, not dropped', async () => {
    // The output's last character followed by a byte the model can never produce: the filter
    // holds that character back until the generation ends, then must flush it.
    const n = 40;
    const full = greedy.output.slice(0, n);
    const q = params({ maxNewTokens: n, stop: [full[n - 1] + '\u0001'] });
    const r = await p.generate(q, never());
    expect(r).toMatchObject({ output: full, finishReason: 'length' });
    expect(joinDeltas(await collect(p.stream(q, never())))).toBe(full);
  });

  it('usage: positive integers, prompt tokens = bytes + BOS and grow with the prompt', async () => {
    const short = await p.generate(params({ prompt: 'Hi', maxNewTokens: 4 }), never());
    const long = await p.generate(params({ prompt: 'Hi there, this is a longer prompt.', maxNewTokens: 4 }), never());
    for (const r of [short, long]) {
      expect(Number.isInteger(r.usage.promptTokens) && r.usage.promptTokens > 0).toBe(true);
      expect(Number.isInteger(r.usage.completionTokens) && r.usage.completionTokens > 0).toBe(true);
    }
    expect(short.usage.promptTokens).toBe(3);
    expect(long.usage.promptTokens).toBe(35);
    const empty = await p.generate(params({ prompt: '', maxNewTokens: 3 }), never());
    expect(empty.usage).toEqual({ promptTokens: 1, completionTokens: 3 });
    // Special-token text in a prompt is plain text, never a control token.
    const special = await p.generate(params({ prompt: '<s></s>', maxNewTokens: 2 }), never());
    expect(special.usage.promptTokens).toBe(8);
  });

  it('a prompt that does not fit the context window is a 400-style BackendResponseError', async () => {
    const err = await p
      .generate(params({ prompt: 'x'.repeat(2040), maxNewTokens: 16 }), never())
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendResponseError);
    expect((err as BackendResponseError).upstreamStatus).toBe(400);
    expect((err as Error).message).toMatch(/2041 tokens.*context window of 2048/);
  });

  it('abort stops the generation promptly, rejects with the reason, and frees the sequence', async () => {
    const ctl = new AbortController();
    const reason = new Error('client went away');
    const pending = p.generate(params({ maxNewTokens: 2000, prompt: 'a', temperature: 1, seed: 5 }), ctl.signal);
    await new Promise((r) => setTimeout(r, 50));
    expect(p.load.active).toBe(1);
    const t = performance.now();
    ctl.abort(reason);
    await expectRejectsQuickly(pending, reason, t);
    // Both sequences are usable again and results are unaffected by the aborted request.
    const again = await Promise.all([
      p.generate(params({ maxNewTokens: 64 }), never()),
      p.generate(params({ maxNewTokens: 64 }), never()),
    ]);
    expect(again.map((r) => r.output)).toEqual([greedy.output, greedy.output]);
    expect(p.load).toEqual({ active: 0, queued: 0 });
  });

  it('abort of a stream mid-way throws the reason from the iterator', async () => {
    const ctl = new AbortController();
    const reason = new Error('stop streaming');
    const seen: string[] = [];
    let caught: unknown = null;
    let t = 0;
    try {
      for await (const c of p.stream(params({ maxNewTokens: 2000, temperature: 1, seed: 3 }), ctl.signal)) {
        if (c.type === 'delta') seen.push(c.text);
        if (seen.length === 5) {
          t = performance.now();
          ctl.abort(reason);
        }
      }
    } catch (err) {
      caught = err;
    }
    expect(caught).toBe(reason);
    expect(performance.now() - t).toBeLessThan(1000);
    await p.generate(params({ maxNewTokens: 2 }), never());
    expect(p.load).toEqual({ active: 0, queued: 0 });
  });

  it('a stream consumer that stops iterating early stops the engine and frees the sequence', async () => {
    let n = 0;
    for await (const c of p.stream(params({ maxNewTokens: 2000, temperature: 1, seed: 4 }), never())) {
      if (c.type === 'delta' && ++n === 3) break;
    }
    const t = performance.now();
    while (p.load.active > 0 && performance.now() - t < 1000) await new Promise((r) => setTimeout(r, 5));
    expect(p.load).toEqual({ active: 0, queued: 0 });
  });

  it('an already-aborted signal rejects at once without touching the engine', async () => {
    const ctl = new AbortController();
    const reason = new Error('early');
    ctl.abort(reason);
    await expect(p.generate(params(), ctl.signal)).rejects.toBe(reason);
  });

  it('concurrent requests (sequences = 2) all succeed and equal their sequential results', async () => {
    const qs = [0, 1, 2, 3, 4, 5].map((i) =>
      params({ prompt: `Prompt number ${i}`, temperature: i % 2 ? 0.8 : 0, seed: 100 + i, maxNewTokens: 40 + i }),
    );
    const sequential: GenerationResult[] = [];
    for (const q of qs) sequential.push(await p.generate(q, never()));
    const concurrent = await Promise.all(qs.map((q) => p.generate(q, never())));
    expect(concurrent).toEqual(sequential);
    const streamed = await Promise.all(qs.map((q) => collect(p.stream(q, never()))));
    expect(streamed.map(joinDeltas)).toEqual(sequential.map((r) => r.output));
  });
});

describe('llama-cpp provider queue (sequences = 1, maxQueue = 1)', () => {
  let p: LlamaCppProvider;
  const long = (): GenerationParams => params({ maxNewTokens: 2000, prompt: 'z', temperature: 1, seed: 9 });

  beforeAll(async () => {
    p = provider({ sequences: 1, maxQueue: 1 });
    await p.init();
  });

  it('queue full → BackendBusyError; abort while queued removes the waiter', async () => {
    const running = new AbortController();
    const queued = new AbortController();
    const r1 = p.generate(long(), running.signal);
    r1.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 20));
    const r2 = p.generate(params({ maxNewTokens: 8 }), queued.signal);
    r2.catch(() => undefined);
    await new Promise((r) => setImmediate(r));
    expect(p.load).toEqual({ active: 1, queued: 1 });

    await expect(p.generate(params(), never())).rejects.toBeInstanceOf(BackendBusyError);
    const busy = await collect(p.stream(params(), never())).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(BackendBusyError);

    const reason = new Error('gave up waiting');
    const t = performance.now();
    queued.abort(reason);
    await expectRejectsQuickly(r2, reason, t, 200);
    expect(p.load).toEqual({ active: 1, queued: 0 });

    // The freed queue place is usable; this waiter gets the sequence when r1 is aborted.
    const r3 = p.generate(params({ maxNewTokens: 8 }), never());
    await new Promise((r) => setImmediate(r));
    expect(p.load.queued).toBe(1);
    const stopReason = new Error('stop the long one');
    running.abort(stopReason);
    await expect(r1).rejects.toBe(stopReason);
    const res3 = await r3;
    expect(res3.usage.completionTokens).toBe(8);
    expect(p.load).toEqual({ active: 0, queued: 0 });
  });

  it('close() rejects waiters and running requests, and later calls fail cleanly', async () => {
    const r1 = p.generate(long(), never());
    await new Promise((r) => setTimeout(r, 20));
    const r2 = p.generate(params(), never());
    const errors = Promise.allSettled([r1, r2]);
    await p.close();
    const [s1, s2] = await errors;
    expect(s1.status).toBe('rejected');
    expect(s2.status).toBe('rejected');
    expect((s2 as PromiseRejectedResult).reason).toBeInstanceOf(BackendUnreachableError);
    await expect(p.generate(params(), never())).rejects.toBeInstanceOf(BackendUnreachableError);
    await expect(p.checkReady(never())).rejects.toThrow('closed');
    await p.close(); // idempotent
  });
});

describe('lifecycle', () => {
  it('close() while loading makes init() reject and releases everything', async () => {
    const p = provider({ sequences: 1 });
    const init = p.init();
    init.catch(() => undefined);
    await p.close();
    await expect(init).rejects.toThrow('closed while loading');
    await expect(p.checkReady(never())).rejects.toThrow('closed');
    await expect(p.init()).rejects.toThrow('closed');
  });
});

describe('generateIfMissing', () => {
  it('writes the tiny model when the file is missing, and fails cleanly when not allowed', async () => {
    const path = join(dir, 'generated', 'tiny.gguf');
    const off = provider({ modelPath: path, generateIfMissing: false, sequences: 1 });
    await expect(off.init()).rejects.toThrow(/Invalid GGUF model file .*generated\/tiny\.gguf: file not found/);
    const on = provider({ modelPath: path, generateIfMissing: true, sequences: 1 });
    await on.init();
    expect(on.info!.generatedModel).toBe(true);
    expect(readFileSync(path).equals(readFileSync(modelPath))).toBe(true);
    const r = await on.generate(params({ maxNewTokens: 5 }), never());
    expect(r.usage.completionTokens).toBe(5);
    await on.close();
  });
});

describe('chat (messages rendered with a chat template, then a normal completion)', () => {
  const MESSAGES: ChatMessage[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi <s> there' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: 'Tell me a story' },
  ];
  const chat = (messages: ChatMessage[], over: Partial<GenerationParams> = {}): GenerationParams =>
    params({ prompt: 'IGNORED', messages, maxNewTokens: 24, ...over });

  describe('a GGUF without a chat template: the plain documented template', () => {
    let p: LlamaCppProvider;
    const RENDERED =
      '### System:\nBe brief.\n\n### User:\nHi <s> there\n\n### Assistant:\nHello!\n\n### User:\nTell me a story\n\n### Assistant:\n';

    beforeAll(async () => {
      p = provider({ sequences: 1 });
      await p.init();
    });

    it('uses the plain template and renders exactly as documented', () => {
      expect(p.info).toMatchObject({ chatTemplate: 'plain', chatTemplateError: null });
      expect(renderPlainChat(MESSAGES)).toBe(RENDERED);
      expect(p.renderInput(chat(MESSAGES)).prompt).toBe(RENDERED);
      expect(
        renderPlainChat([
          { role: 'system', content: 'S' },
          { role: 'user', content: 'U' },
        ]),
      ).toBe('### System:\nS\n\n### User:\nU\n\n### Assistant:\n');
      expect(PLAIN_CHAT_TEMPLATE.stop).toEqual(['\n\n### User:', '\n### User:']);
    });

    it("adds the template's turn markers to the request's stop strings (chat requests only)", () => {
      expect(p.renderInput(chat(MESSAGES, { stop: ['END'] })).stop).toEqual(['END', '\n\n### User:', '\n### User:']);
      expect(p.renderInput(chat(MESSAGES)).stop).toEqual(['\n\n### User:', '\n### User:']);
      expect(p.renderInput(params({ stop: ['END'] })).stop).toEqual(['END']);
    });

    it('runs the rendered prompt as a completion: same output, prompt tokens = rendered tokens', async () => {
      const r = await p.generate(chat(MESSAGES), never());
      const direct = await p.generate(params({ prompt: RENDERED, maxNewTokens: 24 }), never());
      expect(r).toEqual(direct);
      expect(r.usage).toEqual({ promptTokens: RENDERED.length + 1, completionTokens: 24 }); // ASCII bytes + BOS
      expect(r.finishReason).toBe('length');
    });

    it('streams the same text, with stop strings and usage as for completions', async () => {
      const whole = await p.generate(chat(MESSAGES), never());
      const stop = whole.output.slice(10, 12);
      const stopped = await p.generate(chat(MESSAGES, { stop: [stop] }), never());
      expect(stopped.finishReason).toBe('stop');
      expect(stopped.output).toBe(whole.output.slice(0, whole.output.indexOf(stop)));
      for (const q of [chat(MESSAGES), chat(MESSAGES, { stop: [stop] })]) {
        const expected = await p.generate(q, never());
        const chunks = await collect(p.stream(q, never()));
        expect(joinDeltas(chunks)).toBe(expected.output);
        expect(chunks[chunks.length - 1]).toEqual({
          type: 'done',
          finishReason: expected.finishReason,
          usage: expected.usage,
        });
      }
    });

    it('continues a trailing assistant message', async () => {
      const messages: ChatMessage[] = [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Once upon' },
      ];
      const rendered = '### User:\nHi\n\n### Assistant:\nOnce upon';
      expect(p.renderInput(chat(messages)).prompt).toBe(rendered);
      expect(await p.generate(chat(messages), never())).toEqual(
        await p.generate(params({ prompt: rendered, maxNewTokens: 24 }), never()),
      );
    });

    it('a chat that does not fit the context window is a 400-style BackendResponseError', async () => {
      const err = await p
        .generate(chat([{ role: 'user', content: 'x'.repeat(2030) }], { maxNewTokens: 16 }), never())
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendResponseError);
      expect((err as BackendResponseError).upstreamStatus).toBe(400);
    });

    it('abort stops a chat stream with the reason', async () => {
      const ctl = new AbortController();
      const reason = new Error('bye');
      let seen = 0;
      let caught: unknown = null;
      try {
        for await (const c of p.stream(chat(MESSAGES, { maxNewTokens: 1500, temperature: 1 }), ctl.signal)) {
          if (c.type === 'delta' && ++seen === 3) ctl.abort(reason);
        }
      } catch (err) {
        caught = err;
      }
      expect(caught).toBe(reason);
      await p.generate(chat(MESSAGES, { maxNewTokens: 1 }), never());
      expect(p.load).toEqual({ active: 0, queued: 0 });
    });
  });

  describe("a GGUF with a chat template: the model's own template", () => {
    let p: LlamaCppProvider;
    // The template writes {{ bos_token }} itself: it is the one BOS the engine adds, not a second.
    const RENDERED =
      '<|system|>\nBe brief.\n<|user|>\nHi <s> there\n<|assistant|>\nHello!\n<|user|>\nTell me a story\n<|assistant|>\n';

    beforeAll(async () => {
      const path = join(dir, 'tiny-chat.gguf');
      writeTinyModel(path, 42, { chatTemplate: TINY_CHAT_TEMPLATE });
      p = provider({ modelPath: path, sequences: 1 });
      await p.init();
    });

    it('the writer stores the template as tokenizer.chat_template', async () => {
      const h = await readGgufHeader(join(dir, 'tiny-chat.gguf'));
      expect(h.metadata.get('tokenizer.chat_template')).toBe(TINY_CHAT_TEMPLATE);
      expect((await readGgufHeader(modelPath)).metadata.has('tokenizer.chat_template')).toBe(false);
    });

    it('renders the messages with the template and the generation prompt', () => {
      expect(p.info).toMatchObject({ chatTemplate: 'gguf', chatTemplateError: null });
      expect(p.renderInput(chat(MESSAGES)).prompt).toBe(RENDERED);
    });

    it('prompt tokens = rendered tokens: one BOS, and "<s>" typed by a user is plain text', async () => {
      const r = await p.generate(chat(MESSAGES), never());
      expect(r.usage).toEqual({ promptTokens: RENDERED.length + 1, completionTokens: 24 });
      // The same tokens as a completion of the rendered text (which tokenizes "<s>" as text too).
      expect(r).toEqual(await p.generate(params({ prompt: RENDERED, maxNewTokens: 24 }), never()));
      const chunks = await collect(p.stream(chat(MESSAGES), never()));
      expect(joinDeltas(chunks)).toBe(r.output);
      expect(chunks[chunks.length - 1]).toEqual({ type: 'done', finishReason: r.finishReason, usage: r.usage });
    });

    it('joins consecutive messages of one role, and continues a trailing assistant message', () => {
      const joined = chat([
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
      ]);
      expect(p.renderInput(joined).prompt).toBe('<|user|>\na\n\nb\n<|assistant|>\n');
      const prefill = chat([
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Once upon' },
      ]);
      expect(p.renderInput(prefill).prompt).toBe('<|user|>\nHi\n<|assistant|>\nOnce upon');
    });

    it('adds no stop strings: the turn ends at the end-of-generation token', () => {
      expect(p.renderInput(chat(MESSAGES, { stop: ['END'] })).stop).toEqual(['END']);
    });

    it('a completion request on the same model is not templated', async () => {
      expect(p.renderInput(params({ prompt: 'plain text' })).prompt).toBe('plain text');
      const r = await p.generate(params({ prompt: 'plain text', maxNewTokens: 4 }), never());
      expect(r.usage.promptTokens).toBe('plain text'.length + 1);
    });
  });

  describe('a GGUF whose chat template does function calling', () => {
    let p: LlamaCppProvider;
    const weather = {
      name: 'get_weather',
      description: 'Weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } } },
    };

    beforeAll(async () => {
      const path = join(dir, 'tiny-tools.gguf');
      writeTinyModel(path, 42, { chatTemplate: TINY_TOOLS_CHAT_TEMPLATE });
      p = provider({ modelPath: path, sequences: 1 });
      await p.init();
    });

    it('says so, and renders the tools, an earlier call and its result with the template', () => {
      expect(p.info).toMatchObject({ chatTemplate: 'gguf', functionCalling: true });
      const call = { id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' };
      const rendered = p.renderInput(
        chat(
          [
            { role: 'user', content: 'Weather?' },
            { role: 'assistant', content: '', toolCalls: [call] },
            { role: 'tool', content: '{"degrees":21}', toolCallId: 'call_1' },
          ],
          { tools: { tools: [weather], choice: 'auto', parallel: true } },
        ),
      ).prompt;
      expect(rendered).toContain('"name": "get_weather"');
      expect(rendered).toContain(
        '<|user|>\nWeather?\n<|assistant|>\n<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>',
      );
      expect(rendered).toContain('<|tool|>\n{"degrees": 21}');
      expect(rendered.endsWith('<|tool|>\n{"degrees": 21}\n<|assistant|>\n')).toBe(true);
    });

    it('a forced call: the prompt ends inside the call, at its arguments', () => {
      const forced = p.renderInput(
        chat([{ role: 'user', content: 'Weather?' }], {
          tools: { tools: [weather], choice: { name: 'get_weather' }, parallel: true },
        }),
      ).prompt;
      expect(forced.endsWith('<|assistant|>\n<tool_call>{"name": "get_weather", "arguments": ')).toBe(true);
    });

    it('a tool result that answers no call is refused, naming messages', () => {
      expect(() =>
        p.renderInput(
          chat([
            { role: 'user', content: 'x' },
            { role: 'tool', content: 'r', toolCallId: 'nope' },
          ]),
        ),
      ).toThrow(UnsupportedRequestError);
    });
  });

  describe('chat template failures', () => {
    it('a template that rejects a conversation fails that request with a 400-style error', async () => {
      const path = join(dir, 'tiny-strict-chat.gguf');
      const strict =
        "{% if messages[0]['role'] == 'assistant' %}{{ raise_exception('Conversations must start with a user message') }}{% endif %}" +
        TINY_CHAT_TEMPLATE;
      writeTinyModel(path, 42, { chatTemplate: strict });
      const p = provider({ modelPath: path, sequences: 1 });
      await p.init();
      expect(p.info!.chatTemplate).toBe('gguf');
      const err = await p
        .generate(
          chat([
            { role: 'assistant', content: 'x' },
            { role: 'user', content: 'y' },
          ]),
          never(),
        )
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendResponseError);
      expect((err as BackendResponseError).upstreamStatus).toBe(400);
      expect((err as Error).message).toMatch(/^the chat template failed: .*must start with a user message/);
      const ok = await p.generate(chat([{ role: 'user', content: 'y' }], { maxNewTokens: 2 }), never());
      expect(ok.usage.promptTokens).toBe('<|user|>\ny\n<|assistant|>\n'.length + 1);
      expect(p.load).toEqual({ active: 0, queued: 0 });
    });

    it('a template that cannot be loaded falls back to the plain template, saying why', async () => {
      const path = join(dir, 'tiny-broken-chat.gguf');
      writeTinyModel(path, 42, { chatTemplate: '{% for message in messages %}{{ message.content ' });
      const p = provider({ modelPath: path, sequences: 1 });
      await p.init();
      expect(p.info!.chatTemplate).toBe('plain');
      expect(p.info!.chatTemplateError).toMatch(/\S/);
      const messages: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
      expect(p.renderInput(chat(messages)).prompt).toBe(renderPlainChat(messages));
      const r = await p.generate(chat(messages, { maxNewTokens: 3 }), never());
      expect(r.usage.promptTokens).toBe(renderPlainChat(messages).length + 1);
    });
  });
});
