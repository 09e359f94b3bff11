// Stratos native ops: a typed front for the addon in native/build (CPU references always; CUDA
// kernels when built with nvcc and run on a machine with a GPU).
//
// Every argument is checked here and a bad one throws a NativeError naming the op, the argument,
// what it got and what it needs; the C++ side copies the values into plain structs and runs.
//
// Two backends with one argument shape per op:
//   cpu(): tensors are host typed arrays (bf16/f16 as Uint16Array of raw bits, fp8 as Uint8Array,
//          f32 as Float32Array, indices as Int32Array); outputs are allocated when not given.
//   gpu(): tensors are DeviceBuffers (raw device memory + byte length); every output must be
//          given; work is queued on `stream` (default: the legacy default stream) and returns
//          before it finishes. Index arrays live on the device, so their contents are not checked
//          here; the kernels skip out-of-range page ids and slots instead of reading past memory.
//
// KV cache layout everywhere: [numPages, numKvHeads, pageSize, headDim].
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------------------------
// Errors

export type NativeErrorCode =
  | 'bad_argument'
  | 'not_built' // no .node file
  | 'load_failed' // the .node exists but did not load
  | 'no_cuda_build' // built without nvcc
  | 'no_gpu' // no device (or no driver at all)
  | 'driver_too_old' // a driver older than the CUDA runtime the addon was built with
  | 'no_cublas' // built where cuBLAS was missing
  | 'cuda_error';

export class NativeError extends Error {
  readonly code: NativeErrorCode;
  constructor(code: NativeErrorCode, message: string) {
    super(message);
    this.name = 'NativeError';
    this.code = code;
  }
}

function fail(op: string, message: string): never {
  throw new NativeError('bad_argument', `${op}: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Element types

export type DType = 'f32' | 'bf16' | 'f16' | 'fp8e4m3';
/** Activation types that the CUDA kernels take (the CPU references also take f32). */
export type ActDType = 'f32' | 'bf16' | 'f16';
/** Cache types: bf16/f16/fp8 on the GPU; the CPU references also take f32. */
export type KvDType = 'f32' | 'bf16' | 'f16' | 'fp8e4m3';

const DTYPE_CODE: Record<DType | 'i32', number> = { f32: 0, bf16: 1, f16: 2, fp8e4m3: 3, i32: 4 };
export const DTYPE_BYTES: Record<DType, number> = { f32: 4, bf16: 2, f16: 2, fp8e4m3: 1 };

export type HostArray = Float32Array | Uint16Array | Uint8Array;
export type HostArrayOf<D extends DType> = D extends 'f32' ? Float32Array : D extends 'fp8e4m3' ? Uint8Array : Uint16Array;

export function allocHost<D extends DType>(dtype: D, n: number): HostArrayOf<D> {
  if (dtype === 'f32') return new Float32Array(n) as HostArrayOf<D>;
  if (dtype === 'fp8e4m3') return new Uint8Array(n) as HostArrayOf<D>;
  return new Uint16Array(n) as HostArrayOf<D>;
}

// Host conversions matching the device's rounding (round to nearest even; fp8 saturates at 448).
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function f32ToBf16(v: number): number {
  f32Scratch[0] = v;
  const u = u32Scratch[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
export function bf16ToF32(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0];
}
export function f32ToF16(v: number): number {
  f32Scratch[0] = v;
  const u = u32Scratch[0];
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {
    if (a < 0x33000000) return sign;
    const mant = (a & 0x7fffff) | 0x800000;
    const shift = 126 - (a >>> 23);
    let q = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1) === 1)) q += 1;
    return sign | q;
  }
  const r = a - 0x38000000;
  let q = r >>> 13;
  const rem = r & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1) === 1)) q += 1;
  return sign | q;
}
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}
export function f32ToFp8e4m3(v: number): number {
  f32Scratch[0] = v;
  const x = f32Scratch[0];
  const sign = u32Scratch[0] >>> 31 ? 0x80 : 0;
  if (Number.isNaN(x)) return sign | 0x7f;
  const a = Math.abs(x);
  if (a >= 448) return sign | 0x7e;
  if (a < 2 ** -6) return sign | roundHalfEven(a * 512);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1; // guard log2 rounding
  if (2 ** (e + 1) <= a) e += 1;
  let q = roundHalfEven((a / 2 ** e - 1) * 8);
  if (q >= 8) {
    q = 0;
    e += 1;
  }
  return sign | Math.min(((e + 7) << 3) | q, 0x7e);
}
export function fp8e4m3ToF32(b: number): number {
  const e = (b >>> 3) & 0xf;
  const m = b & 7;
  if ((b & 0x7f) === 0x7f) return NaN;
  const v = e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7);
  return b & 0x80 ? -v : v;
}
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Encodes f32 values into a host array of `dtype` (rounding as the GPU does). */
export function encode<D extends DType>(dtype: D, values: ArrayLike<number>): HostArrayOf<D> {
  const out = allocHost(dtype, values.length);
  if (dtype === 'f32') (out as Float32Array).set(values);
  else {
    const conv = dtype === 'bf16' ? f32ToBf16 : dtype === 'f16' ? f32ToF16 : f32ToFp8e4m3;
    for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
  }
  return out;
}
/** Decodes a host array of `dtype` into f32 values. */
export function decode(dtype: DType, data: HostArray): Float32Array {
  if (dtype === 'f32') return Float32Array.from(data as Float32Array);
  const conv = dtype === 'bf16' ? bf16ToF32 : dtype === 'f16' ? f16ToF32 : fp8e4m3ToF32;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = conv(data[i]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The addon and the loader

interface CudaInfoRaw {
  ok: boolean;
  deviceCount: number;
  driverVersion: number;
  runtimeVersion: number;
  reason: string;
  name: string;
  ccMajor: number;
  ccMinor: number;
  smCount: number;
  totalMemBytes: number;
}

type RawFn = (args: Record<string, unknown>) => void;

interface Addon {
  withCuda: boolean;
  withCublas: boolean;
  cudaInfo?: () => CudaInfoRaw;
  malloc(bytes: number): bigint;
  free(ptr: bigint): void;
  hostAlloc(bytes: number): ArrayBuffer;
  memcpyH2D(dst: bigint, src: ArrayBufferView, bytes: number, stream: bigint): void;
  memcpyD2H(dst: ArrayBufferView, src: bigint, bytes: number, stream: bigint): void;
  memcpyD2D(dst: bigint, src: bigint, bytes: number, stream: bigint): void;
  memset(dst: bigint, value: number, bytes: number, stream: bigint): void;
  streamCreate(): bigint;
  streamDestroy(s: bigint): void;
  streamSync(s: bigint): void;
  deviceSync(): void;
  eventCreate(): bigint;
  eventDestroy(e: bigint): void;
  eventRecord(e: bigint, s: bigint): void;
  eventSync(e: bigint): void;
  eventElapsedMs(a: bigint, b: bigint): number;
  graphBegin(s: bigint): void;
  graphEnd(s: bigint): bigint;
  graphLaunch(g: bigint, s: bigint): void;
  graphDestroy(g: bigint): void;
  [op: string]: unknown;
}

export interface GpuStatus {
  available: boolean;
  /** Why the GPU path cannot run, when it cannot. */
  reason: string;
  code?: NativeErrorCode;
  name?: string;
  computeCapability?: string;
  smCount?: number;
  totalMemBytes?: number;
  driverVersion?: number;
  runtimeVersion?: number;
  withCublas: boolean;
}

export interface NativeStatus {
  loaded: boolean;
  path: string | null;
  reason: string;
  code?: NativeErrorCode;
  withCuda: boolean;
  gpu: GpuStatus;
}

const here = dirname(fileURLToPath(import.meta.url));

function candidatePaths(): string[] {
  const rel = join('build', 'Release', 'stratos_native.node');
  const list = [
    process.env.STRATOS_NATIVE_PATH,
    join(here, rel), // native/index.ts, run from source
    join(here, '..', 'native', rel), // a bundle in dist/ next to native/
    join(here, '..', '..', 'native', rel),
    resolve(process.cwd(), 'native', rel),
  ];
  return [...new Set(list.filter((p): p is string => Boolean(p)))];
}

let cached: { addon: Addon | null; status: NativeStatus } | null = null;

function versionText(v: number): string {
  return v ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : 'none';
}

function probe(): { addon: Addon | null; status: NativeStatus } {
  const noGpu = (reason: string, code: NativeErrorCode): GpuStatus => ({ available: false, reason, code, withCublas: false });
  const paths = candidatePaths();
  const path = paths.find((p) => existsSync(p)) ?? null;
  if (!path) {
    const reason = `native addon not built: run \`npm run build:native\` (looked for ${paths.join(', ')})`;
    return { addon: null, status: { loaded: false, path: null, reason, code: 'not_built', withCuda: false, gpu: noGpu(reason, 'not_built') } };
  }
  let addon: Addon;
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
  } catch (err) {
    const reason = `native addon at ${path} failed to load: ${(err as Error).message}`;
    return { addon: null, status: { loaded: false, path, reason, code: 'load_failed', withCuda: false, gpu: noGpu(reason, 'load_failed') } };
  }
  let gpu: GpuStatus;
  if (!addon.withCuda || !addon.cudaInfo) {
    gpu = noGpu('the addon was built without CUDA (nvcc was not found when it was built)', 'no_cuda_build');
  } else {
    const info = addon.cudaInfo();
    if (info.ok) {
      gpu = {
        available: true,
        reason: '',
        name: info.name,
        computeCapability: `${info.ccMajor}.${info.ccMinor}`,
        smCount: info.smCount,
        totalMemBytes: info.totalMemBytes,
        driverVersion: info.driverVersion,
        runtimeVersion: info.runtimeVersion,
        withCublas: addon.withCublas,
      };
    } else {
      const tooOld = info.driverVersion > 0 && info.driverVersion < info.runtimeVersion;
      const code: NativeErrorCode = tooOld ? 'driver_too_old' : 'no_gpu';
      const reason = tooOld
        ? `GPU driver too old: it supports CUDA ${versionText(info.driverVersion)}, the addon needs ${versionText(info.runtimeVersion)} (${info.reason})`
        : `no GPU: ${info.reason}`;
      gpu = { ...noGpu(reason, code), driverVersion: info.driverVersion, runtimeVersion: info.runtimeVersion };
    }
  }
  return { addon, status: { loaded: true, path, reason: '', withCuda: addon.withCuda, gpu } };
}

function state(): { addon: Addon | null; status: NativeStatus } {
  if (!cached) cached = probe();
  return cached;
}

/** What loaded, from where, and why anything could not. Never throws. */
export function nativeStatus(): NativeStatus {
  return state().status;
}

export function gpuAvailable(): boolean {
  return state().status.gpu.available;
}

function addonOrThrow(): Addon {
  const { addon, status } = state();
  if (!addon) throw new NativeError(status.code ?? 'load_failed', status.reason);
  return addon;
}

function call(op: string, args: Record<string, unknown>): void {
  const fn = addonOrThrow()[op] as RawFn | undefined;
  if (typeof fn !== 'function') {
    if (op === 'cuda_gemm') throw new NativeError('no_cublas', 'gemm: the addon was built without cuBLAS (cublasLt.h was missing)');
    throw new NativeError('no_cuda_build', `${op}: not in this build of the addon`);
  }
  try {
    fn(args);
  } catch (err) {
    throw new NativeError('cuda_error', (err as Error).message);
  }
}

// ---------------------------------------------------------------------------------------------
// Device memory

export class DeviceBuffer {
  #ptr: bigint;
  readonly bytes: number;
  constructor(ptr: bigint, bytes: number) {
    this.#ptr = ptr;
    this.bytes = bytes;
  }
  get freed(): boolean {
    return this.#ptr === 0n && this.bytes > 0;
  }
  /** The raw device address; throws once freed. */
  get ptr(): bigint {
    if (this.freed) throw new NativeError('bad_argument', 'device buffer used after free');
    return this.#ptr;
  }
  free(): void {
    if (this.#ptr !== 0n) addonOrThrow().free(this.#ptr);
    this.#ptr = 0n;
  }
}

/** A CUDA stream handle; 0n is the legacy default stream. */
export type Stream = bigint;

// ---------------------------------------------------------------------------------------------
// Argument checking shared by both backends

type Backend = 'cpu' | 'gpu';
type Tensor<B extends Backend> = B extends 'cpu' ? HostArray : DeviceBuffer;
type IndexTensor<B extends Backend> = B extends 'cpu' ? Int32Array : DeviceBuffer;

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}
function posInt(op: string, name: string, v: unknown): number {
  if (!isInt(v) || v <= 0) fail(op, `${name} must be a positive integer, got ${String(v)}`);
  return v;
}
function nonNegInt(op: string, name: string, v: unknown): number {
  if (!isInt(v) || v < 0) fail(op, `${name} must be a non-negative integer, got ${String(v)}`);
  return v;
}
function finite(op: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(op, `${name} must be a finite number, got ${String(v)}`);
  return v;
}
function oneOf<T extends string>(op: string, name: string, v: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) fail(op, `${name} must be one of ${allowed.join(', ')}, got ${String(v)}`);
  return v as T;
}

const ARRAY_FOR: Record<DType | 'i32' | 'u64', { ctor: Function; name: string; bytes: number }> = {
  f32: { ctor: Float32Array, name: 'Float32Array', bytes: 4 },
  bf16: { ctor: Uint16Array, name: 'Uint16Array (bf16 bits)', bytes: 2 },
  f16: { ctor: Uint16Array, name: 'Uint16Array (f16 bits)', bytes: 2 },
  fp8e4m3: { ctor: Uint8Array, name: 'Uint8Array (fp8 e4m3 bits)', bytes: 1 },
  i32: { ctor: Int32Array, name: 'Int32Array', bytes: 4 },
  u64: { ctor: BigUint64Array, name: 'BigUint64Array', bytes: 8 },
};

function describe(v: unknown): string {
  if (v === undefined || v === null) return String(v);
  if (v instanceof DeviceBuffer) return `DeviceBuffer(${v.bytes} bytes)`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as { length: number }).length})`;
  return typeof v;
}

/**
 * Checks one tensor argument: on the CPU a typed array of the dtype's class and exactly `count`
 * elements; on the GPU a live DeviceBuffer of at least `count` elements. Returns what the binding
 * takes (the array, or the device address).
 */
function tensor(b: Backend, op: string, name: string, v: unknown, dtype: DType | 'i32' | 'u64', count: number): unknown {
  const spec = ARRAY_FOR[dtype];
  if (b === 'cpu') {
    if (!(v instanceof (spec.ctor as typeof Uint8Array))) fail(op, `${name} must be a ${spec.name} for dtype ${dtype}, got ${describe(v)}`);
    if ((v as Uint8Array).length !== count) fail(op, `${name} must have ${count} elements, got ${(v as Uint8Array).length}`);
    return v;
  }
  if (!(v instanceof DeviceBuffer)) fail(op, `${name} must be a DeviceBuffer on the GPU path, got ${describe(v)}`);
  if (v.freed) fail(op, `${name} was freed`);
  if (v.bytes < count * spec.bytes) fail(op, `${name} needs ${count * spec.bytes} bytes (${count} x ${dtype}), the buffer has ${v.bytes}`);
  return v.ptr;
}

function optionalTensor(b: Backend, op: string, name: string, v: unknown, dtype: DType | 'i32', count: number): unknown {
  return v === undefined || v === null ? null : tensor(b, op, name, v, dtype, count);
}

/** On the CPU an absent output is allocated; on the GPU it must be given. */
function output<D extends DType>(b: Backend, op: string, name: string, v: unknown, dtype: D, count: number): { arg: unknown; value: unknown } {
  if (v === undefined || v === null) {
    if (b === 'gpu') fail(op, `${name} (the output) must be given as a DeviceBuffer on the GPU path`);
    const host = allocHost(dtype, count);
    return { arg: host, value: host };
  }
  return { arg: tensor(b, op, name, v, dtype, count), value: v };
}

function streamArg(op: string, s: unknown): bigint {
  if (s === undefined) return 0n;
  if (typeof s !== 'bigint' || s < 0n) fail(op, `stream must be a bigint stream handle, got ${describe(s)}`);
  return s;
}

function checkIndexRange(op: string, name: string, arr: Int32Array, lo: number, hiExclusive: number, allowNegative = false): void {
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    if (allowNegative && v < 0) continue;
    if (v < lo || v >= hiExclusive) fail(op, `${name}[${i}] = ${v} is out of range [${lo}, ${hiExclusive})`);
  }
}

function checkBlockTables(op: string, b: Backend, tables: unknown, lens: Int32Array, maxPagesPerSeq: number, pageSize: number, numPages: number): void {
  if (b !== 'cpu') return;
  const t = tables as Int32Array;
  for (let s = 0; s < lens.length; s++) {
    const used = Math.ceil(lens[s] / pageSize);
    for (let j = 0; j < used; j++) {
      const page = t[s * maxPagesPerSeq + j];
      if (page < 0 || page >= numPages) fail(op, `blockTables[${s}][${j}] = ${page} is out of range [0, ${numPages}) (page id)`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Op arguments. Shapes are in the comments; T is a host array (cpu) or a DeviceBuffer (gpu).

export interface EmbeddingArgs<B extends Backend = 'cpu'> {
  dtype: ActDType;
  vocab: number;
  hidden: number;
  numTokens: number;
  table: Tensor<B>; // [vocab, hidden]
  ids: IndexTensor<B>; // [numTokens]
  out?: Tensor<B>; // [numTokens, hidden]
  stream?: Stream;
}

export interface RmsNormArgs<B extends Backend = 'cpu'> {
  dtype: ActDType;
  numTokens: number;
  hidden: number;
  eps?: number; // default 1e-6
  x: Tensor<B>; // [numTokens, hidden]
  residual?: Tensor<B>; // [numTokens, hidden]; in/out: residual += x, then normalized
  weight: Tensor<B>; // [hidden]
  out?: Tensor<B>; // [numTokens, hidden]; may be x itself
  stream?: Stream;
}

export interface RopeArgs<B extends Backend = 'cpu'> {
  dtype: ActDType;
  numTokens: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rotDim?: number; // default headDim
  theta?: number; // default 10000
  neox?: boolean; // default true (rotate halves, Llama)
  positions: IndexTensor<B>; // [numTokens]
  q: Tensor<B>; // [numTokens, numHeads, headDim], in place
  k: Tensor<B>; // [numTokens, numKvHeads, headDim], in place
  /**
   * Also write the rotated k and v into the paged cache (kvWrite's work in the same launch; the
   * cache has q's dtype). Fields as KvWriteArgs.
   */
  kvCache?: Pick<KvWriteArgs<B>, 'value' | 'slotMapping' | 'kCache' | 'vCache' | 'pageSize' | 'numPages'>;
  /** GPU: launch as a programmatic dependent of the previous kernel (common.cuh); ignored on the CPU. */
  pdl?: boolean;
  stream?: Stream;
}

export interface KvWriteArgs<B extends Backend = 'cpu'> {
  dtype: ActDType; // of key/value
  cacheDtype: KvDType;
  numTokens: number;
  numKvHeads: number;
  headDim: number;
  pageSize: number;
  numPages: number;
  kScale?: number; // fp8: stored = k / kScale
  vScale?: number;
  key: Tensor<B>; // [numTokens, numKvHeads, headDim]
  value: Tensor<B>; // [numTokens, numKvHeads, headDim]
  slotMapping: IndexTensor<B>; // [numTokens], page * pageSize + offset; < 0 skips
  kCache: Tensor<B>; // [numPages, numKvHeads, pageSize, headDim], written in place
  vCache: Tensor<B>;
  /** GPU: launch as a programmatic dependent of the previous kernel (common.cuh); ignored on the CPU. */
  pdl?: boolean;
  stream?: Stream;
}

export interface PagedDecodeArgs<B extends Backend = 'cpu'> {
  dtype: 'bf16' | 'f16' | 'f32'; // of q and out (f32 on the CPU only)
  kvDtype: KvDType;
  numSeqs: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  pageSize: number;
  numPages: number;
  maxPagesPerSeq: number;
  maxSeqLen?: number; // upper bound of seqLens (GPU split planning); default maxPagesPerSeq * pageSize
  partitionTokens?: number; // GPU flash-decoding split size; 0/absent chooses
  scale?: number; // default 1/sqrt(headDim)
  kScale?: number;
  vScale?: number;
  q: Tensor<B>; // [numSeqs, numHeads, headDim]
  kCache: Tensor<B>; // [numPages, numKvHeads, pageSize, headDim]
  vCache: Tensor<B>;
  blockTables: IndexTensor<B>; // [numSeqs, maxPagesPerSeq]
  seqLens: IndexTensor<B>; // [numSeqs]
  out?: Tensor<B>; // [numSeqs, numHeads, headDim]
  /** GPU: the last partition block of each (sequence, head) merges the split itself (no merge launch; same bits). */
  fusedReduce?: boolean;
  /**
   * Rope and kvWrite folded in (a cache of q's dtype): each sequence's newest token (position
   * seqLens - 1) is not in the cache yet; q and kNew are rotated as rope would (NeoX, the whole
   * head) and the token's k and v are written to the cache at that position. q, kNew and vNew are
   * left unchanged.
   */
  ropeNew?: { kNew: Tensor<B>; vNew: Tensor<B>; theta?: number }; // kNew, vNew: [numSeqs, numKvHeads, headDim]
  /** GPU: launch as a programmatic dependent of the previous kernel (common.cuh); ignored on the CPU. */
  pdl?: boolean;
  stream?: Stream;
}

export interface PrefillArgs<B extends Backend = 'cpu'> {
  dtype: 'bf16' | 'f16' | 'f32'; // of q, caches and out (f32 on the CPU only)
  numSeqs: number;
  numTokens: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  pageSize: number;
  numPages: number;
  maxPagesPerSeq: number;
  maxQLen?: number; // upper bound of query lengths (GPU grid); default numTokens
  scale?: number;
  q: Tensor<B>; // [numTokens, numHeads, headDim]
  cuSeqlensQ: IndexTensor<B>; // [numSeqs + 1]
  seqLensKv: IndexTensor<B>; // [numSeqs]: context + new tokens, all already in the cache
  blockTables: IndexTensor<B>; // [numSeqs, maxPagesPerSeq]
  kCache: Tensor<B>;
  vCache: Tensor<B>;
  out?: Tensor<B>; // [numTokens, numHeads, headDim]
  stream?: Stream;
}

export interface SiluMulArgs<B extends Backend = 'cpu'> {
  dtype: ActDType;
  numTokens: number;
  d: number;
  x: Tensor<B>; // [numTokens, 2 * d]
  out?: Tensor<B>; // [numTokens, d]
  stream?: Stream;
}

/** Epilogues of decodeGemv (native/include/stratos/ops/decode_gemv.h). */
export const GEMV_EPILOGUE = { store: 0, add: 1, siluPair: 2 } as const;
export type GemvEpilogue = keyof typeof GEMV_EPILOGUE;

/**
 * One-row linear layer fused with its neighbours (batch-1 decode): out = W x, with x first
 * RMS-normalised when `normWeight` is given; 'add' adds into out (the residual add), 'siluPair'
 * writes silu(W[j] x) * W[n + j] x (W is gate stacked on up). Rounds where rmsnorm, gemm and
 * siluMul store, so it matches them up to the order of the f32 sums.
 */
export interface DecodeGemvArgs<B extends Backend = 'cpu'> {
  dtype: ActDType;
  n: number; // outputs
  k: number; // input features (GPU: a multiple of 8, <= 16384)
  epilogue?: GemvEpilogue; // default 'store'
  eps?: number; // of the norm; default 1e-6
  x: Tensor<B>; // [k]
  weight: Tensor<B>; // [n, k]; [2 n, k] for 'siluPair'
  normWeight?: Tensor<B>; // [k]
  out?: Tensor<B>; // [n]; required (and read) for 'add'; must not alias x
  /** GPU tuning: blocks per SM the outputs are split over, 1-8 (default 3). */
  blocksPerSm?: number;
  pdl?: boolean;
  /**
   * GPU: a tensor (the next GEMV's weights) to pull into L2 once this GEMV's weight loads are
   * issued, so DRAM keeps streaming across the kernels between them. A hint: no result depends on
   * it. On the GPU it must start 16-byte aligned (its whole bytes, rounded down to 16, are
   * fetched, or its first `l2PrefetchBytes`); the CPU checks its type and ignores it.
   */
  l2Prefetch?: Tensor<B>;
  /** At most this many bytes of l2Prefetch from its start (rounded down to 16; default all of it). */
  l2PrefetchBytes?: number;
  stream?: Stream;
}

export interface GemmArgs<B extends Backend = 'cpu'> {
  dtype: DType; // of a and b: bf16/f16 (both backends), f32 (CPU), fp8e4m3 (both; GPU needs Hopper)
  outDtype?: ActDType; // default dtype (bf16 for fp8)
  m: number;
  n: number;
  k: number;
  alpha?: number;
  a: Tensor<B>; // [m, k]
  b: Tensor<B>; // [n, k]  (c = a b^T, a linear layer's weight layout)
  c?: Tensor<B>; // [m, n]
  /** fp8 only: per-tensor scales. CPU: numbers; GPU: DeviceBuffers holding one f32 each. */
  aScale?: B extends 'cpu' ? number : DeviceBuffer;
  bScale?: B extends 'cpu' ? number : DeviceBuffer;
  stream?: Stream;
}

export interface SampleArgs<B extends Backend = 'cpu'> {
  batch: number;
  vocab: number;
  logits: B extends 'cpu' ? Float32Array : DeviceBuffer; // [batch, vocab] f32
  temperature: B extends 'cpu' ? Float32Array : DeviceBuffer; // [batch]; 0 = greedy
  topK: IndexTensor<B>; // [batch]; 0 disables
  topP: B extends 'cpu' ? Float32Array : DeviceBuffer; // [batch]; 1 disables
  minP: B extends 'cpu' ? Float32Array : DeviceBuffer; // [batch]; 0 disables
  seeds: B extends 'cpu' ? BigUint64Array : DeviceBuffer; // [batch]
  offsets: B extends 'cpu' ? BigUint64Array : DeviceBuffer; // [batch], e.g. the output position
  tokens?: IndexTensor<B>; // [batch] out
  logprobs?: B extends 'cpu' ? Float32Array : DeviceBuffer; // [batch] out
  status?: IndexTensor<B>; // [batch] out: 0 ok, 1 NaN/inf logits, 2 all -inf, 3 bad temperature
  stream?: Stream;
}

export interface SampleResult {
  tokens: Int32Array;
  logprobs: Float32Array;
  status: Int32Array;
}

export const SAMPLE_STATUS = { ok: 0, invalidLogits: 1, allMasked: 2, invalidParams: 3 } as const;
export const SAMPLING_MAX_VOCAB_GPU = 32768;

/**
 * Widening cast to f32 with an optional row gather and scale (e.g. the sampled rows of bf16
 * logits into the f32 rows the fused sampler reads): out[r] = f32(x[rows ? rows[r] : r]) * scale.
 * bf16/f16 widen exactly, so with scale 1 the values (and greedy ties) order as the 16-bit bits do.
 */
export interface CastF32Args<B extends Backend = 'cpu'> {
  dtype: ActDType; // of x: bf16 or f16 on the GPU (the CPU reference also takes f32)
  numRows: number; // output rows
  cols: number;
  srcRows?: number; // rows of x; default numRows (required >= numRows without `rows`)
  scale?: number; // default 1
  x: Tensor<B>; // [srcRows, cols]
  rows?: IndexTensor<B>; // [numRows] source row of each output row; absent: row r reads row r
  out?: B extends 'cpu' ? Float32Array : DeviceBuffer; // [numRows, cols] f32
  stream?: Stream;
}

export interface LoraShrinkArgs<B extends Backend = 'cpu'> {
  dtype: ActDType;
  numTokens: number;
  inDim: number;
  maxRank: number;
  numSlots: number;
  x: Tensor<B>; // [numTokens, inDim]
  a: Tensor<B>; // [numSlots, maxRank, inDim]
  ranks: IndexTensor<B>; // [numSlots], each <= maxRank
  /** Segments: token ranges sharing one slot. Absent: segSlots is per token. */
  segStarts?: IndexTensor<B>; // [numSegs + 1]
  numSegs?: number; // required with segStarts
  segSlots: IndexTensor<B>; // [numSegs] or [numTokens]; < 0 = no adapter
  y?: B extends 'cpu' ? Float32Array : DeviceBuffer; // [numTokens, maxRank] f32 out
  stream?: Stream;
}

export interface LoraExpandArgs<B extends Backend = 'cpu'> {
  dtype: ActDType;
  numTokens: number;
  outDim: number;
  maxRank: number;
  numSlots: number;
  y: B extends 'cpu' ? Float32Array : DeviceBuffer; // [numTokens, maxRank] f32
  b: Tensor<B>; // [numSlots, outDim, maxRank]
  ranks: IndexTensor<B>; // [numSlots]
  scales: B extends 'cpu' ? Float32Array : DeviceBuffer; // [numSlots] f32
  segStarts?: IndexTensor<B>;
  numSegs?: number;
  segSlots: IndexTensor<B>;
  out: Tensor<B>; // [numTokens, outDim], accumulated into
  stream?: Stream;
}

// ---------------------------------------------------------------------------------------------
// Per-op checks: each returns the binding's argument object and the output(s).

const ACT: readonly ActDType[] = ['f32', 'bf16', 'f16'];
const GPU_ACT: readonly ActDType[] = ['bf16', 'f16'];
const KV: readonly KvDType[] = ['f32', 'bf16', 'f16', 'fp8e4m3'];
const GPU_KV: readonly KvDType[] = ['bf16', 'f16', 'fp8e4m3'];

function act(b: Backend, op: string, v: unknown): ActDType {
  return oneOf(op, 'dtype', v, b === 'gpu' ? GPU_ACT : ACT);
}

function prepEmbedding(b: Backend, a: EmbeddingArgs<Backend>) {
  const op = 'embedding';
  const dtype = act(b, op, a.dtype);
  const vocab = posInt(op, 'vocab', a.vocab);
  const hidden = posInt(op, 'hidden', a.hidden);
  const numTokens = nonNegInt(op, 'numTokens', a.numTokens);
  const ids = tensor(b, op, 'ids', a.ids, 'i32', numTokens);
  if (b === 'cpu') checkIndexRange(op, 'ids', ids as Int32Array, 0, vocab);
  const out = output(b, op, 'out', a.out, dtype, numTokens * hidden);
  const args = { dtype: DTYPE_CODE[dtype], vocab, hidden, numTokens, table: tensor(b, op, 'table', a.table, dtype, vocab * hidden), ids, out: out.arg, stream: streamArg(op, a.stream) };
  return { args, out: out.value };
}

function prepRmsNorm(b: Backend, a: RmsNormArgs<Backend>) {
  const op = 'rmsnorm';
  const dtype = act(b, op, a.dtype);
  const numTokens = nonNegInt(op, 'numTokens', a.numTokens);
  const hidden = posInt(op, 'hidden', a.hidden);
  const eps = a.eps === undefined ? 1e-6 : finite(op, 'eps', a.eps);
  if (eps < 0) fail(op, `eps must be >= 0, got ${eps}`);
  if (b === 'gpu' && hidden % 8 !== 0) fail(op, `hidden must be a multiple of 8 on the GPU, got ${hidden}`);
  const n = numTokens * hidden;
  const out = output(b, op, 'out', a.out, dtype, n);
  const args = {
    dtype: DTYPE_CODE[dtype], numTokens, hidden, eps,
    x: tensor(b, op, 'x', a.x, dtype, n),
    residual: optionalTensor(b, op, 'residual', a.residual, dtype, n),
    weight: tensor(b, op, 'weight', a.weight, dtype, hidden),
    out: out.arg, stream: streamArg(op, a.stream),
  };
  return { args, out: out.value };
}

function prepRope(b: Backend, a: RopeArgs<Backend>) {
  const op = 'rope';
  const dtype = act(b, op, a.dtype);
  const numTokens = nonNegInt(op, 'numTokens', a.numTokens);
  const numHeads = posInt(op, 'numHeads', a.numHeads);
  const numKvHeads = posInt(op, 'numKvHeads', a.numKvHeads);
  const headDim = posInt(op, 'headDim', a.headDim);
  const rotDim = a.rotDim === undefined ? headDim : posInt(op, 'rotDim', a.rotDim);
  if (rotDim % 2 !== 0 || rotDim > headDim) fail(op, `rotDim must be even and <= headDim (${headDim}), got ${rotDim}`);
  const theta = a.theta === undefined ? 10000 : finite(op, 'theta', a.theta);
  if (theta <= 1) fail(op, `theta must be > 1, got ${theta}`);
  const neox = a.neox === undefined ? true : a.neox;
  if (typeof neox !== 'boolean') fail(op, `neox must be a boolean`);
  const positions = tensor(b, op, 'positions', a.positions, 'i32', numTokens);
  if (b === 'cpu') checkIndexRange(op, 'positions', positions as Int32Array, 0, 2 ** 31 - 1);
  // The fused KV write, checked as kvWrite checks it (its errors then name kvWrite's fields).
  const kv = a.kvCache === undefined ? null : prepKvWrite(b, { dtype, cacheDtype: dtype, numTokens, numKvHeads, headDim, key: a.k, ...a.kvCache }).args;
  return {
    args: {
      dtype: DTYPE_CODE[dtype], numTokens, numHeads, numKvHeads, headDim, rotDim, theta, neox, positions,
      q: tensor(b, op, 'q', a.q, dtype, numTokens * numHeads * headDim),
      k: tensor(b, op, 'k', a.k, dtype, numTokens * numKvHeads * headDim),
      ...(kv !== null ? { value: kv.value, slotMapping: kv.slotMapping, kCache: kv.kCache, vCache: kv.vCache, pageSize: kv.pageSize, numPages: kv.numPages } : {}),
      pdl: pdlArg(op, a.pdl), stream: streamArg(op, a.stream),
    },
  };
}

function prepKvWrite(b: Backend, a: KvWriteArgs<Backend>) {
  const op = 'kvWrite';
  const dtype = act(b, op, a.dtype);
  const cacheDtype = oneOf(op, 'cacheDtype', a.cacheDtype, b === 'gpu' ? GPU_KV : KV);
  if (cacheDtype !== 'fp8e4m3' && b === 'gpu' && cacheDtype !== dtype) fail(op, `a ${cacheDtype} cache needs ${cacheDtype} keys/values on the GPU, got ${dtype}`);
  const numTokens = nonNegInt(op, 'numTokens', a.numTokens);
  const numKvHeads = posInt(op, 'numKvHeads', a.numKvHeads);
  const headDim = posInt(op, 'headDim', a.headDim);
  const pageSize = posInt(op, 'pageSize', a.pageSize);
  const numPages = posInt(op, 'numPages', a.numPages);
  if (b === 'gpu' && headDim % 8 !== 0) fail(op, `headDim must be a multiple of 8 on the GPU, got ${headDim}`);
  const kScale = a.kScale === undefined ? 1 : finite(op, 'kScale', a.kScale);
  const vScale = a.vScale === undefined ? 1 : finite(op, 'vScale', a.vScale);
  if (kScale <= 0 || vScale <= 0) fail(op, 'kScale and vScale must be > 0');
  const slotMapping = tensor(b, op, 'slotMapping', a.slotMapping, 'i32', numTokens);
  if (b === 'cpu') checkIndexRange(op, 'slotMapping', slotMapping as Int32Array, 0, numPages * pageSize, true);
  const cacheN = numPages * numKvHeads * pageSize * headDim;
  const n = numTokens * numKvHeads * headDim;
  return {
    args: {
      dtype: DTYPE_CODE[dtype], cacheDtype: DTYPE_CODE[cacheDtype], numTokens, numKvHeads, headDim, pageSize, numPages, kScale, vScale,
      key: tensor(b, op, 'key', a.key, dtype, n), value: tensor(b, op, 'value', a.value, dtype, n), slotMapping,
      kCache: tensor(b, op, 'kCache', a.kCache, cacheDtype, cacheN), vCache: tensor(b, op, 'vCache', a.vCache, cacheDtype, cacheN),
      pdl: pdlArg(op, a.pdl), stream: streamArg(op, a.stream),
    },
  };
}

function prepPagedDecode(b: Backend, a: PagedDecodeArgs<Backend>) {
  const op = 'pagedDecode';
  const dtype = oneOf(op, 'dtype', a.dtype, b === 'gpu' ? (['bf16', 'f16'] as const) : (['f32', 'bf16', 'f16'] as const));
  const kvDtype = oneOf(op, 'kvDtype', a.kvDtype, b === 'gpu' ? GPU_KV : KV);
  if (b === 'gpu' && kvDtype !== 'fp8e4m3' && kvDtype !== dtype) fail(op, `kvDtype ${kvDtype} needs dtype ${kvDtype} on the GPU, got ${dtype}`);
  if (b === 'gpu' && kvDtype === 'fp8e4m3' && dtype !== 'bf16') fail(op, `an fp8 cache needs bf16 queries on the GPU, got ${dtype}`);
  const numSeqs = nonNegInt(op, 'numSeqs', a.numSeqs);
  const numHeads = posInt(op, 'numHeads', a.numHeads);
  const numKvHeads = posInt(op, 'numKvHeads', a.numKvHeads);
  if (numHeads % numKvHeads !== 0) fail(op, `numHeads (${numHeads}) must be a multiple of numKvHeads (${numKvHeads})`);
  const headDim = posInt(op, 'headDim', a.headDim);
  if (b === 'gpu' && headDim !== 64 && headDim !== 128) fail(op, `headDim must be 64 or 128 on the GPU, got ${headDim}`);
  const pageSize = posInt(op, 'pageSize', a.pageSize);
  const numPages = posInt(op, 'numPages', a.numPages);
  const maxPagesPerSeq = posInt(op, 'maxPagesPerSeq', a.maxPagesPerSeq);
  const maxSeqLen = a.maxSeqLen === undefined ? maxPagesPerSeq * pageSize : nonNegInt(op, 'maxSeqLen', a.maxSeqLen);
  const partitionTokens = a.partitionTokens === undefined ? 0 : nonNegInt(op, 'partitionTokens', a.partitionTokens);
  const scale = a.scale === undefined ? 1 / Math.sqrt(headDim) : finite(op, 'scale', a.scale);
  const kScale = a.kScale === undefined ? 1 : finite(op, 'kScale', a.kScale);
  const vScale = a.vScale === undefined ? 1 : finite(op, 'vScale', a.vScale);
  const seqLens = tensor(b, op, 'seqLens', a.seqLens, 'i32', numSeqs);
  const blockTables = tensor(b, op, 'blockTables', a.blockTables, 'i32', numSeqs * maxPagesPerSeq);
  if (b === 'cpu') {
    checkIndexRange(op, 'seqLens', seqLens as Int32Array, 0, Math.min(maxSeqLen, maxPagesPerSeq * pageSize) + 1);
    checkBlockTables(op, b, blockTables, seqLens as Int32Array, maxPagesPerSeq, pageSize, numPages);
  }
  const cacheN = numPages * numKvHeads * pageSize * headDim;
  const out = output(b, op, 'out', a.out, dtype, numSeqs * numHeads * headDim);
  let rope = {};
  if (a.ropeNew !== undefined) {
    if (kvDtype !== dtype) fail(op, `ropeNew writes the cache: kvDtype must equal dtype (${dtype}), got ${kvDtype}`);
    if (b === 'cpu' && Array.from(seqLens as Int32Array).some((l) => l === 0)) fail(op, 'ropeNew needs every seqLens >= 1 (the newest token is in the sequence)');
    const theta = a.ropeNew.theta === undefined ? 10000 : finite(op, 'ropeNew.theta', a.ropeNew.theta);
    if (theta <= 1) fail(op, `ropeNew.theta must be > 1, got ${theta}`);
    const n = numSeqs * numKvHeads * headDim;
    rope = { kNew: tensor(b, op, 'ropeNew.kNew', a.ropeNew.kNew, dtype, n), vNew: tensor(b, op, 'ropeNew.vNew', a.ropeNew.vNew, dtype, n), ropeTheta: theta };
  }
  return {
    args: {
      dtype: DTYPE_CODE[dtype], kvDtype: DTYPE_CODE[kvDtype], numSeqs, numHeads, numKvHeads, headDim, pageSize, numPages, maxPagesPerSeq,
      maxSeqLen, partitionTokens, scale, kScale, vScale, ...rope,
      q: tensor(b, op, 'q', a.q, dtype, numSeqs * numHeads * headDim),
      kCache: tensor(b, op, 'kCache', a.kCache, kvDtype, cacheN), vCache: tensor(b, op, 'vCache', a.vCache, kvDtype, cacheN),
      blockTables, seqLens, out: out.arg, fusedReduce: flagArg(op, 'fusedReduce', a.fusedReduce), pdl: pdlArg(op, a.pdl), stream: streamArg(op, a.stream),
    },
    out: out.value,
  };
}

function prepPrefill(b: Backend, a: PrefillArgs<Backend>) {
  const op = 'prefill';
  const dtype = oneOf(op, 'dtype', a.dtype, b === 'gpu' ? (['bf16', 'f16'] as const) : (['f32', 'bf16', 'f16'] as const));
  const numSeqs = nonNegInt(op, 'numSeqs', a.numSeqs);
  const numTokens = nonNegInt(op, 'numTokens', a.numTokens);
  const numHeads = posInt(op, 'numHeads', a.numHeads);
  const numKvHeads = posInt(op, 'numKvHeads', a.numKvHeads);
  if (numHeads % numKvHeads !== 0) fail(op, `numHeads (${numHeads}) must be a multiple of numKvHeads (${numKvHeads})`);
  const headDim = posInt(op, 'headDim', a.headDim);
  if (b === 'gpu' && headDim !== 128 && headDim !== 64) fail(op, `headDim must be 64 or 128 on the GPU, got ${headDim}`);
  const pageSize = posInt(op, 'pageSize', a.pageSize);
  const numPages = posInt(op, 'numPages', a.numPages);
  const maxPagesPerSeq = posInt(op, 'maxPagesPerSeq', a.maxPagesPerSeq);
  const maxQLen = a.maxQLen === undefined ? numTokens : nonNegInt(op, 'maxQLen', a.maxQLen);
  const scale = a.scale === undefined ? 1 / Math.sqrt(headDim) : finite(op, 'scale', a.scale);
  const cu = tensor(b, op, 'cuSeqlensQ', a.cuSeqlensQ, 'i32', numSeqs + 1);
  const kvl = tensor(b, op, 'seqLensKv', a.seqLensKv, 'i32', numSeqs);
  const bt = tensor(b, op, 'blockTables', a.blockTables, 'i32', numSeqs * maxPagesPerSeq);
  if (b === 'cpu') {
    const c = cu as Int32Array;
    const l = kvl as Int32Array;
    if (c[0] !== 0 || c[numSeqs] !== numTokens) fail(op, `cuSeqlensQ must start at 0 and end at numTokens (${numTokens}), got [${c[0]} .. ${c[numSeqs]}]`);
    for (let s = 0; s < numSeqs; s++) {
      const q = c[s + 1] - c[s];
      if (q < 0) fail(op, `cuSeqlensQ must be non-decreasing (at ${s})`);
      if (q > maxQLen) fail(op, `sequence ${s} has ${q} query tokens, more than maxQLen (${maxQLen})`);
      if (l[s] < q || l[s] > maxPagesPerSeq * pageSize) fail(op, `seqLensKv[${s}] = ${l[s]} must be in [${q}, ${maxPagesPerSeq * pageSize}]`);
    }
    checkBlockTables(op, b, bt, l, maxPagesPerSeq, pageSize, numPages);
  }
  const cacheN = numPages * numKvHeads * pageSize * headDim;
  const n = numTokens * numHeads * headDim;
  const out = output(b, op, 'out', a.out, dtype, n);
  return {
    args: {
      dtype: DTYPE_CODE[dtype], numSeqs, numTokens, numHeads, numKvHeads, headDim, pageSize, numPages, maxPagesPerSeq, maxQLen, scale,
      q: tensor(b, op, 'q', a.q, dtype, n), cuSeqlensQ: cu, seqLensKv: kvl, blockTables: bt,
      kCache: tensor(b, op, 'kCache', a.kCache, dtype, cacheN), vCache: tensor(b, op, 'vCache', a.vCache, dtype, cacheN),
      out: out.arg, stream: streamArg(op, a.stream),
    },
    out: out.value,
  };
}

function prepSiluMul(b: Backend, a: SiluMulArgs<Backend>) {
  const op = 'siluMul';
  const dtype = act(b, op, a.dtype);
  const numTokens = nonNegInt(op, 'numTokens', a.numTokens);
  const d = posInt(op, 'd', a.d);
  if (b === 'gpu' && d % 8 !== 0) fail(op, `d must be a multiple of 8 on the GPU, got ${d}`);
  const out = output(b, op, 'out', a.out, dtype, numTokens * d);
  return { args: { dtype: DTYPE_CODE[dtype], numTokens, d, x: tensor(b, op, 'x', a.x, dtype, numTokens * 2 * d), out: out.arg, stream: streamArg(op, a.stream) }, out: out.value };
}

/** An optional boolean argument (default false). */
function flagArg(op: string, name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') fail(op, `${name} must be a boolean, got ${describe(v)}`);
  return v;
}

/** Programmatic dependent launch flag (GPU; the CPU ignores it). */
const pdlArg = (op: string, v: unknown): boolean => flagArg(op, 'pdl', v);

function prepDecodeGemv(b: Backend, a: DecodeGemvArgs<Backend>) {
  const op = 'decodeGemv';
  const dtype = act(b, op, a.dtype);
  const n = posInt(op, 'n', a.n);
  const k = posInt(op, 'k', a.k);
  if (b === 'gpu' && (k % 8 !== 0 || k > 16384)) fail(op, `k must be a multiple of 8 and <= 16384 on the GPU, got ${k}`);
  const epilogue = a.epilogue === undefined ? 'store' : oneOf(op, 'epilogue', a.epilogue, Object.keys(GEMV_EPILOGUE) as GemvEpilogue[]);
  if (epilogue === 'add' && (a.out === undefined || a.out === null)) fail(op, "out must be given for epilogue 'add' (it is added into)");
  if (a.out !== undefined && a.out === a.x) fail(op, 'out must not alias x');
  const eps = a.eps === undefined ? 1e-6 : finite(op, 'eps', a.eps);
  if (eps < 0) fail(op, `eps must be >= 0, got ${eps}`);
  const rows = epilogue === 'siluPair' ? 2 * n : n;
  const blocksPerSm = a.blocksPerSm === undefined ? 0 : posInt(op, 'blocksPerSm', a.blocksPerSm);
  if (blocksPerSm > 8) fail(op, `blocksPerSm must be in [1, 8], got ${blocksPerSm}`);
  const out = output(b, op, 'out', a.out, dtype, n);
  const args = {
    dtype: DTYPE_CODE[dtype], n, k, epilogue: GEMV_EPILOGUE[epilogue], eps,
    x: tensor(b, op, 'x', a.x, dtype, k), weight: tensor(b, op, 'weight', a.weight, dtype, rows * k),
    normWeight: optionalTensor(b, op, 'normWeight', a.normWeight, dtype, k),
    out: out.arg, blocksPerSm, pdl: pdlArg(op, a.pdl), stream: streamArg(op, a.stream),
    ...l2PrefetchArgs(b, op, a.l2Prefetch, a.l2PrefetchBytes, dtype),
  };
  return { args, out: out.value };
}

/** decodeGemv's L2 prefetch range: the native pointer and bytes on the GPU, nothing on the CPU (after the type check). */
function l2PrefetchArgs(b: Backend, op: string, v: unknown, maxBytes: unknown, dtype: ActDType): { l2Prefetch?: unknown; l2PrefetchBytes?: number } {
  const cap = maxBytes === undefined ? Infinity : posInt(op, 'l2PrefetchBytes', maxBytes);
  if (v === undefined || v === null) {
    if (maxBytes !== undefined) fail(op, 'l2PrefetchBytes needs l2Prefetch (the tensor to prefetch)');
    return {};
  }
  if (b === 'cpu') {
    const spec = ARRAY_FOR[dtype];
    if (!(v instanceof (spec.ctor as typeof Uint8Array))) fail(op, `l2Prefetch must be a ${spec.name} for dtype ${dtype}, got ${describe(v)}`);
    return {};
  }
  if (!(v instanceof DeviceBuffer)) fail(op, `l2Prefetch must be a DeviceBuffer on the GPU path, got ${describe(v)}`);
  if (v.freed) fail(op, 'l2Prefetch was freed');
  if (v.ptr % 16n !== 0n) fail(op, `l2Prefetch must start 16-byte aligned, its address is ${v.ptr}`);
  return { l2Prefetch: v.ptr, l2PrefetchBytes: Math.floor(Math.min(v.bytes, cap) / 16) * 16 };
}

function prepGemm(b: Backend, a: GemmArgs<Backend>) {
  const op = 'gemm';
  const dtype = oneOf(op, 'dtype', a.dtype, b === 'gpu' ? (['bf16', 'f16', 'fp8e4m3'] as const) : (['f32', 'bf16', 'f16', 'fp8e4m3'] as const));
  const outDtype = a.outDtype === undefined ? (dtype === 'fp8e4m3' ? 'bf16' : dtype) : act(b, op, a.outDtype);
  if (b === 'gpu' && dtype !== 'fp8e4m3' && outDtype !== dtype) fail(op, `outDtype must equal dtype (${dtype}) on the GPU`);
  const m = posInt(op, 'm', a.m);
  const n = posInt(op, 'n', a.n);
  const k = posInt(op, 'k', a.k);
  if (b === 'gpu' && dtype === 'fp8e4m3' && (k % 16 !== 0 || n % 16 !== 0)) fail(op, `fp8 GEMM needs k and n multiples of 16, got k=${k} n=${n}`);
  const alpha = a.alpha === undefined ? 1 : finite(op, 'alpha', a.alpha);
  const c = output(b, op, 'c', a.c, outDtype, m * n);
  const args: Record<string, unknown> = {
    dtype: DTYPE_CODE[dtype], outDtype: DTYPE_CODE[outDtype], m, n, k, alpha,
    a: tensor(b, op, 'a', a.a, dtype, m * k), b: tensor(b, op, 'b', a.b, dtype, n * k), c: c.arg, stream: streamArg(op, a.stream),
  };
  if (dtype === 'fp8e4m3') {
    if (b === 'cpu') {
      args.aScale = a.aScale === undefined ? 1 : finite(op, 'aScale', a.aScale);
      args.bScale = a.bScale === undefined ? 1 : finite(op, 'bScale', a.bScale);
    } else {
      args.aScale = a.aScale === undefined ? undefined : tensor(b, op, 'aScale', a.aScale, 'f32', 1);
      args.bScale = a.bScale === undefined ? undefined : tensor(b, op, 'bScale', a.bScale, 'f32', 1);
    }
  }
  return { args, out: c.value };
}

function prepSample(b: Backend, a: SampleArgs<Backend>) {
  const op = 'sample';
  const batch = nonNegInt(op, 'batch', a.batch);
  const vocab = posInt(op, 'vocab', a.vocab);
  if (b === 'gpu' && vocab > SAMPLING_MAX_VOCAB_GPU) fail(op, `vocab must be <= ${SAMPLING_MAX_VOCAB_GPU} on the GPU, got ${vocab}`);
  const outI32 = (name: string, v: unknown) => {
    if (v === undefined || v === null) {
      if (b === 'gpu') fail(op, `${name} (an output) must be given as a DeviceBuffer on the GPU path`);
      const h = new Int32Array(batch);
      return { arg: h as unknown, value: h as unknown };
    }
    return { arg: tensor(b, op, name, v, 'i32', batch), value: v };
  };
  const tok = outI32('tokens', a.tokens);
  const st = outI32('status', a.status);
  const lp = output(b, op, 'logprobs', a.logprobs, 'f32', batch);
  return {
    args: {
      batch, vocab,
      logits: tensor(b, op, 'logits', a.logits, 'f32', batch * vocab),
      temperature: tensor(b, op, 'temperature', a.temperature, 'f32', batch),
      topK: tensor(b, op, 'topK', a.topK, 'i32', batch),
      topP: tensor(b, op, 'topP', a.topP, 'f32', batch),
      minP: tensor(b, op, 'minP', a.minP, 'f32', batch),
      seeds: tensor(b, op, 'seeds', a.seeds, 'u64', batch),
      offsets: tensor(b, op, 'offsets', a.offsets, 'u64', batch),
      tokens: tok.arg, logprobs: lp.arg, status: st.arg, stream: streamArg(op, a.stream),
    },
    out: { tokens: tok.value, logprobs: lp.value, status: st.value },
  };
}

function prepCastF32(b: Backend, a: CastF32Args<Backend>) {
  const op = 'castF32';
  const dtype = act(b, op, a.dtype);
  const numRows = nonNegInt(op, 'numRows', a.numRows);
  const cols = posInt(op, 'cols', a.cols);
  const srcRows = a.srcRows === undefined ? numRows : nonNegInt(op, 'srcRows', a.srcRows);
  const scale = a.scale === undefined ? 1 : finite(op, 'scale', a.scale);
  const rows = optionalTensor(b, op, 'rows', a.rows, 'i32', numRows);
  if (rows === null && numRows > srcRows) fail(op, `numRows (${numRows}) exceeds srcRows (${srcRows}) without a rows gather`);
  if (b === 'cpu' && rows !== null) checkIndexRange(op, 'rows', rows as Int32Array, 0, srcRows);
  const out = output(b, op, 'out', a.out, 'f32', numRows * cols);
  return {
    args: { dtype: DTYPE_CODE[dtype], numRows, cols, srcRows, scale, x: tensor(b, op, 'x', a.x, dtype, srcRows * cols), rows, out: out.arg, stream: streamArg(op, a.stream) },
    out: out.value,
  };
}

function prepSegments(b: Backend, op: string, a: { segStarts?: unknown; numSegs?: number; segSlots: unknown; ranks: unknown }, numTokens: number, numSlots: number, maxRank: number) {
  const ranks = tensor(b, op, 'ranks', a.ranks, 'i32', numSlots);
  let segStarts: unknown = null;
  let numSegs = numTokens;
  if (a.segStarts !== undefined && a.segStarts !== null) {
    numSegs = nonNegInt(op, 'numSegs', a.numSegs);
    segStarts = tensor(b, op, 'segStarts', a.segStarts, 'i32', numSegs + 1);
  }
  const segSlots = tensor(b, op, 'segSlots', a.segSlots, 'i32', numSegs);
  if (b === 'cpu') {
    checkIndexRange(op, 'ranks', ranks as Int32Array, 0, maxRank + 1);
    checkIndexRange(op, 'segSlots', segSlots as Int32Array, 0, numSlots, true);
    if (segStarts) {
      const s = segStarts as Int32Array;
      if (s[0] !== 0 || s[numSegs] !== numTokens) fail(op, `segStarts must start at 0 and end at numTokens (${numTokens})`);
      for (let i = 0; i < numSegs; i++) if (s[i + 1] < s[i]) fail(op, `segStarts must be non-decreasing (at ${i})`);
    }
  }
  return { ranks, segStarts, segSlots, numSegs };
}

function prepLoraShrink(b: Backend, a: LoraShrinkArgs<Backend>) {
  const op = 'loraShrink';
  const dtype = act(b, op, a.dtype);
  const numTokens = nonNegInt(op, 'numTokens', a.numTokens);
  const inDim = posInt(op, 'inDim', a.inDim);
  const maxRank = posInt(op, 'maxRank', a.maxRank);
  const numSlots = posInt(op, 'numSlots', a.numSlots);
  if (b === 'gpu' && (inDim % 8 !== 0 || maxRank > 128)) fail(op, `inDim must be a multiple of 8 and maxRank <= 128 on the GPU (inDim=${inDim}, maxRank=${maxRank})`);
  const seg = prepSegments(b, op, a, numTokens, numSlots, maxRank);
  const y = output(b, op, 'y', a.y, 'f32', numTokens * maxRank);
  return {
    args: {
      dtype: DTYPE_CODE[dtype], numTokens, inDim, maxRank, numSlots, ...seg,
      x: tensor(b, op, 'x', a.x, dtype, numTokens * inDim), a: tensor(b, op, 'a', a.a, dtype, numSlots * maxRank * inDim),
      y: y.arg, stream: streamArg(op, a.stream),
    },
    out: y.value,
  };
}

function prepLoraExpand(b: Backend, a: LoraExpandArgs<Backend>) {
  const op = 'loraExpand';
  const dtype = act(b, op, a.dtype);
  const numTokens = nonNegInt(op, 'numTokens', a.numTokens);
  const outDim = posInt(op, 'outDim', a.outDim);
  const maxRank = posInt(op, 'maxRank', a.maxRank);
  const numSlots = posInt(op, 'numSlots', a.numSlots);
  if (b === 'gpu' && (maxRank % 8 !== 0 || maxRank > 128)) fail(op, `maxRank must be a multiple of 8 and <= 128 on the GPU, got ${maxRank}`);
  const seg = prepSegments(b, op, a, numTokens, numSlots, maxRank);
  return {
    args: {
      dtype: DTYPE_CODE[dtype], numTokens, outDim, maxRank, numSlots, ...seg,
      y: tensor(b, op, 'y', a.y, 'f32', numTokens * maxRank), b: tensor(b, op, 'b', a.b, dtype, numSlots * outDim * maxRank),
      scales: tensor(b, op, 'scales', a.scales, 'f32', numSlots),
      out: tensor(b, op, 'out', a.out, dtype, numTokens * outDim), stream: streamArg(op, a.stream),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The CPU backend: reference implementations (f32 arithmetic, rounding where outputs are stored).

export interface CpuOps {
  embedding(a: EmbeddingArgs<'cpu'>): HostArray;
  rmsnorm(a: RmsNormArgs<'cpu'>): HostArray;
  rope(a: RopeArgs<'cpu'>): void;
  kvWrite(a: KvWriteArgs<'cpu'>): void;
  pagedDecode(a: PagedDecodeArgs<'cpu'>): HostArray;
  prefill(a: PrefillArgs<'cpu'>): HostArray;
  siluMul(a: SiluMulArgs<'cpu'>): HostArray;
  decodeGemv(a: DecodeGemvArgs<'cpu'>): HostArray;
  gemm(a: GemmArgs<'cpu'>): HostArray;
  sample(a: SampleArgs<'cpu'>): SampleResult;
  loraShrink(a: LoraShrinkArgs<'cpu'>): Float32Array;
  loraExpand(a: LoraExpandArgs<'cpu'>): void;
  castF32(a: CastF32Args<'cpu'>): Float32Array;
}

function makeCpu(): CpuOps {
  const run = <R>(name: string, p: { args: Record<string, unknown>; out?: unknown }): R => {
    call(`cpu_${name}`, p.args);
    return p.out as R;
  };
  return {
    embedding: (a) => run('embedding', prepEmbedding('cpu', a as EmbeddingArgs<Backend>)),
    rmsnorm: (a) => run('rmsnorm', prepRmsNorm('cpu', a as RmsNormArgs<Backend>)),
    rope: (a) => run('rope', prepRope('cpu', a as RopeArgs<Backend>)),
    kvWrite: (a) => run('kv_write', prepKvWrite('cpu', a as KvWriteArgs<Backend>)),
    pagedDecode: (a) => run('paged_decode', prepPagedDecode('cpu', a as PagedDecodeArgs<Backend>)),
    prefill: (a) => run('prefill', prepPrefill('cpu', a as PrefillArgs<Backend>)),
    siluMul: (a) => run('silu_mul', prepSiluMul('cpu', a as SiluMulArgs<Backend>)),
    decodeGemv: (a) => run('decode_gemv', prepDecodeGemv('cpu', a as DecodeGemvArgs<Backend>)),
    gemm: (a) => run('gemm', prepGemm('cpu', a as GemmArgs<Backend>)),
    sample: (a) => run('sampling', prepSample('cpu', a as SampleArgs<Backend>)),
    loraShrink: (a) => run('lora_shrink', prepLoraShrink('cpu', a as LoraShrinkArgs<Backend>)),
    loraExpand: (a) => run('lora_expand', prepLoraExpand('cpu', a as LoraExpandArgs<Backend>)),
    castF32: (a) => run('cast_f32', prepCastF32('cpu', a as CastF32Args<Backend>)),
  };
}

let cpuOps: CpuOps | null = null;
/** The CPU references; throws a NativeError saying why if the addon is not built or not loadable. */
export function cpu(): CpuOps {
  addonOrThrow();
  if (!cpuOps) cpuOps = makeCpu();
  return cpuOps;
}

// ---------------------------------------------------------------------------------------------
// The GPU backend

export interface GpuOps {
  readonly status: GpuStatus;
  alloc(bytes: number): DeviceBuffer;
  /** Allocates and uploads (synchronously). */
  upload(src: ArrayBufferView): DeviceBuffer;
  /** Copies host -> device; waits for the copy unless `async` (then src must be pinned). */
  copyToDevice(dst: DeviceBuffer, src: ArrayBufferView, opts?: { stream?: Stream; async?: boolean; dstOffsetBytes?: number }): void;
  /** Copies device -> host; waits unless `async` (then dst must be pinned). */
  copyToHost(dst: ArrayBufferView, src: DeviceBuffer, opts?: { stream?: Stream; async?: boolean }): void;
  copy(dst: DeviceBuffer, src: DeviceBuffer, bytes: number, stream?: Stream): void;
  fill(dst: DeviceBuffer, byteValue: number, stream?: Stream): void;
  /** Page-locked host memory (freed when the ArrayBuffer is collected). */
  hostAlloc(bytes: number): ArrayBuffer;
  createStream(): Stream;
  destroyStream(s: Stream): void;
  sync(s?: Stream): void;
  createEvent(): bigint;
  destroyEvent(e: bigint): void;
  record(e: bigint, s?: Stream): void;
  elapsedMs(start: bigint, end: bigint): number;
  /** Captures everything `fn` queues on `s` (not the default stream) into a replayable graph. */
  capture(s: Stream, fn: () => void): bigint;
  launchGraph(g: bigint, s: Stream): void;
  destroyGraph(g: bigint): void;

  embedding(a: EmbeddingArgs<'gpu'>): void;
  rmsnorm(a: RmsNormArgs<'gpu'>): void;
  rope(a: RopeArgs<'gpu'>): void;
  kvWrite(a: KvWriteArgs<'gpu'>): void;
  pagedDecode(a: PagedDecodeArgs<'gpu'>): void;
  prefill(a: PrefillArgs<'gpu'>): void;
  siluMul(a: SiluMulArgs<'gpu'>): void;
  decodeGemv(a: DecodeGemvArgs<'gpu'>): void;
  gemm(a: GemmArgs<'gpu'>): void;
  sample(a: SampleArgs<'gpu'>): void;
  loraShrink(a: LoraShrinkArgs<'gpu'>): void;
  loraExpand(a: LoraExpandArgs<'gpu'>): void;
  castF32(a: CastF32Args<'gpu'>): void;
}

function byteView(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function makeGpu(m: Addon, status: GpuStatus): GpuOps {
  const run = (name: string, p: { args: Record<string, unknown> }): void => call(`cuda_${name}`, p.args);
  const wrap = <T>(op: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof NativeError) throw err;
      throw new NativeError('cuda_error', `${op}: ${(err as Error).message}`);
    }
  };
  const gpuOps: GpuOps = {
    status,
    alloc: (bytes) => {
      posInt('alloc', 'bytes', bytes);
      return new DeviceBuffer(wrap('alloc', () => m.malloc(bytes)), bytes);
    },
    upload: (src) => {
      if (!ArrayBuffer.isView(src)) fail('upload', `src must be a typed array, got ${describe(src)}`);
      const buf = gpuOps.alloc(Math.max(src.byteLength, 1));
      gpuOps.copyToDevice(buf, src);
      return buf;
    },
    copyToDevice: (dst, src, opts = {}) => {
      if (!(dst instanceof DeviceBuffer)) fail('copyToDevice', `dst must be a DeviceBuffer, got ${describe(dst)}`);
      if (!ArrayBuffer.isView(src)) fail('copyToDevice', `src must be a typed array, got ${describe(src)}`);
      const off = opts.dstOffsetBytes ?? 0;
      if (!isInt(off) || off < 0 || off + src.byteLength > dst.bytes) fail('copyToDevice', `${src.byteLength} bytes at offset ${off} do not fit a ${dst.bytes}-byte buffer`);
      const s = streamArg('copyToDevice', opts.stream);
      wrap('copyToDevice', () => {
        m.memcpyH2D(dst.ptr + BigInt(off), byteView(src), src.byteLength, s);
        if (!opts.async) m.streamSync(s);
      });
    },
    copyToHost: (dst, src, opts = {}) => {
      if (!(src instanceof DeviceBuffer)) fail('copyToHost', `src must be a DeviceBuffer, got ${describe(src)}`);
      if (!ArrayBuffer.isView(dst)) fail('copyToHost', `dst must be a typed array, got ${describe(dst)}`);
      if (dst.byteLength > src.bytes) fail('copyToHost', `dst wants ${dst.byteLength} bytes, the buffer has ${src.bytes}`);
      const s = streamArg('copyToHost', opts.stream);
      wrap('copyToHost', () => {
        m.memcpyD2H(byteView(dst), src.ptr, dst.byteLength, s);
        if (!opts.async) m.streamSync(s);
      });
    },
    copy: (dst, src, bytes, stream) => {
      if (!(dst instanceof DeviceBuffer) || !(src instanceof DeviceBuffer)) fail('copy', 'dst and src must be DeviceBuffers');
      nonNegInt('copy', 'bytes', bytes);
      if (bytes > dst.bytes || bytes > src.bytes) fail('copy', `${bytes} bytes exceed a buffer (dst ${dst.bytes}, src ${src.bytes})`);
      wrap('copy', () => m.memcpyD2D(dst.ptr, src.ptr, bytes, streamArg('copy', stream)));
    },
    fill: (dst, byteValue, stream) => {
      if (!(dst instanceof DeviceBuffer)) fail('fill', 'dst must be a DeviceBuffer');
      if (!isInt(byteValue) || byteValue < 0 || byteValue > 255) fail('fill', `byteValue must be 0..255, got ${byteValue}`);
      wrap('fill', () => m.memset(dst.ptr, byteValue, dst.bytes, streamArg('fill', stream)));
    },
    hostAlloc: (bytes) => wrap('hostAlloc', () => m.hostAlloc(posInt('hostAlloc', 'bytes', bytes))),
    createStream: () => wrap('createStream', () => m.streamCreate()),
    destroyStream: (s) => wrap('destroyStream', () => m.streamDestroy(streamArg('destroyStream', s))),
    sync: (s) => wrap('sync', () => (s === undefined ? m.deviceSync() : m.streamSync(streamArg('sync', s)))),
    createEvent: () => wrap('createEvent', () => m.eventCreate()),
    destroyEvent: (e) => wrap('destroyEvent', () => m.eventDestroy(e)),
    record: (e, s) => wrap('record', () => m.eventRecord(e, streamArg('record', s))),
    elapsedMs: (a, b) => wrap('elapsedMs', () => {
      m.eventSync(b);
      return m.eventElapsedMs(a, b);
    }),
    capture: (s, fn) => {
      if (streamArg('capture', s) === 0n) fail('capture', 'graphs must be captured on a created stream, not the default stream');
      wrap('capture', () => m.graphBegin(s));
      try {
        fn();
      } catch (err) {
        try {
          m.graphDestroy(m.graphEnd(s));
        } catch {
          // the capture was already invalidated; the original error matters
        }
        throw err;
      }
      return wrap('capture', () => m.graphEnd(s));
    },
    launchGraph: (g, s) => wrap('launchGraph', () => m.graphLaunch(g, streamArg('launchGraph', s))),
    destroyGraph: (g) => wrap('destroyGraph', () => m.graphDestroy(g)),

    embedding: (a) => run('embedding', prepEmbedding('gpu', a as EmbeddingArgs<Backend>)),
    rmsnorm: (a) => run('rmsnorm', prepRmsNorm('gpu', a as RmsNormArgs<Backend>)),
    rope: (a) => run('rope', prepRope('gpu', a as RopeArgs<Backend>)),
    kvWrite: (a) => run('kv_write', prepKvWrite('gpu', a as KvWriteArgs<Backend>)),
    pagedDecode: (a) => run('paged_decode', prepPagedDecode('gpu', a as PagedDecodeArgs<Backend>)),
    prefill: (a) => run('prefill', prepPrefill('gpu', a as PrefillArgs<Backend>)),
    siluMul: (a) => run('silu_mul', prepSiluMul('gpu', a as SiluMulArgs<Backend>)),
    decodeGemv: (a) => run('decode_gemv', prepDecodeGemv('gpu', a as DecodeGemvArgs<Backend>)),
    gemm: (a) => {
      if (!status.withCublas) throw new NativeError('no_cublas', 'gemm: the addon was built without cuBLAS (cublasLt.h was missing)');
      run('gemm', prepGemm('gpu', a as GemmArgs<Backend>));
    },
    sample: (a) => run('sampling', prepSample('gpu', a as SampleArgs<Backend>)),
    loraShrink: (a) => run('lora_shrink', prepLoraShrink('gpu', a as LoraShrinkArgs<Backend>)),
    loraExpand: (a) => run('lora_expand', prepLoraExpand('gpu', a as LoraExpandArgs<Backend>)),
    castF32: (a) => run('cast_f32', prepCastF32('gpu', a as CastF32Args<Backend>)),
  };
  return gpuOps;
}

let gpuOpsCache: GpuOps | null = null;
/** The CUDA backend; throws a NativeError whose code and message say why it is unavailable. */
export function gpu(): GpuOps {
  const m = addonOrThrow();
  const { status } = state();
  if (!status.gpu.available) throw new NativeError(status.gpu.code ?? 'no_gpu', status.gpu.reason);
  if (!gpuOpsCache) gpuOpsCache = makeGpu(m, status.gpu);
  return gpuOpsCache;
}
