// The memory and kernel front the forward pass runs on. Two implementations with one shape:
// the CPU backend (native cpu() reference ops on host typed arrays) and the GPU backend (native
// gpu() ops on device buffers). The forward never branches on the backend except through here.
import {
  allocHost, cpu, DeviceBuffer, gpu, type DType, type GpuOps, type HostArray, type SampleResult,
} from '../../native/index.js';
import { EngineError } from './errors.js';
import type { StArray } from './safetensors.js';

/** A tensor on the device: a host typed array (cpu) or a DeviceBuffer (gpu). */
export type Tensor = HostArray | Int32Array | DeviceBuffer;
/** Host values a persistent tensor is written from (bf16 travels as its bits). */
export type HostValues = Float32Array | Uint16Array | Int32Array;
export type ActDtype = 'f32' | 'bf16';
/** Op arguments as the native front takes them (checked there). */
export type OpArgs = Record<string, unknown>;

/** Per-row parameters of the fused sampler (host arrays, one entry per sampled row). */
export interface SampleParams {
  readonly temperature: Float32Array;
  readonly topK: Int32Array;
  readonly topP: Float32Array;
  readonly minP: Float32Array;
  readonly seeds: BigUint64Array;
  readonly offsets: BigUint64Array;
}

/** The same parameters uploaded to the GPU. */
type DeviceSampleParams = { readonly [K in keyof SampleParams]: DeviceBuffer };
/** SampleParams where the device's sampler reads them: the host arrays (cpu) or one upload (gpu). */
export type StagedSampleParams = SampleParams | DeviceSampleParams;

export interface Device {
  readonly kind: 'cpu' | 'gpu';
  readonly dtype: ActDtype;
  /** Copies a host tensor in (weights, KV cache); lives until `free`. */
  upload(data: StArray): Tensor;
  /** A zeroed persistent tensor (the KV cache). */
  zeros(dtype: ActDtype, count: number): Tensor;
  /** A zeroed persistent int32 tensor (per-slot LoRA ranks). */
  zerosInt(count: number): Tensor;
  /** Copies host values into a persistent tensor at element `dstOffset` (waits for the copy). */
  write(dst: Tensor, dstOffset: number, data: HostValues): void;
  /**
   * Queues the same copy on the device's stream without waiting (LoRA slot loads: hundreds of
   * copies, one wait). `data` must stay alive and unchanged until the next `sync`; from
   * `hostBuffer` memory the GPU copies it at full bus speed.
   */
  writeQueued(dst: Tensor, dstOffset: number, data: HostValues): void;
  /** Host memory for `writeQueued` sources: page-locked on the GPU (plain memory on the CPU). */
  hostBuffer(bytes: number): ArrayBuffer;
  /** Per-step scratch, valid until the next `resetScratch`. */
  scratch(dtype: ActDtype, count: number): Tensor;
  /** Index arrays for this step, uploaded in one copy. */
  ints(arrays: readonly Int32Array[]): Tensor[];
  resetScratch(): void;
  /** Elements [offset, offset + count) of `t` as a tensor of its own (no copy). */
  view(t: Tensor, dtype: ActDtype, offset: number, count: number): Tensor;
  /** Copies `count` elements from src[srcOffset] to dst[dstOffset] on the device. */
  copy(dst: Tensor, dstOffset: number, src: Tensor, srcOffset: number, count: number, dtype: ActDtype): void;
  /** Reads `count` elements of `t` back to the host as stored (bf16 bits or f32; waits for queued work). */
  readHost(t: Tensor, dtype: ActDtype, count: number): Uint16Array | Float32Array;
  /** Waits for all queued work. */
  sync(): void;
  /** GPU time of the work between `beginTiming` and `endTimingMs` (null on the CPU). */
  beginTiming(): void;
  endTimingMs(): number | null;
  free(): void;
  embedding(a: OpArgs): void;
  rmsnorm(a: OpArgs): void;
  rope(a: OpArgs): void;
  kvWrite(a: OpArgs): void;
  pagedDecode(a: OpArgs): void;
  prefill(a: OpArgs): void;
  siluMul(a: OpArgs): void;
  /** One-row linear layer with its norm / residual add / SiLU-and-mul fused (batch-1 decode). */
  decodeGemv(a: OpArgs): void;
  /** Multi-LoRA: y[t] = A[slot(t)] x[t] (f32 out). */
  loraShrink(a: OpArgs): void;
  /** Multi-LoRA: out[t] += scale[slot(t)] · B[slot(t)] y[t]. */
  loraExpand(a: OpArgs): void;
  /** c = a bᵀ; on the CPU `outF32` writes f32 (the logits), on the GPU the output is `dtype`. */
  gemm(a: OpArgs): void;
  /** Whether gemm can write f32 output (the LM head straight into f32 logits). */
  readonly gemmF32Out: boolean;
  /** Rows to run for `n` token rows: the GPU pads to a few bucket sizes so GEMM shapes repeat. */
  rowBucket(n: number): number;
  /**
   * Places the fused sampler's per-row parameters in this step's scratch. Call it before queueing
   * the forward: on the GPU the upload waits for the stream, which is then idle, not for the forward.
   */
  stageSampleParams(params: SampleParams): StagedSampleParams;
  /**
   * Queues the fused sampler over rows [0, rows) of `logits` (bf16 rows are widened to f32 first,
   * exactly); the returned function waits and gives tokens, logprobs and status per row. On the GPU
   * only those three small arrays come back to the host (one copy), never the logits.
   */
  sample(logits: Tensor, dtype: ActDtype, rows: number, vocab: number, params: StagedSampleParams): () => SampleResult;
  /** Streaming multiprocessors (the paged decode's split rule; 0 on the CPU). */
  readonly smCount: number;
  /**
   * Records everything `fn` queues into a CUDA graph instead of running it (nothing executes);
   * replay with `launchGraph`. The GPU device must run on a created stream (not the default
   * stream); the CPU device throws an EngineError with code 'graphs'.
   */
  captureGraph(fn: () => void): GraphExec;
  /** Queues one replay of a captured graph on the device's stream. */
  launchGraph(g: GraphExec): void;
  destroyGraph(g: GraphExec): void;
}

/** An instantiated CUDA graph (an opaque native handle). */
export type GraphExec = bigint;

function noGraphs(): never {
  throw new EngineError('graphs', 'CUDA graphs need the GPU backend (the CPU backend runs every op eagerly)');
}

const BYTES: Record<ActDtype | 'i32', number> = { f32: 4, bf16: 2, i32: 4 };

// ---- CPU --------------------------------------------------------------------------------------

export function cpuDevice(dtype: ActDtype, rowBucket: (n: number) => number = (n) => n): Device {
  const ops = cpu();
  const host = (t: Tensor): HostArray => t as HostArray;
  const write = (dst: Tensor, dstOffset: number, data: HostValues): void => {
    const t = host(dst) as unknown as { set(a: ArrayLike<number>, o: number): void; length: number; constructor: unknown };
    if (t.constructor !== data.constructor) throw new Error(`write: ${data.constructor.name} into a ${(t.constructor as { name: string }).name}`);
    t.set(data, dstOffset);
  };
  return {
    kind: 'cpu',
    dtype,
    gemmF32Out: true,
    rowBucket,
    upload: (data) => data.slice(),
    zeros: (d, count) => allocHost(d as DType, count),
    zerosInt: (count) => new Int32Array(count),
    write,
    writeQueued: write,
    hostBuffer: (bytes) => new ArrayBuffer(bytes),
    scratch: (d, count) => allocHost(d as DType, count),
    ints: (arrays) => arrays.slice(),
    resetScratch: () => {},
    view: (t, _d, offset, count) => (host(t) as Uint16Array).subarray(offset, offset + count),
    copy: (dst, dstOffset, src, srcOffset, count) => {
      (host(dst) as Uint16Array).set((host(src) as Uint16Array).subarray(srcOffset, srcOffset + count), dstOffset);
    },
    readHost: (t, _d, count) => (host(t) as Uint16Array).subarray(0, count),
    sync: () => {},
    beginTiming: () => {},
    endTimingMs: () => null,
    free: () => {},
    smCount: 0,
    captureGraph: () => noGraphs(),
    launchGraph: () => noGraphs(),
    destroyGraph: () => noGraphs(),
    embedding: (a) => void ops.embedding(a as never),
    rmsnorm: (a) => void ops.rmsnorm(a as never),
    rope: (a) => ops.rope(a as never),
    kvWrite: (a) => ops.kvWrite(a as never),
    pagedDecode: (a) => void ops.pagedDecode(a as never),
    prefill: (a) => void ops.prefill(a as never),
    siluMul: (a) => void ops.siluMul(a as never),
    decodeGemv: (a) => void ops.decodeGemv(a as never),
    loraShrink: (a) => void ops.loraShrink(a as never),
    loraExpand: (a) => ops.loraExpand(a as never),
    gemm: (a) => void ops.gemm(a as never),
    stageSampleParams: (p) => p,
    sample: (logits, d, rows, vocab, p) => {
      const x = (host(logits) as Uint16Array | Float32Array).subarray(0, rows * vocab);
      const f32 = d === 'f32' ? (x as Float32Array) : ops.castF32({ dtype: d, numRows: rows, cols: vocab, x });
      const result = ops.sample({ batch: rows, vocab, logits: f32, ...(p as SampleParams) });
      return () => result;
    },
  };
}

// ---- GPU --------------------------------------------------------------------------------------

/**
 * GPU row buckets: powers of two up to 1024, then multiples of 1024. cuBLAS plans are tuned on a
 * shape's first call (about 0.1 s each), so unpadded steps would tune a new shape almost every
 * step; with buckets a run meets at most ~20 token counts. Padding costs little where steps are
 * bound by weight reads (decode) and at most 2x rows above that.
 */
export function gpuRowBucket(n: number): number {
  if (n <= 1024) {
    let b = 1;
    while (b < n) b *= 2;
    return b;
  }
  return Math.ceil(n / 1024) * 1024;
}

/** Alignment of scratch views (covers every vectorized load in the kernels). */
const ALIGN = 256;

/**
 * The GPU device: persistent buffers (weights, KV) are separate allocations; per-step scratch
 * is a bump arena of `scratchBytes`, reset every step, so a step allocates nothing.
 */
export function gpuDevice(dtype: 'bf16', scratchBytes: number, stream: bigint): Device {
  const g: GpuOps = gpu();
  const owned: DeviceBuffer[] = [];
  const arena = g.alloc(scratchBytes);
  owned.push(arena);
  let used = 0;
  const take = (bytes: number): DeviceBuffer => {
    const start = Math.ceil(used / ALIGN) * ALIGN;
    if (start + bytes > scratchBytes) throw new Error(`GPU scratch exhausted: need ${start + bytes} bytes of ${scratchBytes} (raise the workspace)`);
    used = start + bytes;
    return new DeviceBuffer(arena.ptr + BigInt(start), Math.max(bytes, 1));
  };
  const dev = (t: Tensor): DeviceBuffer => t as DeviceBuffer;
  const start = g.createEvent();
  const end = g.createEvent();
  const withStream = (a: OpArgs): OpArgs => ({ ...a, stream });
  const graphs = new Set<GraphExec>();
  // Index arrays of a step in one upload, each piece 256-byte aligned.
  const ints = (arrays: readonly Int32Array[]): DeviceBuffer[] => {
    let total = 0;
    const offsets = arrays.map((a) => {
      const o = total;
      total += Math.ceil(Math.max(a.length, 1) / 64) * 64; // 256-byte aligned pieces
      return o;
    });
    const packed = new Int32Array(total);
    arrays.forEach((a, i) => packed.set(a, offsets[i]));
    const buf = take(total * 4);
    g.copyToDevice(buf, packed, { stream });
    return arrays.map((a, i) => new DeviceBuffer(buf.ptr + BigInt(offsets[i] * 4), Math.max(a.length, 1) * 4));
  };

  return {
    kind: 'gpu',
    dtype,
    gemmF32Out: false,
    rowBucket: gpuRowBucket,
    upload: (data) => {
      const b = g.upload(data);
      owned.push(b);
      return b;
    },
    zeros: (d, count) => {
      const b = g.alloc(Math.max(1, count * BYTES[d]));
      g.fill(b, 0, stream);
      owned.push(b);
      return b;
    },
    zerosInt: (count) => {
      const b = g.alloc(Math.max(1, count * 4));
      g.fill(b, 0, stream);
      owned.push(b);
      return b;
    },
    write: (dst, dstOffset, data) => g.copyToDevice(dev(dst), data, { stream, dstOffsetBytes: dstOffset * data.BYTES_PER_ELEMENT }),
    writeQueued: (dst, dstOffset, data) => g.copyToDevice(dev(dst), data, { stream, async: true, dstOffsetBytes: dstOffset * data.BYTES_PER_ELEMENT }),
    hostBuffer: (bytes) => g.hostAlloc(Math.max(1, bytes)),
    scratch: (d, count) => take(count * BYTES[d]),
    ints: (arrays) => ints(arrays),
    resetScratch: () => {
      used = 0;
    },
    view: (t, d, offset, count) => new DeviceBuffer(dev(t).ptr + BigInt(offset * BYTES[d]), Math.max(count, 1) * BYTES[d]),
    copy: (dst, dstOffset, src, srcOffset, count, d) => {
      const b = BYTES[d];
      g.copy(new DeviceBuffer(dev(dst).ptr + BigInt(dstOffset * b), count * b), new DeviceBuffer(dev(src).ptr + BigInt(srcOffset * b), count * b), count * b, stream);
    },
    readHost: (t, d, count) => {
      const hostBuf = allocHost(d as DType, count) as Uint16Array | Float32Array;
      g.copyToHost(hostBuf, new DeviceBuffer(dev(t).ptr, count * BYTES[d]), { stream });
      return hostBuf;
    },
    sync: () => g.sync(stream),
    beginTiming: () => g.record(start, stream),
    endTimingMs: () => {
      g.record(end, stream);
      return g.elapsedMs(start, end);
    },
    free: () => {
      g.sync(stream);
      for (const e of graphs) g.destroyGraph(e);
      graphs.clear();
      for (const b of owned) b.free();
      owned.length = 0;
      g.destroyEvent(start);
      g.destroyEvent(end);
    },
    smCount: g.status.smCount ?? 132,
    captureGraph: (fn) => {
      if (stream === 0n) throw new EngineError('graphs', 'CUDA graphs cannot be captured on the default stream: build the GPU device on a created stream');
      const e = g.capture(stream, fn);
      graphs.add(e);
      return e;
    },
    launchGraph: (e) => {
      if (!graphs.has(e)) throw new Error('launchGraph: not a live graph of this device');
      g.launchGraph(e, stream);
    },
    destroyGraph: (e) => {
      if (graphs.delete(e)) g.destroyGraph(e);
    },
    embedding: (a) => g.embedding(withStream(a) as never),
    rmsnorm: (a) => g.rmsnorm(withStream(a) as never),
    rope: (a) => g.rope(withStream(a) as never),
    kvWrite: (a) => g.kvWrite(withStream(a) as never),
    pagedDecode: (a) => g.pagedDecode(withStream(a) as never),
    prefill: (a) => g.prefill(withStream(a) as never),
    siluMul: (a) => g.siluMul(withStream(a) as never),
    decodeGemv: (a) => g.decodeGemv(withStream(a) as never),
    loraShrink: (a) => g.loraShrink(withStream(a) as never),
    loraExpand: (a) => g.loraExpand(withStream(a) as never),
    gemm: (a) => g.gemm(withStream(a) as never),
    stageSampleParams: (p) => {
      // f32 and u64 parameters travel as their bits in one index upload.
      const bits = (a: Float32Array | BigUint64Array | Int32Array): Int32Array => new Int32Array(a.buffer, a.byteOffset, a.byteLength / 4);
      const [temperature, topK, topP, minP, seeds, offsets] = ints([p.temperature, p.topK, p.topP, p.minP, p.seeds, p.offsets].map(bits));
      return { temperature, topK, topP, minP, seeds, offsets };
    },
    sample: (logits, d, rows, vocab, p) => {
      const { temperature, topK, topP, minP, seeds, offsets } = p as DeviceSampleParams;
      let f32 = dev(logits);
      if (d !== 'f32') {
        f32 = take(rows * vocab * 4);
        g.castF32({ dtype: d, numRows: rows, cols: vocab, srcRows: rows, x: dev(logits), out: f32, stream });
      }
      // tokens, logprobs and status in one buffer so they come back in one copy
      const piece = Math.ceil(rows / 64) * 64;
      const results = take(3 * piece * 4);
      const at = (i: number): DeviceBuffer => new DeviceBuffer(results.ptr + BigInt(i * piece * 4), rows * 4);
      g.sample({ batch: rows, vocab, logits: f32, temperature, topK, topP, minP, seeds, offsets, tokens: at(0), logprobs: at(1), status: at(2), stream });
      return () => {
        const back = new Int32Array(3 * piece);
        g.copyToHost(back, results, { stream });
        return { tokens: back.subarray(0, rows), logprobs: new Float32Array(back.buffer, piece * 4, rows), status: back.subarray(2 * piece, 2 * piece + rows) };
      };
    },
  };
}
