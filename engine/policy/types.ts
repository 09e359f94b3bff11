// The vocabulary shared by the scheduler, the KV allocators and the LoRA cache.
// Everything here is plain data: both runners (sim/ and engine/) build these values and read them
// back, so nothing in this file may depend on a clock, randomness or I/O.

/** Integer microseconds on the runner's clock (virtual in sim/, monotonic wall clock in engine/). */
export type TimeUs = number;

/** A dense integer id the runner assigns to each request; unique within one scheduler. */
export type SeqId = number;

/**
 * The content of a prompt, as far as prefix caching needs it: a stable key for any token range.
 * The engine hashes real token ids; the simulator derives keys from a trace's block hashes
 * (Mooncake `hash_ids`). Requests without content never share KV blocks.
 */
export interface PromptContent {
  /** A key for tokens [startToken, endToken) of the prompt; equal keys mean equal tokens. */
  rangeKey(startToken: number, endToken: number): number;
}

export interface RequestSpec {
  readonly id: SeqId;
  readonly tenant: string;
  /** LoRA adapter name; null runs the base model and needs no adapter slot. */
  readonly adapter: string | null;
  /** Priority class: 0 is the most urgent; larger numbers are served later. */
  readonly priorityClass: number;
  readonly arrivalUs: TimeUs;
  readonly promptTokens: number;
  /** Tokens to generate. The simulator knows the true length; the engine treats it as max_tokens. */
  readonly maxOutputTokens: number;
  readonly content?: PromptContent;
}

export type SeqStatus = 'waiting' | 'running' | 'preempted' | 'finished' | 'rejected' | 'aborted';

export type TerminalReason =
  | 'length' // generated maxOutputTokens
  | 'stop' // the runner saw a stop token (engine only)
  | 'kv_capacity' // worst case would push KV use past the admission fraction
  | 'prompt_too_long' // can never be scheduled under the step token limit or max sequence length
  | 'adapter_slots' // the adapter needs a slot but the cache has none
  | 'empty_prompt' // 0 prompt tokens (e.g. a trace row): reported, never scheduled
  | 'zero_output_tokens' // 0 output tokens asked for: reported, never scheduled
  | 'aborted_by_client'
  | 'aborted_by_runner'; // the runner gave up on it (e.g. a replica failure); the runner says why

/** A running or waiting sequence as the scheduler tracks it. Read-only outside engine/policy. */
export interface SeqState {
  readonly spec: RequestSpec;
  /**
   * spec.id, spec.promptTokens and spec.maxOutputTokens, copied: the scheduler's per-sequence loops
   * over a batch read them at every plan, and at fleet scale a second object per sequence (the
   * spec) was a second cache miss.
   */
  readonly id: SeqId;
  readonly promptTokens: number;
  readonly maxOutputTokens: number;
  status: SeqStatus;
  reason: TerminalReason | null;
  /** Tokens whose KV is in the cache (prompt and generated). */
  numComputedTokens: number;
  /** Tokens generated so far; survives preemption (recompute re-prefills them). */
  numOutputTokens: number;
  numPreemptions: number;
  /** Tokens of the prompt served from the prefix cache at the last admission. */
  numCachedPromptTokens: number;
  /** Order of the last admission to running; preemption picks the largest (newest). */
  admitOrder: number;
  /** When the sequence last joined the waiting queue (arrival or preemption). */
  waitingSinceUs: TimeUs;
  /**
   * While running: its adapter's GPU slot (a running sequence pins its adapter, and a pinned
   * adapter never moves), so planning a step reads it here instead of looking the adapter up;
   * -1 for the base model and while not running.
   */
  adapterSlot: number;
  /**
   * While running: token slots its page table covers (allocator.numTokensCovered), kept by the
   * scheduler as it admits and grows the sequence, so sizing a decode run reads it here instead of
   * looking the table up per sequence per plan (at fleet scale each look-up missed the cache). A
   * decode run's growth is added when the run ends (onStepEnd), so while one is pending this is
   * what the table covered when it was planned. 0 while not running.
   */
  numTokensCovered: number;
}

/** One sequence's share of a step. */
export interface PlanItem {
  readonly seqId: SeqId;
  /** KV tokens already present before this step (the attention context it reads). */
  readonly contextTokens: number;
  /** Tokens computed in this step: a prefill chunk, or 1 for a decode. */
  readonly numNewTokens: number;
  readonly isPrefill: boolean;
  /** True when this step ends with a sampled token for the sequence. */
  readonly samples: boolean;
  /** The adapter's GPU slot, or -1 for the base model. */
  readonly adapterSlot: number;
}

export interface LoraLoad {
  readonly adapter: string;
  readonly slot: number;
}

export interface BlockCopy {
  readonly srcBlock: number;
  readonly dstBlock: number;
}

/**
 * What the runner executes. `numSteps` > 1 only for a run of pure decode steps over an unchanged
 * batch (the simulator's fast path): step i (0-based) reads `contextTokens + i` for every item.
 */
export interface BatchPlan {
  readonly stepIndex: number;
  readonly numSteps: number;
  readonly items: readonly PlanItem[];
  readonly numPrefillTokens: number;
  readonly numDecodeTokens: number;
  /** Sequences preempted (recompute) while forming this plan, newest first. */
  readonly preempted: readonly SeqId[];
  readonly loraLoads: readonly LoraLoad[];
  readonly loraEvictions: readonly LoraLoad[];
  /** Copy-on-write copies to perform before the step. */
  readonly blockCopies: readonly BlockCopy[];
  /** KV blocks in use during each step of the plan (length numSteps). */
  readonly kvBlocksUsedPerStep: readonly number[];
}

export interface StepResult {
  /** End of the step on the runner's clock. */
  readonly nowUs: TimeUs;
  /** Sequences the runner saw emit a stop token in this step (engine only). */
  readonly stoppedSeqIds?: readonly SeqId[];
}

export interface StepOutcome {
  /** Sequences that produced their first output token in this step (TTFT). */
  readonly firstTokenSeqIds: readonly SeqId[];
  /** Sequences that reached a terminal state at the end of this step. */
  readonly finished: readonly SeqState[];
}

export interface ScheduleView {
  readonly nowUs: TimeUs;
  /** The simulator's fast path: plan up to this many identical pure-decode steps (default 1). */
  readonly maxSteps?: number;
  /**
   * The simulator's fast path: a decode run's plan (numSteps > 1) may be built in the scheduler's
   * own storage, which the next `schedule` overwrites: its items, and its kvBlocksUsedPerStep,
   * of which only the first numSteps entries are the plan's (the array may be longer). A runner
   * that reads a plan only until it schedules the next one saves allocating them per run (at
   * fleet scale one number per simulated step); one that keeps plans must leave it off (default).
   */
  readonly reuseRunStorage?: boolean;
}

export type PolicyKind = 'static' | 'continuous' | 'chunked';
export type EvictionPolicy = 'lru' | 'lfu';
export type AllocatorKind = 'paged' | 'contiguous';
