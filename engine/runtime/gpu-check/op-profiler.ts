// Kernel time per op of the engine's forward on the GPU, launch gaps excluded: a Device whose
// kernel ops are wrapped in an event pair each. While recording, the step's index upload is
// followed by ~12 ms of queued device copies, so the whole step and its events are queued behind
// them and each pair times its kernel (plus the event records' own cost, about 2 us a pair).
// Used by run7.ts (decode) and run9.ts (prefill). GPU only.
import { gpu, type DeviceBuffer } from '../../../native/index.js';
import type { Device, OpArgs } from '../device.js';

const KERNEL_OPS = ['embedding', 'rmsnorm', 'rope', 'kvWrite', 'pagedDecode', 'prefill', 'siluMul', 'gemm', 'decodeGemv', 'loraShrink', 'loraExpand'] as const;
const BUSY_BYTES = 2 ** 31;
const BUSY_COPIES = 12;

/** One recorded op: its label (GEMMs carry their shape), its events and its arguments. */
interface Mark {
  readonly label: string;
  readonly e0: bigint;
  readonly e1: bigint;
  readonly op: (typeof KERNEL_OPS)[number];
  readonly args: OpArgs;
}

export interface OpTime {
  readonly launches: number;
  readonly us: number;
}

export class OpProfiler {
  readonly dev: Device;
  private readonly g = gpu();
  private readonly pool: bigint[];
  private readonly busyA: DeviceBuffer;
  private readonly busyB: DeviceBuffer;
  private used = 0;
  private marks: Mark[] = [];
  private recording = false;
  private busyPending = false;

  constructor(
    private readonly base: Device,
    private readonly stream: bigint,
    numEvents = 4000,
  ) {
    const g = this.g;
    this.pool = Array.from({ length: numEvents }, () => g.createEvent());
    this.busyA = g.alloc(BUSY_BYTES);
    this.busyB = g.alloc(BUSY_BYTES);
    const prof = { ...base } as Record<string, unknown>;
    for (const op of KERNEL_OPS) {
      const f = (base as unknown as Record<string, (a: OpArgs) => void>)[op];
      prof[op] = (a: OpArgs) => {
        if (!this.recording) return f(a);
        const [e0, e1] = this.nextEvents();
        g.record(e0, stream);
        f(a);
        g.record(e1, stream);
        const label =
          op === 'gemm' ? `gemm m=${String(a.m)} n=${String(a.n)} k=${String(a.k)}` : op === 'decodeGemv' ? `decodeGemv n=${String(a.n)} k=${String(a.k)} ${String(a.epilogue ?? 'store')}${a.normWeight ? '+norm' : ''}` : op;
        this.marks.push({ label, e0, e1, op, args: a });
      };
    }
    // The step's index upload waits for the stream; the busy copies are queued right after it.
    prof.ints = (arrays: readonly Int32Array[]) => {
      const r = base.ints(arrays);
      if (this.busyPending) this.queueBusy();
      this.busyPending = false;
      return r;
    };
    this.dev = prof as unknown as Device;
  }

  private nextEvents(): [bigint, bigint] {
    if (this.used + 2 > this.pool.length) throw new Error(`op profiler: more than ${this.pool.length / 2} ops in one recording`);
    const e0 = this.pool[this.used++];
    const e1 = this.pool[this.used++];
    return [e0, e1];
  }

  /** Queues `copies` device-to-device copies of 2 GiB (memory-bound, about 1 ms each on an H200). */
  queueBusy(copies = BUSY_COPIES): void {
    for (let i = 0; i < copies; i++) this.g.copy(this.busyB, this.busyA, BUSY_BYTES, this.stream);
  }

  /** Records the ops of `fn` (one forward); the caller syncs before reading. */
  record(fn: () => void): void {
    this.used = 0;
    this.marks = [];
    this.busyPending = true;
    this.recording = true;
    try {
      fn();
    } finally {
      this.recording = false;
      this.busyPending = false;
    }
  }

  /**
   * Replays the last recording's ops of kind `op` back to back, with nothing between them (each in
   * an event pair, queued behind the busy copies): the same calls on the same buffers as in the
   * forward, the way the calibration microbenchmarks run them.
   */
  replay(op: (typeof KERNEL_OPS)[number]): void {
    const calls = this.marks.filter((m) => m.op === op);
    const f = (this.base as unknown as Record<string, (a: OpArgs) => void>)[op];
    this.used = 0;
    this.queueBusy();
    const replayed: Mark[] = [];
    for (const m of calls) {
      const [e0, e1] = this.nextEvents();
      this.g.record(e0, this.stream);
      f(m.args);
      this.g.record(e1, this.stream);
      replayed.push({ ...m, e0, e1 });
    }
    this.marks = replayed;
  }

  /** The arguments of the last recording's ops of kind `op`, in launch order. */
  calls(op: (typeof KERNEL_OPS)[number]): OpArgs[] {
    return this.marks.filter((m) => m.op === op).map((m) => m.args);
  }

  /** Per label, launches and summed kernel µs of the last recording or replay (after a sync). */
  times(): Map<string, OpTime> {
    const out = new Map<string, OpTime>();
    for (const k of this.marks) {
      const us = this.g.elapsedMs(k.e0, k.e1) * 1000;
      const cur = out.get(k.label) ?? { launches: 0, us: 0 };
      out.set(k.label, { launches: cur.launches + 1, us: cur.us + us });
    }
    return out;
  }

  /** µs from the first op's start to the last op's end of the last recording (after a sync). */
  spanUs(): number {
    return this.g.elapsedMs(this.marks[0].e0, this.marks[this.marks.length - 1].e1) * 1000;
  }

  free(): void {
    this.g.sync(this.stream);
    this.busyA.free();
    this.busyB.free();
    for (const e of this.pool) this.g.destroyEvent(e);
  }
}

/** The upper median (index ⌊n/2⌋ of the sorted values), as the GPU checks report it. */
export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Per label over several recordings of the same forward: launches, the median summed µs, µs per
 * launch and, for GEMMs, the weight traffic in TB/s; and the sum of the medians.
 */
export function opTable(perStep: readonly Map<string, OpTime>[]): { table: Record<string, Record<string, number | undefined>>; sum: number } {
  const table: Record<string, Record<string, number | undefined>> = {};
  let sum = 0;
  for (const label of perStep[0].keys()) {
    const us = median(perStep.map((m) => m.get(label)!.us));
    sum += us;
    const n = perStep[0].get(label)!.launches;
    const gm = /gemm m=(\d+) n=(\d+) k=(\d+)/.exec(label);
    const tbPerS = gm !== null ? (n * Number(gm[2]) * Number(gm[3]) * 2) / (us * 1e-6) / 1e12 : undefined;
    table[label] = { launches: n, us_total: Math.round(us * 10) / 10, us_each: Math.round((us / n) * 100) / 100, weight_tb_per_s: tbPerS };
  }
  return { table, sum };
}
