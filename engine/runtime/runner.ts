// The runner seam: the engine loop hands a runner one planned step and gets back the sampled
// tokens. Runners: the Llama model on the CPU or GPU backend (model-runner.ts) and a fake with
// injected step durations (fake-runner.ts). Later baselines (no KV cache, contiguous KV, CPU
// sampling) are runners or runner options behind this same interface.
import type { BatchPlan, SeqId } from '../policy/index.js';

export interface SamplingParams {
  /** 0 = greedy. */
  readonly temperature: number;
  /** 0 disables. */
  readonly topK: number;
  /** 1 disables. */
  readonly topP: number;
  /** 0 disables. */
  readonly minP: number;
  /** Per-request seed; with the output position it fixes every draw. */
  readonly seed: number;
  /**
   * The sampled token's log probability is wanted (RunnerResult.logprobs). The device sampler
   * always has it; the host-sampling baseline skips it only in its all-greedy argmax path, which it
   * leaves when an item asks, so a greedy step's measured cost stays that of the argmax alone.
   */
  readonly logprobs?: boolean;
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1, minP: 0, seed: 0 };

export interface RunnerItem {
  readonly seqId: SeqId;
  /** KV tokens already cached for the sequence. */
  readonly contextTokens: number;
  /** Token ids at positions contextTokens .. contextTokens + length - 1. */
  readonly tokenIds: Int32Array;
  /** The policy's page table for the sequence. */
  readonly blockTable: readonly number[];
  readonly samples: boolean;
  readonly sampling: SamplingParams;
  /** Index of the output token this step samples (the sampler's stream offset). */
  readonly outputIndex: number;
}

export interface RunnerStep {
  readonly plan: BatchPlan;
  /** Index-aligned with plan.items. */
  readonly items: readonly RunnerItem[];
}

export interface RunnerResult {
  /** Sampled token per item; -1 where the item does not sample. */
  readonly tokens: Int32Array;
  /** Device time of the step in µs where the backend measures it, else null. */
  readonly gpuTimeUs: number | null;
  /**
   * Per item: the sampled token's log probability under the model's distribution (the raw logits'
   * log-softmax, before temperature and filters); NaN where the item does not sample or the runner
   * did not compute it. Absent: the runner never does.
   */
  readonly logprobs?: Float32Array;
}

export interface ModelRunner {
  readonly name: string;
  readonly vocabSize: number;
  execute(step: RunnerStep): RunnerResult;
  /** A sequence ended (finished or aborted): drop whatever the runner keeps for it (the no-KV-cache baseline's token history). */
  release?(seqId: SeqId): void;
  close(): void;
}
