// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each tensor
// name to { dtype, shape, data_offsets: [begin, end) relative to the end of the header }, then the
// raw little-endian data. Tensors are read one at a time with positioned reads, so a checkpoint
// larger than a Node buffer can be loaded.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EngineError } from './errors.js';

export type StDType = 'BF16' | 'F16' | 'F32';
export type StArray = Uint16Array | Float32Array;

const ELEMENT_BYTES: Record<StDType, number> = { BF16: 2, F16: 2, F32: 4 };
/** Headers larger than this are malformed (real ones are a few MB at most). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface StTensorInfo {
  readonly name: string;
  readonly dtype: StDType;
  readonly shape: readonly number[];
  /** Byte offset of the data in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
}

export function numElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function bad(file: string, message: string): never {
  throw new EngineError('safetensors', `${file}: ${message}`);
}

/** Parses the header of one safetensors file. */
export function readSafetensorsHeader(file: string): { tensors: Map<string, StTensorInfo>; metadata: Record<string, string> } {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const lenBuf = Buffer.alloc(8);
    if (readSync(fd, lenBuf, 0, 8, 0) !== 8) bad(file, 'shorter than the 8-byte header length');
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen <= 1 || headerLen > MAX_HEADER_BYTES || 8 + headerLen > size) bad(file, `header length ${headerLen} does not fit the file (${size} bytes)`);
    const headerBuf = Buffer.alloc(headerLen);
    readSync(fd, headerBuf, 0, headerLen, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(headerBuf.toString('utf8'));
    } catch (e) {
      bad(file, `header is not JSON (${(e as Error).message})`);
    }
    const dataStart = 8 + headerLen;
    const tensors = new Map<string, StTensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(header)) {
      if (name === '__metadata__') {
        metadata = value as Record<string, string>;
        continue;
      }
      const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (v.dtype !== 'BF16' && v.dtype !== 'F16' && v.dtype !== 'F32') bad(file, `${name}: dtype = ${String(v.dtype)}: allowed: BF16, F16, F32`);
      if (!Array.isArray(v.shape) || !v.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(file, `${name}: shape ${JSON.stringify(v.shape)} is not a list of sizes`);
      const offsets = v.data_offsets;
      if (!Array.isArray(offsets) || offsets.length !== 2) bad(file, `${name}: data_offsets must be [begin, end]`);
      const [begin, end] = offsets as number[];
      const byteLength = numElements(v.shape as number[]) * ELEMENT_BYTES[v.dtype];
      if (end - begin !== byteLength) bad(file, `${name}: data_offsets span ${end - begin} bytes, the shape needs ${byteLength}`);
      if (begin < 0 || dataStart + end > size) bad(file, `${name}: data [${begin}, ${end}) runs past the end of the file`);
      tensors.set(name, { name, dtype: v.dtype, shape: v.shape as number[], fileOffset: dataStart + begin, byteLength });
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

/** Reads one tensor's raw data (BF16/F16 as Uint16Array bits, F32 as Float32Array). */
export function readTensorData(file: string, info: StTensorInfo): StArray {
  const out = info.dtype === 'F32' ? new Float32Array(info.byteLength / 4) : new Uint16Array(info.byteLength / 2);
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const fd = openSync(file, 'r');
  try {
    const CHUNK = 1 << 30;
    let done = 0;
    // Bound: each read returns > 0 bytes or we fail; at most byteLength / 1 iterations.
    while (done < info.byteLength) {
      const n = readSync(fd, bytes, done, Math.min(CHUNK, info.byteLength - done), info.fileOffset + done);
      if (n <= 0) bad(file, `${info.name}: unexpected end of file`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** A checkpoint: one `model.safetensors`, or shards listed by `model.safetensors.index.json`. */
export interface Checkpoint {
  /** Tensor name → the file holding it and where. */
  readonly tensors: ReadonlyMap<string, { file: string; info: StTensorInfo }>;
}

export function openCheckpoint(dir: string): Checkpoint {
  const index = join(dir, 'model.safetensors.index.json');
  const single = join(dir, 'model.safetensors');
  const files: string[] = [];
  if (existsSync(index)) {
    let parsed: { weight_map?: Record<string, string> };
    try {
      parsed = JSON.parse(readFileSync(index, 'utf8'));
    } catch (e) {
      throw new EngineError('checkpoint', `${index}: not JSON (${(e as Error).message})`);
    }
    if (parsed.weight_map === undefined) throw new EngineError('checkpoint', `${index}: weight_map is missing`);
    for (const f of new Set(Object.values(parsed.weight_map))) files.push(join(dir, f));
  } else if (existsSync(single)) {
    files.push(single);
  } else {
    throw new EngineError('checkpoint', `${dir}: neither model.safetensors nor model.safetensors.index.json exists`);
  }
  const tensors = new Map<string, { file: string; info: StTensorInfo }>();
  for (const file of files.sort()) {
    if (!existsSync(file)) throw new EngineError('checkpoint', `${file}: listed in the index but missing`);
    for (const [name, info] of readSafetensorsHeader(file).tensors) tensors.set(name, { file, info });
  }
  return { tensors };
}

export interface StEntry {
  readonly name: string;
  readonly dtype: StDType;
  readonly shape: readonly number[];
  /** Produces the data when it is written (so a large model is never all in memory). */
  readonly data: () => StArray;
}

/**
 * Writes a safetensors file. Tensors are laid out in the given order; the header is padded with
 * spaces to a multiple of 8 bytes so every tensor starts aligned.
 */
export function writeSafetensors(file: string, entries: readonly StEntry[], metadata: Record<string, string> = {}): void {
  if (!existsSync(dirname(file))) throw new EngineError('safetensors', `${file}: folder does not exist`);
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const e of entries) {
    const bytes = numElements(e.shape) * ELEMENT_BYTES[e.dtype];
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const fd = openSync(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(headerBytes.length));
    writeSync(fd, len);
    writeSync(fd, headerBytes);
    for (const e of entries) {
      const data = e.data();
      const want = numElements(e.shape) * ELEMENT_BYTES[e.dtype];
      const isF32 = data instanceof Float32Array;
      if (data.byteLength !== want || isF32 !== (e.dtype === 'F32')) {
        throw new EngineError('safetensors', `${e.name}: data has ${data.byteLength} bytes of ${data.constructor.name}, ${e.dtype} ${JSON.stringify(e.shape)} needs ${want}`);
      }
      let done = 0;
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      // Bound: writeSync writes > 0 bytes per call.
      while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(1 << 30, bytes.length - done));
    }
  } finally {
    closeSync(fd);
  }
}
