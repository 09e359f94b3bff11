// A fake GPU for the power microbenchmark: kernels take a fixed time at the capped clock and less
// at boost; "heat" (the time-average compute share) follows an exponential with time constant
// tauMs, and compute kernels run at speed(heat) of their capped time (1 when hot). Events read a
// virtual device clock. Enough of GpuOps for calibration/power-bench.ts.
import type { GpuOps } from '../../native/index.js';

export interface FakePowerGpu {
  readonly g: GpuOps;
  /** Host sleeps advance the device clock too (the GPU idles). */
  sleep(ms: number): void;
}

export function fakePowerGpu(opts: { tauMs: number; speed: (heat: number) => number; computeMs: number; memoryMs: number; computeShare: number }): FakePowerGpu {
  let nowMs = 0;
  let heat = 0;
  const events = new Map<bigint, number>();
  let nextEvent = 1n;
  const advance = (ms: number, share: number): void => {
    const a = Math.exp(-ms / opts.tauMs);
    heat = share + (heat - share) * a;
    nowMs += ms;
  };
  const buffer = () => ({ free: () => {}, bytes: 0, ptr: 0n });
  const g = {
    status: { available: true, name: 'fake power GPU' },
    alloc: () => buffer(),
    fill: () => {},
    createStream: () => 1n,
    destroyStream: () => {},
    createEvent: () => nextEvent++,
    destroyEvent: () => {},
    record: (e: bigint) => void events.set(e, nowMs),
    sync: () => {},
    elapsedMs: (a: bigint, b: bigint) => events.get(b)! - events.get(a)!,
    gemm: (a: { m: number }) => {
      if (a.m >= 512) {
        // Compute-bound: the part of it that is compute scales with the clock.
        const ms = opts.computeMs * (1 - opts.computeShare * (1 - opts.speed(heat)));
        advance(ms, opts.computeShare);
      } else advance(opts.memoryMs, 0);
    },
  } as unknown as GpuOps;
  return { g, sleep: (ms) => advance(ms, 0) };
}
