/**
 * A small, dependency-free GGUF v3 writer: metadata key/values of the scalar, string and array
 * types, F32 tensors, and alignment. Enough to write a tiny llama model that llama.cpp loads;
 * not a general converter (no quantisation, no big-endian files).
 * The layout is in gguf-format.ts.
 */
import { GGML_TYPE_F32, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, GgufValueType } from './gguf-format';

export type GgufScalarType = Exclude<GgufValueType, GgufValueType.ARRAY>;

interface MetadataEntry {
  key: string;
  type: GgufValueType;
  /** For arrays: the element type. */
  itemType?: GgufScalarType;
  value: unknown;
}

interface TensorEntry {
  name: string;
  dims: number[];
  data: Float32Array;
}

const utf8 = new TextEncoder();

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Growable little-endian byte buffer for the header part of the file. */
class ByteSink {
  private buf = Buffer.alloc(4096);
  private len = 0;

  get length(): number {
    return this.len;
  }

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf.writeUInt8(v, this.len);
    this.len += 1;
  }
  i8(v: number): void {
    this.ensure(1);
    this.buf.writeInt8(v, this.len);
    this.len += 1;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.len);
    this.len += 2;
  }
  i16(v: number): void {
    this.ensure(2);
    this.buf.writeInt16LE(v, this.len);
    this.len += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.len);
    this.len += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.len);
    this.len += 4;
  }
  f32(v: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.len);
    this.len += 4;
  }
  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.len);
    this.len += 8;
  }
  u64(v: number | bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.len);
    this.len += 8;
  }
  i64(v: number | bigint): void {
    this.ensure(8);
    this.buf.writeBigInt64LE(BigInt(v), this.len);
    this.len += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  str(s: string): void {
    const b = utf8.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  zeros(n: number): void {
    this.ensure(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
  }
  toBuffer(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

function writeScalar(sink: ByteSink, type: GgufScalarType, value: unknown): void {
  switch (type) {
    case GgufValueType.UINT8:
      return sink.u8(value as number);
    case GgufValueType.INT8:
      return sink.i8(value as number);
    case GgufValueType.UINT16:
      return sink.u16(value as number);
    case GgufValueType.INT16:
      return sink.i16(value as number);
    case GgufValueType.UINT32:
      return sink.u32(value as number);
    case GgufValueType.INT32:
      return sink.i32(value as number);
    case GgufValueType.FLOAT32:
      return sink.f32(value as number);
    case GgufValueType.BOOL:
      return sink.u8(value ? 1 : 0);
    case GgufValueType.STRING:
      return sink.str(value as string);
    case GgufValueType.UINT64:
      return sink.u64(value as number | bigint);
    case GgufValueType.INT64:
      return sink.i64(value as number | bigint);
    case GgufValueType.FLOAT64:
      return sink.f64(value as number);
  }
}

function checkInteger(key: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`GGUF key ${key}: ${v} is not an integer in [${min}, ${max}]`);
  }
}

/**
 * Collects metadata and F32 tensors, then serialises them as one GGUF v3 file image.
 * Keys are written in insertion order; tensors in insertion order, each aligned.
 */
export class GgufWriter {
  private readonly metadata: MetadataEntry[] = [];
  private readonly keys = new Set<string>();
  private readonly tensors: TensorEntry[] = [];
  private readonly tensorNames = new Set<string>();

  constructor(readonly alignment: number = GGUF_DEFAULT_ALIGNMENT) {
    if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
      throw new RangeError(`GGUF alignment must be a power of two, got ${alignment}`);
    }
    if (alignment !== GGUF_DEFAULT_ALIGNMENT) this.addUint32('general.alignment', alignment);
  }

  private add(entry: MetadataEntry): this {
    if (this.keys.has(entry.key)) throw new Error(`GGUF key ${entry.key} added twice`);
    this.keys.add(entry.key);
    this.metadata.push(entry);
    return this;
  }

  addUint8(key: string, v: number): this {
    checkInteger(key, v, 0, 0xff);
    return this.add({ key, type: GgufValueType.UINT8, value: v });
  }
  addInt8(key: string, v: number): this {
    checkInteger(key, v, -0x80, 0x7f);
    return this.add({ key, type: GgufValueType.INT8, value: v });
  }
  addUint16(key: string, v: number): this {
    checkInteger(key, v, 0, 0xffff);
    return this.add({ key, type: GgufValueType.UINT16, value: v });
  }
  addInt16(key: string, v: number): this {
    checkInteger(key, v, -0x8000, 0x7fff);
    return this.add({ key, type: GgufValueType.INT16, value: v });
  }
  addUint32(key: string, v: number): this {
    checkInteger(key, v, 0, 0xffffffff);
    return this.add({ key, type: GgufValueType.UINT32, value: v });
  }
  addInt32(key: string, v: number): this {
    checkInteger(key, v, -0x80000000, 0x7fffffff);
    return this.add({ key, type: GgufValueType.INT32, value: v });
  }
  addUint64(key: string, v: number | bigint): this {
    return this.add({ key, type: GgufValueType.UINT64, value: v });
  }
  addInt64(key: string, v: number | bigint): this {
    return this.add({ key, type: GgufValueType.INT64, value: v });
  }
  addFloat32(key: string, v: number): this {
    return this.add({ key, type: GgufValueType.FLOAT32, value: v });
  }
  addFloat64(key: string, v: number): this {
    return this.add({ key, type: GgufValueType.FLOAT64, value: v });
  }
  addBool(key: string, v: boolean): this {
    return this.add({ key, type: GgufValueType.BOOL, value: v });
  }
  addString(key: string, v: string): this {
    return this.add({ key, type: GgufValueType.STRING, value: v });
  }
  /** An array of one scalar type (nested arrays are not supported by llama.cpp either). */
  addArray(key: string, itemType: GgufScalarType, values: ArrayLike<unknown>): this {
    return this.add({ key, type: GgufValueType.ARRAY, itemType, value: values });
  }

  /** Removes a metadata key (e.g. to write a deliberately incomplete file). Returns whether it existed. */
  removeMetadata(key: string): boolean {
    const i = this.metadata.findIndex((m) => m.key === key);
    if (i < 0) return false;
    this.metadata.splice(i, 1);
    this.keys.delete(key);
    return true;
  }

  /**
   * Adds an F32 tensor. `dims` are in ggml order: for a weight matrix applied as y = W·x with
   * x of length n_in and y of length n_out, dims = [n_in, n_out] and `data` holds n_out rows
   * of n_in floats.
   */
  addTensorF32(name: string, dims: number[], data: Float32Array): this {
    if (this.tensorNames.has(name)) throw new Error(`GGUF tensor ${name} added twice`);
    if (dims.length < 1 || dims.length > 4) throw new RangeError(`tensor ${name}: 1 to 4 dims`);
    const n = dims.reduce((a, b) => a * b, 1);
    if (!dims.every((d) => Number.isInteger(d) && d > 0) || n !== data.length) {
      throw new RangeError(`tensor ${name}: dims [${dims.join(', ')}] do not match ${data.length} values`);
    }
    this.tensorNames.add(name);
    this.tensors.push({ name, dims: [...dims], data });
    return this;
  }

  /** Serialises the whole file. The result is a list of chunks to write in order. */
  toChunks(): Buffer[] {
    const head = new ByteSink();
    head.u32(GGUF_MAGIC);
    head.u32(GGUF_VERSION);
    head.u64(this.tensors.length);
    head.u64(this.metadata.length);

    for (const m of this.metadata) {
      head.str(m.key);
      head.u32(m.type);
      if (m.type === GgufValueType.ARRAY) {
        const values = m.value as ArrayLike<unknown>;
        head.u32(m.itemType!);
        head.u64(values.length);
        for (let i = 0; i < values.length; i++) writeScalar(head, m.itemType!, values[i]);
      } else {
        writeScalar(head, m.type as GgufScalarType, m.value);
      }
    }

    let offset = 0;
    for (const t of this.tensors) {
      head.str(t.name);
      head.u32(t.dims.length);
      for (const d of t.dims) head.u64(d);
      head.u32(GGML_TYPE_F32);
      head.u64(offset);
      offset = alignUp(offset + t.data.byteLength, this.alignment);
    }
    head.zeros(alignUp(head.length, this.alignment) - head.length);

    const chunks: Buffer[] = [head.toBuffer()];
    for (const t of this.tensors) {
      // Float32Array is host-endian; GGUF is little-endian (every platform Node supports here).
      const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      chunks.push(Buffer.from(bytes)); // copy: the caller may reuse its arrays
      const pad = alignUp(t.data.byteLength, this.alignment) - t.data.byteLength;
      if (pad > 0) chunks.push(Buffer.alloc(pad));
    }
    return chunks;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.toChunks());
  }
}
