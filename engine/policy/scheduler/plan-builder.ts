import { NO_BLOCK_COPIES } from '../kv-allocator.js';
import type { BatchPlan, BlockCopy, LoraLoad, PlanItem, SeqId, SeqState } from '../types.js';

/** Shared empty lists (plans and outcomes are read-only): a decode run's plan allocates none. */
export const NO_SEQ_IDS: readonly SeqId[] = Object.freeze([]);
const NO_LORA_LOADS: readonly LoraLoad[] = Object.freeze([]);

/** Collects one plan while the scheduler forms it; `build` freezes it. */
export class PlanBuilder {
  readonly items: PlanItem[] = [];
  /** The sequence of each item added with `add` (index-aligned with items for a single step). */
  readonly seqs: SeqState[] = [];
  readonly preempted: SeqId[] = [];
  readonly loraLoads: LoraLoad[] = [];
  readonly loraEvictions: LoraLoad[] = [];
  readonly blockCopies: BlockCopy[] = [];
  numPrefillTokens = 0;
  numDecodeTokens = 0;
  /** Ids of the items, built on the first `isPlanned` (only preemption asks), then kept current. */
  private planned: Set<SeqId> | null = null;

  constructor(readonly maxNumBatchedTokens: number) {}

  get numTokens(): number {
    return this.numPrefillTokens + this.numDecodeTokens;
  }

  get tokenBudgetLeft(): number {
    return this.maxNumBatchedTokens - this.numTokens;
  }

  isPlanned(seqId: SeqId): boolean {
    if (this.planned === null) {
      this.planned = new Set<SeqId>();
      for (const item of this.items) this.planned.add(item.seqId);
    }
    return this.planned.has(seqId);
  }

  add(item: PlanItem, seq: SeqState): void {
    this.planned?.add(item.seqId);
    this.seqs.push(seq);
    this.items.push(item);
    if (item.isPrefill) this.numPrefillTokens += item.numNewTokens;
    else this.numDecodeTokens += item.numNewTokens;
  }

  build(stepIndex: number, numSteps: number, kvBlocksUsedPerStep: number[]): BatchPlan {
    return {
      stepIndex,
      numSteps,
      items: this.items,
      numPrefillTokens: this.numPrefillTokens,
      numDecodeTokens: this.numDecodeTokens,
      preempted: this.preempted,
      loraLoads: this.loraLoads,
      loraEvictions: this.loraEvictions,
      blockCopies: this.blockCopies,
      kvBlocksUsedPerStep,
    };
  }
}

/** A decode run's plan: its items decode one token per step; nothing else is planned. */
export function decodeRunPlan(stepIndex: number, numSteps: number, items: PlanItem[], kvBlocksUsedPerStep: number[]): BatchPlan {
  return {
    stepIndex,
    numSteps,
    items,
    numPrefillTokens: 0,
    numDecodeTokens: items.length,
    preempted: NO_SEQ_IDS,
    loraLoads: NO_LORA_LOADS,
    loraEvictions: NO_LORA_LOADS,
    blockCopies: NO_BLOCK_COPIES,
    kvBlocksUsedPerStep,
  };
}
