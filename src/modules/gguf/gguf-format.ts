/**
 * The GGUF v3 format, shared by the reader (gguf-reader.ts) and the writer (gguf-writer.ts):
 * its constants, value types and sizes, and the shapes a file's header is read into.
 *
 * Layout (all little-endian):
 *   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
 *   kv_count × (string key | u32 value_type | value)
 *   tensor_count × (string name | u32 n_dims | u64 dims[n_dims] | u32 ggml_type | u64 offset)
 *   padding to `alignment` | tensor data (each tensor starts at a multiple of `alignment`)
 * A string is u64 byte length + UTF-8 bytes (no terminator). Tensor dims are in ggml order
 * (ne0 = the contiguous, innermost dimension first).
 */

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** GGUF metadata value types (gguf_type in ggml). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** The ggml tensor type this writer emits. */
export const GGML_TYPE_F32 = 0;

export type GgufScalarType = Exclude<GgufValueType, GgufValueType.ARRAY>;

/** [block size, bytes per block] of the ggml types llama.cpp currently knows (checked against its bindings). */
export const GGML_TYPE_SIZES: Record<number, [number, number]> = {
  0: [1, 4], // F32
  1: [1, 2], // F16
  2: [32, 18], // Q4_0
  3: [32, 20], // Q4_1
  6: [32, 22], // Q5_0
  7: [32, 24], // Q5_1
  8: [32, 34], // Q8_0
  9: [32, 36], // Q8_1
  10: [256, 84], // Q2_K
  11: [256, 110], // Q3_K
  12: [256, 144], // Q4_K
  13: [256, 176], // Q5_K
  14: [256, 210], // Q6_K
  15: [256, 292], // Q8_K
  16: [256, 66], // IQ2_XXS
  17: [256, 74], // IQ2_XS
  18: [256, 98], // IQ3_XXS
  19: [256, 50], // IQ1_S
  20: [32, 18], // IQ4_NL
  21: [256, 110], // IQ3_S
  22: [256, 82], // IQ2_S
  23: [256, 136], // IQ4_XS
  24: [1, 1], // I8
  25: [1, 2], // I16
  26: [1, 4], // I32
  27: [1, 8], // I64
  28: [1, 8], // F64
  29: [256, 56], // IQ1_M
  30: [1, 2], // BF16
  34: [256, 54], // TQ1_0
  35: [256, 66], // TQ2_0
  39: [32, 17], // MXFP4
  40: [64, 36], // NVFP4
  41: [128, 18], // Q1_0
  42: [64, 18], // Q2_0
};

export const SCALAR_SIZES: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

export class GgufFileError extends Error {
  override readonly name = 'GgufFileError';
  constructor(
    readonly path: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`Invalid GGUF model file ${path}: ${problem}`, options);
  }
}

export interface GgufArrayValue {
  kind: 'array';
  itemType: GgufValueType;
  length: number;
  /** Kept only for short arrays (≤ KEEP_ARRAY_VALUES items); big ones are only counted. */
  values: unknown[] | null;
}

export type GgufMetadataValue = number | bigint | boolean | string | GgufArrayValue;

export interface GgufTensorInfo {
  name: string;
  /** ggml order (ne0 first). */
  dims: number[];
  ggmlType: number;
  /** Relative to the start of the data section. */
  offset: number;
  /** null when the ggml type is unknown to this reader. */
  byteLength: number | null;
}

export interface GgufHeader {
  path: string;
  fileSize: number;
  version: number;
  architecture: string;
  metadata: Map<string, GgufMetadataValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute file offset of the tensor data section. */
  dataOffset: number;
  /** `<arch>.context_length`: the context the model was trained for. */
  trainedContextLength: number;
  /** Length of tokenizer.ggml.tokens. */
  vocabularySize: number;
}
