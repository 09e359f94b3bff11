import type { BatchPlan } from '../policy/index.js';
import type { VirtualClock } from './clock.js';
import type { ModelRunner, RunnerResult, RunnerStep } from './runner.js';

/** A step's duration in integer µs, from its plan and start time (e.g. a cost model, injected by the caller). */
export type StepDurationFn = (plan: BatchPlan, startUs: number) => number;

/**
 * No model: each step advances the virtual clock by the injected duration and "samples" a token
 * that depends only on (sequence, output index). With a cost model as the duration, the engine
 * loop must reproduce the simulator's schedule exactly (the differential test).
 */
export class FakeRunner implements ModelRunner {
  readonly name = 'fake';

  constructor(
    private readonly clock: VirtualClock,
    private readonly stepDurationUs: StepDurationFn,
    readonly vocabSize = 32000,
  ) {}

  execute(step: RunnerStep): RunnerResult {
    const d = this.stepDurationUs(step.plan, this.clock.nowUs());
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`fake runner: step duration ${d} µs; must be a non-negative integer`);
    this.clock.advance(d);
    const tokens = new Int32Array(step.items.length).fill(-1);
    step.items.forEach((item, i) => {
      if (item.samples) tokens[i] = fakeToken(item.seqId, item.outputIndex, this.vocabSize);
    });
    return { tokens, gpuTimeUs: null };
  }

  close(): void {}
}

export function fakeToken(seqId: number, outputIndex: number, vocabSize: number): number {
  let h = Math.imul(seqId + 1, 0x9e3779b1) ^ Math.imul(outputIndex + 1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return ((h ^ (h >>> 13)) >>> 0) % vocabSize;
}
