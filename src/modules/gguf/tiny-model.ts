/**
 * Writes a deterministic tiny llama-architecture GGUF (F32, 2 layers, 64-dim, byte-level
 * vocabulary) that node-llama-cpp loads in milliseconds. Its weights are random, so its text is
 * nonsense, but it exercises a real engine: tokenizer, sampler, stop handling, streaming, abort.
 *
 * Vocabulary (260 tokens, `tokenizer.ggml.model = "llama"`, i.e. SentencePiece-style):
 *   0 <unk> (unknown) · 1 <s> (BOS, control) · 2 </s> (EOS, control) · 3..258 <0x00>..<0xFF>
 *   (byte tokens) · 259 "▁" (normal; llama.cpp's SPM tokenizer turns every space into "▁").
 * Every text therefore tokenizes to one token per UTF-8 byte (spaces → "▁"), plus BOS.
 *
 * Making the output readable-ish with random weights: residual-stream dimensions 0..2 are
 * "feature" channels that the attention and FFN blocks never write to (their output rows are
 * zero), so they carry exact per-token facts to the output layer:
 *   dim 0 = a positive constant → acts as a per-token output bias (output column 0);
 *   dim 1 = "the current token is a space/newline" → no double spaces;
 *   dim 2 = +1 vowel / −1 consonant → vowels and consonants tend to alternate.
 * Only "▁", newline and printable ASCII (minus the byte 0x20, whose canonical token is "▁")
 * can be produced: every other output row is zero except a large negative bias, so EOS, control
 * and non-ASCII tokens are never sampled (generations always run to max tokens or a stop string)
 * and the text always round-trips through the tokenizer. Lowercase letters follow English
 * letter frequencies. The other 61 dimensions are random, so the continuation depends on the
 * prompt and on the sampler seed.
 *
 * Chat template: none by default (chat requests then use the embedded engine's plain template);
 * `{chatTemplate}` adds one as `tokenizer.chat_template`, e.g. TINY_CHAT_TEMPLATE. With the
 * byte-level vocabulary its markers are plain bytes, so a rendered prompt of n ASCII characters
 * is still n tokens (+ BOS).
 *
 * Determinism: a seeded 32-bit PRNG and only + − × ÷ (no Math.random, no transcendental
 * functions), so the same seed gives byte-identical files on every platform.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { dirname, resolve } from 'node:path';
import { mulberry32 } from '../../contracts/prng';
import { GgufValueType } from './gguf-format';
import { GgufWriter } from './gguf-writer';

export const TINY_MODEL = {
  name: 'llm-server-tiny',
  vocabSize: 260,
  embeddingLength: 64,
  blockCount: 2,
  feedForwardLength: 128,
  headCount: 4,
  headCountKv: 4,
  contextLength: 4096,
  bosTokenId: 1,
  eosTokenId: 2,
  unknownTokenId: 0,
  spaceTokenId: 259,
} as const;

/**
 * A small Jinja chat template in the style of real ones (BOS from the template, one header per
 * message, a generation prompt): [system "S", user "U"] renders "<s><|system|>\nS\n<|user|>\nU\n<|assistant|>\n".
 */
export const TINY_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}";

/**
 * TINY_CHAT_TEMPLATE with tool calling in the style of real tool-aware templates (tools listed in
 * a system header, calls as `<tool_call>{"name": …, "arguments": …}</tool_call>`, results as
 * `<|tool|>` turns): node-llama-cpp recognises its function-call syntax, so the embedded engine
 * offers tools on a model with this template.
 */
export const TINY_TOOLS_CHAT_TEMPLATE =
  '{{ bos_token }}{% if tools %}<|system|>\nTools:\n{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}' +
  'Call a tool as <tool_call>{"name": ..., "arguments": ...}</tool_call>\n{% endif %}' +
  "{% for message in messages %}{% if message['role'] == 'tool' %}{{ '<|tool|>\n' + message['content'] + '\n' }}" +
  "{% elif message['role'] == 'assistant' and message['tool_calls'] %}{{ '<|assistant|>\n' }}" +
  "{% if message['content'] %}{{ message['content'] }}{% endif %}{% for call in message['tool_calls'] %}" +
  "{{ '<tool_call>{\"name\": \"' + call['function']['name'] + '\", \"arguments\": ' + (call['function']['arguments'] | tojson) + '}</tool_call>' }}" +
  "{% endfor %}{{ '\n' }}{% else %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}{% endif %}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}";

export interface TinyModelOptions {
  /** Written as `tokenizer.chat_template` when set. */
  chatTemplate?: string;
}

/** llama.cpp token types (tokenizer.ggml.token_type). */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

/** Relative English letter frequencies (percent), a..z. */
const LETTER_FREQ = [
  8.2, 1.5, 2.8, 4.3, 12.7, 2.2, 2.0, 6.1, 7.0, 0.15, 0.77, 4.0, 2.4, 6.7, 7.5, 1.9, 0.095, 6.0, 6.3, 9.1, 2.8, 0.98,
  2.4, 0.15, 2.0, 0.074,
];
/** ln(LETTER_FREQ / 12.7) without Math.log (precomputed, rounded): keeps the file platform-exact. */
const LETTER_LOGIT = [
  -0.44, -2.14, -1.51, -1.08, 0, -1.75, -1.85, -0.73, -0.6, -4.44, -2.8, -1.16, -1.67, -0.64, -0.53, -1.9, -4.9, -0.75,
  -0.7, -0.33, -1.51, -2.56, -1.67, -4.44, -1.85, -5.14,
];
void LETTER_FREQ; // documents where LETTER_LOGIT comes from

const byteTokenId = (b: number): number => 3 + b;

function vocabulary(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_TYPE.BYTE);
  }
  tokens.push('\u2581');
  types.push(TOKEN_TYPE.NORMAL);
  return { tokens, scores: tokens.map(() => 0), types };
}

/** The output-layer bias (in logits) of every token that may be generated; others are absent. */
function outputBias(): Map<number, number> {
  const bias = new Map<number, number>();
  const LETTER = 4; // lowercase letters, shifted by their frequency
  bias.set(TINY_MODEL.spaceTokenId, LETTER + 0.6);
  bias.set(byteTokenId(0x0a), LETTER - 4.5); // newline: rare
  for (let b = 0x21; b <= 0x7e; b++) {
    const c = String.fromCharCode(b);
    if (c >= 'a' && c <= 'z') bias.set(byteTokenId(b), LETTER + LETTER_LOGIT[b - 0x61]);
    else if (c >= 'A' && c <= 'Z') bias.set(byteTokenId(b), LETTER - 6);
    else if (c === '.' || c === ',') bias.set(byteTokenId(b), LETTER - 3.5);
    else if (c >= '0' && c <= '9') bias.set(byteTokenId(b), LETTER - 7);
    else bias.set(byteTokenId(b), LETTER - 8);
  }
  return bias;
}

const VOWELS = new Set('aeiouy');

/** Builds the GGUF image of the tiny model for `seed`. */
export function buildTinyModel(seed = 42, options: TinyModelOptions = {}): GgufWriter {
  const { vocabSize: V, embeddingLength: E, blockCount: L, feedForwardLength: F } = TINY_MODEL;
  const H = TINY_MODEL.headCount;
  const headDim = E / H;
  const rand = mulberry32(seed);
  /** Uniform in [-a, a]: std a/√3. */
  const uniform = (a: number): number => (rand() * 2 - 1) * a;
  const fill = (n: number, a: number): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = uniform(a);
    return out;
  };
  /** a for a uniform init with std 1/√fanIn: √3/√fanIn, precomputed for the sizes used. */
  const A_E = 0.2165; // √(3/64)
  const A_F = 0.1531; // √(3/128)
  const FEATURE_DIMS = 3;
  const BIAS_CONST = 4; // dim 0 of every embedding

  const { tokens, scores, types } = vocabulary();
  const w = new GgufWriter();
  w.addString('general.architecture', 'llama');
  w.addString('general.name', TINY_MODEL.name);
  w.addString('general.description', `Deterministic random-weight demo model (seed ${seed}); text is nonsense.`);
  w.addUint32('general.file_type', 0); // ALL_F32
  w.addUint32('llama.vocab_size', V);
  w.addUint32('llama.context_length', TINY_MODEL.contextLength);
  w.addUint32('llama.embedding_length', E);
  w.addUint32('llama.block_count', L);
  w.addUint32('llama.feed_forward_length', F);
  w.addUint32('llama.rope.dimension_count', headDim);
  w.addFloat32('llama.rope.freq_base', 10000);
  w.addUint32('llama.attention.head_count', H);
  w.addUint32('llama.attention.head_count_kv', TINY_MODEL.headCountKv);
  w.addFloat32('llama.attention.layer_norm_rms_epsilon', 1e-5);
  w.addString('tokenizer.ggml.model', 'llama');
  w.addArray('tokenizer.ggml.tokens', GgufValueType.STRING, tokens);
  w.addArray('tokenizer.ggml.scores', GgufValueType.FLOAT32, scores);
  w.addArray('tokenizer.ggml.token_type', GgufValueType.INT32, types);
  w.addUint32('tokenizer.ggml.bos_token_id', TINY_MODEL.bosTokenId);
  w.addUint32('tokenizer.ggml.eos_token_id', TINY_MODEL.eosTokenId);
  w.addUint32('tokenizer.ggml.unknown_token_id', TINY_MODEL.unknownTokenId);
  w.addBool('tokenizer.ggml.add_bos_token', true);
  w.addBool('tokenizer.ggml.add_eos_token', false);
  w.addBool('tokenizer.ggml.add_space_prefix', false);
  if (options.chatTemplate !== undefined) w.addString('tokenizer.chat_template', options.chatTemplate);

  // Token embeddings: rows of E floats. Dims 0..2 are the feature channels described above.
  const embd = new Float32Array(V * E);
  for (let t = 0; t < V; t++) {
    const row = t * E;
    const byte = t >= 3 && t < 259 ? t - 3 : -1;
    const ch = byte >= 0 ? String.fromCharCode(byte) : '';
    embd[row] = BIAS_CONST;
    embd[row + 1] = t === TINY_MODEL.spaceTokenId || byte === 0x0a || byte === 0x20 ? 1 : 0;
    embd[row + 2] = ch >= 'a' && ch <= 'z' ? (VOWELS.has(ch) ? 1 : -1) : 0;
    for (let i = FEATURE_DIMS; i < E; i++) embd[row + i] = uniform(1.732); // std 1
  }

  // Output layer: rows of E floats, logit = row · rmsnorm(x). With dim 0 ≈ BIAS_CONST/rms ≈ 3.5
  // after the final norm, column 0 holds bias/3.5. Tokens that must never appear get a huge
  // negative bias and no random part.
  const bias = outputBias();
  const NORMED_BIAS_DIM = 3.5;
  const RANDOM_LETTER = 0.3;
  const RANDOM_OTHER = 0.1;
  const out = new Float32Array(V * E);
  for (let t = 0; t < V; t++) {
    const row = t * E;
    const b = bias.get(t);
    if (b === undefined) {
      out[row] = -30;
      continue;
    }
    out[row] = b / NORMED_BIAS_DIM;
    const byte = t >= 3 && t < 259 ? t - 3 : -1;
    const ch = byte >= 0 ? String.fromCharCode(byte) : '';
    const isLetter = ch >= 'a' && ch <= 'z';
    // After a space/newline: no space, newline or punctuation; letters are boosted.
    out[row + 1] = isLetter ? 1.5 : -6;
    // Vowel/consonant alternation.
    out[row + 2] = isLetter ? (VOWELS.has(ch) ? -0.6 : 0.6) : 0;
    // The random, context-dependent part: strong for letters and space, weak for the rest.
    const a = isLetter || t === TINY_MODEL.spaceTokenId ? RANDOM_LETTER : RANDOM_OTHER;
    for (let i = FEATURE_DIMS; i < E; i++) out[row + i] = uniform(a);
  }

  w.addTensorF32('token_embd.weight', [E, V], embd);
  w.addTensorF32('output_norm.weight', [E], new Float32Array(E).fill(1));
  w.addTensorF32('output.weight', [E, V], out);

  for (let l = 0; l < L; l++) {
    const p = `blk.${l}`;
    const attnOut = fill(E * E, A_E);
    const ffnDown = fill(E * F, A_F);
    // Rows 0..2 (outputs into the feature dims) stay zero so the features pass through intact.
    attnOut.fill(0, 0, FEATURE_DIMS * E);
    ffnDown.fill(0, 0, FEATURE_DIMS * F);
    w.addTensorF32(`${p}.attn_norm.weight`, [E], new Float32Array(E).fill(1));
    w.addTensorF32(`${p}.attn_q.weight`, [E, E], fill(E * E, A_E));
    w.addTensorF32(`${p}.attn_k.weight`, [E, E], fill(E * E, A_E));
    w.addTensorF32(`${p}.attn_v.weight`, [E, E], fill(E * E, A_E));
    w.addTensorF32(`${p}.attn_output.weight`, [E, E], attnOut);
    w.addTensorF32(`${p}.ffn_norm.weight`, [E], new Float32Array(E).fill(1));
    w.addTensorF32(`${p}.ffn_gate.weight`, [E, F], fill(E * F, A_E));
    w.addTensorF32(`${p}.ffn_up.weight`, [E, F], fill(E * F, A_E));
    w.addTensorF32(`${p}.ffn_down.weight`, [F, E], ffnDown);
  }
  return w;
}

/**
 * Writes the tiny model to `path` atomically (temporary file in the same directory, fsync,
 * rename), creating the directory if needed. Same seed → byte-identical file.
 * Returns the absolute path and the size in bytes.
 */
export function writeTinyModel(
  path: string,
  seed = 42,
  options: TinyModelOptions = {},
): { path: string; bytes: number } {
  if (endianness() !== 'LE') throw new Error('writeTinyModel: big-endian hosts are not supported');
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`writeTinyModel: seed must be an integer in [0, 2^32), got ${seed}`);
  }
  const target = resolve(path);
  mkdirSync(dirname(target), { recursive: true });
  const chunks = buildTinyModel(seed, options).toChunks();
  const tmp = `${target}.tmp-${process.pid}-${Date.now().toString(36)}`;
  let bytes = 0;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    for (const c of chunks) {
      let off = 0;
      while (off < c.length) off += writeSync(fd, c, off, c.length - off);
      bytes += c.length;
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return { path: target, bytes };
}
