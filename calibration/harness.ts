// Timing on the GPU: a case is captured as a CUDA graph of N back-to-back calls (N chosen so one
// replay lasts about TARGET_GRAPH_US), replayed once to warm up, then replayed `reps` times
// between CUDA events; each replay gives one per-call time. Weights, KV caches and adapters are
// rotated through several copies when one copy would stay in L2, as each layer of a real forward
// pass reads different ones. Device memory comes from one arena filled with finite random bf16.
import { DeviceBuffer, type GpuOps, type Stream } from '../native/index.js';

export const TARGET_GRAPH_US = 400;
export const MAX_CALLS_PER_GRAPH = 256;
/** Rotate state through copies until this many bytes are touched per cycle (L2 is 50 MB). */
export const ROTATE_BYTES = 256 * 2 ** 20;
export const MAX_COPIES = 32;
/** A replay that cycles all copies may last up to this long. */
export const MAX_ROTATION_GRAPH_US = 5_000;
/**
 * Back-to-back compute before a compute-heavy case is timed. The power cap lowers the SM clock
 * within tens of ms of sustained compute (H200: time constant 15.9 ms, calibration/runs/
 * 2026-12-07-power-h200), and the simulator's power model scales compute prices from the hot
 * state down to the cool one, so a price must be a hot price. Without a soak a case met whatever
 * state the cases before it left. 40 ms is 2.5 time constants, and the soaked cases follow each
 * other closely, so the heat carries over from one to the next. (The soak did not change the
 * efficiency pattern by shape: 7B layer GEMMs at 0.62-0.74 of peak, the wide 13B/70B ones at
 * 0.8-0.88, soaked on an H100 as unsoaked on the H200; calibration/runs/2026-12-07-h100.)
 */
export const HOT_SOAK_MS = 40;

export interface TimingStats {
  readonly medianUs: number;
  readonly p10Us: number;
  readonly p90Us: number;
  readonly minUs: number;
  readonly maxUs: number;
  readonly reps: number;
  readonly callsPerRep: number;
}

/** Nearest-rank quantile of a sorted list. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function statsOf(timesUs: readonly number[], callsPerRep: number): TimingStats {
  const s = [...timesUs].sort((a, b) => a - b);
  return {
    medianUs: s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2,
    p10Us: quantile(s, 0.1),
    p90Us: quantile(s, 0.9),
    minUs: s[0],
    maxUs: s[s.length - 1],
    reps: s.length,
    callsPerRep,
  };
}

/** Repetitions for a replay of `graphUs`: more when short (noisier), fewer when long. */
export function repsFor(graphUs: number): number {
  if (graphUs <= 2_000) return 9;
  if (graphUs <= 20_000) return 5;
  return 3;
}

/** How many copies of `bytes` to rotate through. */
export function copiesFor(bytes: number): number {
  return Math.max(1, Math.min(MAX_COPIES, Math.ceil(ROTATE_BYTES / Math.max(1, bytes))));
}

/** Bump allocator over one device allocation; `reset` between cases. */
export class Arena {
  private offset = 0;
  private pinned = 0;
  readonly base: DeviceBuffer;
  constructor(private readonly g: GpuOps, readonly bytes: number) {
    this.base = g.alloc(bytes);
  }
  take(bytes: number): DeviceBuffer {
    const size = Math.ceil(Math.max(bytes, 1) / 256) * 256;
    if (this.offset + size > this.bytes) throw new Error(`arena: ${bytes} bytes do not fit (${this.offset} of ${this.bytes} used)`);
    const view = new DeviceBuffer(this.base.ptr + BigInt(this.offset), size);
    this.offset += size;
    return view;
  }
  /** Uploads `data` into a fresh region (synchronously). */
  put(data: ArrayBufferView, stream?: Stream): DeviceBuffer {
    const view = this.take(data.byteLength);
    this.g.copyToDevice(view, data, stream === undefined ? {} : { stream });
    return view;
  }
  /** Keeps what was taken so far across resets (e.g. shared random tables). */
  pin(): void {
    this.pinned = this.offset;
  }
  reset(): void {
    this.offset = this.pinned;
  }
  get used(): number {
    return this.offset;
  }
}

/** Fills the whole arena with copies of a random block of finite bf16 values of either sign in [0.0078, 0.0156). */
export function fillRandom(g: GpuOps, arena: Arena, random: () => number, stream: Stream): void {
  fillByDoubling(g, arena.base, arena.bytes, calibrationBf16Block(random, (64 * 2 ** 20) / 2), stream);
}

/**
 * The calibration's operand data: bf16 bits of either sign in [2^-7, 2^-6) (sign and 7 mantissa
 * bits random, the exponent fixed), `elems` of them.
 */
export function calibrationBf16Block(random: () => number, elems: number): Uint16Array {
  const block = new Uint16Array(elems);
  for (let i = 0; i < block.length; i++) block[i] = (random() < 0.5 ? 0x3c00 : 0xbc00) + Math.floor(random() * 128);
  return block;
}

/** Fills `bytes` of `dst` with repeats of `block`: one upload, then device copies that double the filled prefix. */
export function fillByDoubling(g: GpuOps, dst: DeviceBuffer, bytes: number, block: Uint16Array, stream: Stream): void {
  const first = Math.min(block.byteLength, bytes);
  g.copyToDevice(new DeviceBuffer(dst.ptr, first), new Uint16Array(block.buffer, block.byteOffset, first / 2), { stream });
  let filled = first;
  while (filled < bytes) {
    const n = Math.min(filled, bytes - filled);
    g.copy(new DeviceBuffer(dst.ptr + BigInt(filled), n), new DeviceBuffer(dst.ptr, n), n, stream);
    filled += n;
  }
  g.sync(stream);
}

/**
 * Per-call µs of `call` hot, as the calibration's microbenchmarks meet it: 40 ms of back-to-back
 * calls (HOT_SOAK_MS), then `reps` event-timed runs of `callsPerRep` calls each. Used by the GEMM
 * checks of issue 7 (gemm-data.ts, experiments/validate/gemm-operands.ts). GPU only.
 */
export function hotPerCallUs(g: GpuOps, stream: Stream, call: () => void, events: readonly [bigint, bigint], reps = 5, callsPerRep = 10): number[] {
  const [e0, e1] = events;
  const t0 = performance.now();
  while (performance.now() - t0 < HOT_SOAK_MS) {
    for (let i = 0; i < 20; i++) call();
    g.sync(stream);
  }
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    g.record(e0, stream);
    for (let j = 0; j < callsPerRep; j++) call();
    g.record(e1, stream);
    g.sync(stream);
    out.push((g.elapsedMs(e0, e1) * 1000) / callsPerRep);
  }
  return out;
}

export class GraphTimer {
  private readonly e0: bigint;
  private readonly e1: bigint;
  constructor(private readonly g: GpuOps, readonly stream: Stream) {
    this.e0 = g.createEvent();
    this.e1 = g.createEvent();
  }

  /** Milliseconds of whatever `fn` queues on the stream, run eagerly. */
  private eagerMs(fn: () => void): number {
    this.g.record(this.e0, this.stream);
    fn();
    this.g.record(this.e1, this.stream);
    return this.g.elapsedMs(this.e0, this.e1);
  }

  /**
   * Times `call(i)` (call i uses rotation copy i mod copies). An eager first call runs outside any
   * capture (the GEMM picks its algorithm then), the next three estimate the per-call time.
   * With `soakMs`, the graph is replayed back to back for about that long before the warm-up
   * replay (no host sync in between), so the timed replays find the GPU hot.
   */
  time(call: (i: number) => void, copies: number, soakMs = 0): TimingStats {
    const g = this.g;
    call(0);
    g.sync(this.stream);
    const estUs = (this.eagerMs(() => {
      for (let i = 1; i <= 3; i++) call(i);
    }) * 1e3) / 3;
    let n = Math.max(1, Math.min(MAX_CALLS_PER_GRAPH, Math.ceil(TARGET_GRAPH_US / Math.max(estUs, 0.5))));
    // Cycle through every rotation copy, unless the calls are long enough that L2 reuse between
    // them cannot matter (a replay would then last far longer than needed).
    if (copies > 1 && estUs * copies <= MAX_ROTATION_GRAPH_US) n = Math.min(MAX_CALLS_PER_GRAPH, Math.max(n, copies));
    const graph = g.capture(this.stream, () => {
      for (let i = 0; i < n; i++) call(i);
    });
    try {
      const soakReplays = Math.ceil((soakMs * 1e3) / Math.max(estUs * n, 1));
      for (let r = 0; r < soakReplays; r++) g.launchGraph(graph, this.stream);
      g.launchGraph(graph, this.stream); // warm-up replay
      const reps = repsFor(estUs * n);
      const times: number[] = [];
      for (let r = 0; r < reps; r++) {
        times.push((this.eagerMs(() => g.launchGraph(graph, this.stream)) * 1e3) / n);
      }
      return statsOf(times, n);
    } finally {
      g.destroyGraph(graph);
    }
  }

  /** Times an eager, uncapturable operation (host ↔ device copies) `reps` times after one warm-up. */
  timeEager(fn: () => void, reps: number): TimingStats {
    fn();
    this.g.sync(this.stream);
    const times: number[] = [];
    for (let r = 0; r < reps; r++) times.push(this.eagerMs(fn) * 1e3);
    return statsOf(times, 1);
  }

  dispose(): void {
    this.g.destroyEvent(this.e0);
    this.g.destroyEvent(this.e1);
  }
}

/** Times a host-side function with a wall clock (median of `reps` after one warm-up). */
export function timeHost(fn: () => void, reps: number, nowMs: () => number): TimingStats {
  fn();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = nowMs();
    fn();
    times.push((nowMs() - t0) * 1e3);
  }
  return statsOf(times, 1);
}
