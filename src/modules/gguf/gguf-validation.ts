/**
 * Checks that a GGUF file's metadata has what llama.cpp needs to load the model without aborting
 * the process (see gguf-reader.ts for why), and reads the figures the engine needs from it.
 */
import {
  type GgufArrayValue,
  GgufFileError,
  type GgufHeader,
  type GgufMetadataValue,
  GgufValueType,
} from './gguf-format';

/**
 * Architectures whose llama.cpp loader needs `<arch>.feed_forward_length` and
 * `<arch>.attention.head_count` (and may abort the process without them). Other architectures
 * get the checks every architecture needs.
 */
const TRANSFORMER_ARCHITECTURES = new Set([
  'llama',
  'qwen2',
  'qwen3',
  'gemma',
  'gemma2',
  'gemma3',
  'phi3',
  'granite',
  'starcoder2',
  'olmo2',
]);

function describeType(t: number): string {
  return GgufValueType[t] ?? `type ${t}`;
}

function isArray(v: GgufMetadataValue | undefined): v is GgufArrayValue {
  return typeof v === 'object' && v !== null && (v as GgufArrayValue).kind === 'array';
}

/**
 * Checks that the metadata has what llama.cpp needs to load the model without aborting.
 * Fills in `trainedContextLength` and `vocabularySize`. Throws GgufFileError.
 */
export function validateGgufHeader(h: GgufHeader): void {
  const { path, metadata: md, architecture: arch } = h;
  const fail = (problem: string): never => {
    throw new GgufFileError(path, problem);
  };
  const positiveInt = (key: string): number => {
    const v = md.get(key);
    if (v === undefined) return fail(`required metadata ${key} is missing`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      return fail(
        `${key} must be a positive integer (got ${isArray(v) ? `an array of ${describeType(v.itemType)}` : String(v)})`,
      );
    }
    return v;
  };
  /** A positive integer, or (per-layer) an array of blockCount positive integers. Returns the first value. */
  const positiveIntOrPerLayer = (key: string, blockCount: number): number => {
    const v = md.get(key);
    if (!isArray(v)) return positiveInt(key);
    if (v.length !== blockCount) fail(`${key} has ${v.length} per-layer values for ${blockCount} layers`);
    if (v.values !== null && !v.values.every((x) => typeof x === 'number' && Number.isInteger(x) && x > 0)) {
      fail(`${key} must contain positive integers`);
    }
    if (v.values === null && v.itemType !== GgufValueType.UINT32 && v.itemType !== GgufValueType.INT32) {
      fail(`${key} must be an array of integers`);
    }
    return (v.values?.[0] as number | undefined) ?? 1;
  };

  h.trainedContextLength = positiveInt(`${arch}.context_length`);
  const embd = positiveInt(`${arch}.embedding_length`);
  const blocks = positiveInt(`${arch}.block_count`);

  if (TRANSFORMER_ARCHITECTURES.has(arch)) {
    positiveIntOrPerLayer(`${arch}.feed_forward_length`, blocks);
    const heads = positiveIntOrPerLayer(`${arch}.attention.head_count`, blocks);
    const kvKey = `${arch}.attention.head_count_kv`;
    if (md.has(kvKey)) {
      const kvHeads = positiveIntOrPerLayer(kvKey, blocks);
      if (!isArray(md.get(kvKey)) && !isArray(md.get(`${arch}.attention.head_count`)) && heads % kvHeads !== 0) {
        fail(`${arch}.attention.head_count (${heads}) is not a multiple of ${kvKey} (${kvHeads})`);
      }
    }
    if (
      !md.has(`${arch}.attention.key_length`) &&
      !isArray(md.get(`${arch}.attention.head_count`)) &&
      embd % heads !== 0
    ) {
      fail(`${arch}.embedding_length (${embd}) is not a multiple of ${arch}.attention.head_count (${heads})`);
    }
  }
  if (arch === 'llama') {
    const eps = md.get('llama.attention.layer_norm_rms_epsilon');
    if (typeof eps !== 'number' || !(eps > 0)) {
      fail('required metadata llama.attention.layer_norm_rms_epsilon is missing or not a positive number');
    }
    if (!h.tensors.some((t) => t.name === 'token_embd.weight')) fail('tensor token_embd.weight is missing');
  }

  const tokModel = md.get('tokenizer.ggml.model');
  if (typeof tokModel !== 'string' || tokModel === '') {
    fail('required metadata tokenizer.ggml.model is missing or not a string');
  }
  const tokens = md.get('tokenizer.ggml.tokens');
  if (!isArray(tokens) || tokens.itemType !== GgufValueType.STRING || tokens.length === 0) {
    return fail('required metadata tokenizer.ggml.tokens is missing or not a non-empty array of strings');
  }
  h.vocabularySize = tokens.length;
  for (const key of ['tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) {
    const v = md.get(key);
    if (v !== undefined && (!isArray(v) || v.length !== tokens.length)) {
      fail(`${key} must be an array with one entry per token (${tokens.length})`);
    }
  }
  // Out-of-range special token ids (bos/eos/…) are not checked: llama.cpp warns and ignores them.
  if (h.tensors.length === 0) fail('the file contains no tensors');
}
