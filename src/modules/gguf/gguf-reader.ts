/**
 * Reads and validates a GGUF file's header, metadata and tensor table WITHOUT node-llama-cpp.
 *
 * Why: llama.cpp aborts the whole process (GGML_ASSERT → abort()) on some malformed models,
 * e.g. a llama GGUF without `llama.feed_forward_length` or `llama.attention.head_count`. So the
 * provider checks the file here first and turns every problem into an ordinary Error whose
 * message names the file and the problem, before the engine ever sees it.
 *
 * Reads only what it needs (header, metadata, tensor infos: a few MB for real models; big
 * arrays such as the vocabulary are counted and type-checked, not kept) and checks that every
 * tensor's data lies inside the file, which also catches truncated downloads.
 */
import { open, type FileHandle } from 'node:fs/promises';
import {
  GGML_TYPE_SIZES,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgufFileError,
  type GgufHeader,
  type GgufMetadataValue,
  type GgufTensorInfo,
  GgufValueType,
  SCALAR_SIZES,
} from './gguf-format';
import { validateGgufHeader } from './gguf-validation';

const KEEP_ARRAY_VALUES = 64;
const MAX_STRING_BYTES = 64 * 1024 * 1024;
const GGML_MAX_DIMS = 4;
const READ_CHUNK = 1024 * 1024;

class Truncated extends Error {}

/** Sequential little-endian reader over a file handle, buffering READ_CHUNK at a time. */
class GgufReader {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  pos = 0;
  constructor(
    private readonly fh: FileHandle,
    readonly fileSize: number,
  ) {}

  has(n: number): boolean {
    return this.pos + n <= this.bufStart + this.buf.length;
  }

  /** Makes [pos, pos+n) available; throws Truncated when the file ends first. */
  async fill(n: number): Promise<void> {
    if (this.pos + n > this.fileSize) throw new Truncated();
    if (this.has(n)) return;
    const size = Math.min(Math.max(n, READ_CHUNK), this.fileSize - this.pos);
    const next = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await this.fh.read(next, got, size - got, this.pos + got);
      if (bytesRead === 0) throw new Truncated();
      got += bytesRead;
    }
    this.buf = next;
    this.bufStart = this.pos;
  }

  private at(n: number): number {
    const off = this.pos - this.bufStart;
    this.pos += n;
    return off;
  }
  u8(): number {
    return this.buf.readUInt8(this.at(1));
  }
  u32(): number {
    return this.buf.readUInt32LE(this.at(4));
  }
  /** A u64 that must fit a JS number (lengths, counts, offsets). */
  u64n(what: string): number {
    const v = this.buf.readBigUInt64LE(this.at(8));
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`${what} is too large (${v})`);
    return Number(v);
  }
  scalar(type: GgufValueType): number | bigint | boolean {
    switch (type) {
      case GgufValueType.UINT8:
        return this.buf.readUInt8(this.at(1));
      case GgufValueType.INT8:
        return this.buf.readInt8(this.at(1));
      case GgufValueType.UINT16:
        return this.buf.readUInt16LE(this.at(2));
      case GgufValueType.INT16:
        return this.buf.readInt16LE(this.at(2));
      case GgufValueType.UINT32:
        return this.buf.readUInt32LE(this.at(4));
      case GgufValueType.INT32:
        return this.buf.readInt32LE(this.at(4));
      case GgufValueType.FLOAT32:
        return this.buf.readFloatLE(this.at(4));
      case GgufValueType.BOOL:
        return this.buf.readUInt8(this.at(1)) !== 0;
      case GgufValueType.UINT64: {
        const v = this.buf.readBigUInt64LE(this.at(8));
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case GgufValueType.INT64: {
        const v = this.buf.readBigInt64LE(this.at(8));
        return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
      }
      case GgufValueType.FLOAT64:
        return this.buf.readDoubleLE(this.at(8));
      default:
        throw new RangeError(`not a scalar type: ${type}`);
    }
  }
  /** Reads a GGUF string (u64 length + UTF-8); `keep = false` skips its bytes. */
  async str(what: string, keep = true): Promise<string> {
    if (!this.has(8)) await this.fill(8);
    const len = this.u64n(`${what} length`);
    if (len > MAX_STRING_BYTES) throw new RangeError(`${what} is ${len} bytes long`);
    if (!this.has(len)) await this.fill(len);
    const off = this.at(len);
    return keep ? this.buf.toString('utf8', off, off + len) : '';
  }
}

async function readValue(r: GgufReader, type: number, key: string): Promise<GgufMetadataValue> {
  if (type === GgufValueType.STRING) return r.str(`value of ${key}`);
  if (type === GgufValueType.ARRAY) {
    if (!r.has(12)) await r.fill(12);
    const itemType = r.u32();
    const length = r.u64n(`length of ${key}`);
    const keep = length <= KEEP_ARRAY_VALUES;
    const values: unknown[] | null = keep ? [] : null;
    if (itemType === GgufValueType.STRING) {
      // At least 8 bytes per string: a cheap sanity bound before looping.
      if (length * 8 > r.fileSize - r.pos) throw new Truncated();
      for (let i = 0; i < length; i++) {
        const s = await r.str(`item ${i} of ${key}`, keep);
        values?.push(s);
      }
    } else if (itemType === GgufValueType.ARRAY) {
      throw new RangeError(`${key} is an array of arrays, which llama.cpp does not support`);
    } else {
      const size = SCALAR_SIZES[itemType as GgufValueType];
      if (size === undefined) throw new RangeError(`${key} has an unknown array item type ${itemType}`);
      if (length * size > r.fileSize - r.pos) throw new Truncated();
      if (keep) {
        await r.fill(length * size);
        for (let i = 0; i < length; i++) values!.push(r.scalar(itemType));
      } else {
        // Skip in bounded steps so huge arrays never need one huge buffer.
        let left = length;
        while (left > 0) {
          const n = Math.min(left, Math.floor(READ_CHUNK / size));
          await r.fill(n * size);
          r.pos += n * size;
          left -= n;
        }
      }
    }
    return { kind: 'array', itemType, length, values };
  }
  const size = SCALAR_SIZES[type as GgufValueType];
  if (size === undefined) throw new RangeError(`${key} has an unknown value type ${type}`);
  if (!r.has(size)) await r.fill(size);
  return r.scalar(type);
}

/**
 * Parses the header, metadata and tensor table, and checks the file's structure (magic,
 * version, bounds, alignment, tensor data inside the file). Throws GgufFileError.
 */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem = code === 'ENOENT' ? 'file not found' : `cannot open it (${code ?? String(err)})`;
    throw new GgufFileError(path, problem, { cause: err });
  }
  try {
    const stat = await fh.stat();
    if (!stat.isFile()) throw new GgufFileError(path, 'not a regular file');
    const r = new GgufReader(fh, stat.size);
    try {
      return await parse(path, r);
    } catch (err) {
      if (err instanceof GgufFileError) throw err;
      if (err instanceof Truncated) {
        throw new GgufFileError(path, `truncated or corrupt (unexpected end of file at byte ${r.pos} of ${stat.size})`);
      }
      if (err instanceof RangeError) throw new GgufFileError(path, `corrupt: ${err.message}`, { cause: err });
      throw new GgufFileError(path, `cannot read it (${(err as Error).message})`, { cause: err });
    }
  } finally {
    await fh.close();
  }
}

async function parse(path: string, r: GgufReader): Promise<GgufHeader> {
  if (r.fileSize < 24) {
    throw new GgufFileError(path, `too small to be a GGUF file (${r.fileSize} bytes)`);
  }
  await r.fill(24);
  const magic = r.u32();
  if (magic !== GGUF_MAGIC) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(magic);
    throw new GgufFileError(path, `not a GGUF file (magic ${JSON.stringify(b.toString('latin1'))}, expected "GGUF")`);
  }
  const version = r.u32();
  if (version !== 2 && version !== 3) {
    throw new GgufFileError(path, `unsupported GGUF version ${version} (expected 2 or 3)`);
  }
  const tensorCount = r.u64n('tensor count');
  const kvCount = r.u64n('metadata count');
  // Every KV needs ≥ 13 bytes and every tensor info ≥ 29: reject absurd counts before looping.
  if (kvCount * 13 + tensorCount * 29 > r.fileSize) throw new Truncated();

  const metadata = new Map<string, GgufMetadataValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = await r.str(`metadata key ${i}`);
    if (!r.has(4)) await r.fill(4);
    const type = r.u32();
    const value = await readValue(r, type, key);
    if (metadata.has(key)) throw new GgufFileError(path, `duplicate metadata key ${key}`);
    metadata.set(key, value);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get('general.alignment');
  if (al !== undefined) {
    if (typeof al !== 'number' || !Number.isInteger(al) || al <= 0 || (al & (al - 1)) !== 0) {
      throw new GgufFileError(path, `general.alignment must be a power of two (got ${String(al)})`);
    }
    alignment = al;
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = await r.str(`tensor name ${i}`);
    if (!r.has(4)) await r.fill(4);
    const nDims = r.u32();
    if (nDims < 1 || nDims > GGML_MAX_DIMS) {
      throw new GgufFileError(path, `tensor ${name} has ${nDims} dimensions (1 to ${GGML_MAX_DIMS} allowed)`);
    }
    await r.fill(nDims * 8 + 12);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(r.u64n(`dimension ${d} of tensor ${name}`));
    const ggmlType = r.u32();
    const offset = r.u64n(`offset of tensor ${name}`);
    if (names.has(name)) throw new GgufFileError(path, `duplicate tensor ${name}`);
    names.add(name);
    if (offset % alignment !== 0) {
      throw new GgufFileError(path, `tensor ${name} is not aligned to ${alignment} bytes`);
    }
    let byteLength: number | null = null;
    const ts = GGML_TYPE_SIZES[ggmlType];
    if (ts) {
      const [block, bytes] = ts;
      if (dims[0] % block !== 0) {
        throw new GgufFileError(
          path,
          `tensor ${name}: first dimension ${dims[0]} is not a multiple of the block size ${block}`,
        );
      }
      byteLength = (dims[0] / block) * bytes * dims.slice(1).reduce((a, b) => a * b, 1);
    }
    tensors.push({ name, dims, ggmlType, offset, byteLength });
  }

  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  for (const t of tensors) {
    const end = dataOffset + t.offset + (t.byteLength ?? 0);
    if (end > r.fileSize) {
      throw new GgufFileError(
        path,
        `truncated: tensor ${t.name} needs bytes up to ${end} but the file has ${r.fileSize}`,
      );
    }
  }

  const architecture = metadata.get('general.architecture');
  if (typeof architecture !== 'string' || architecture === '') {
    throw new GgufFileError(path, 'general.architecture is missing or not a string');
  }
  const header: GgufHeader = {
    path,
    fileSize: r.fileSize,
    version,
    architecture,
    metadata,
    tensors,
    alignment,
    dataOffset,
    trainedContextLength: 0,
    vocabularySize: 0,
  };
  validateGgufHeader(header);
  return header;
}
