import type { BatchPlan, BlockCopy, LoraLoad, PlanItem, SeqId, SeqState } from '../types.js';

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
    this.addUnplanned(item);
  }

  /** For a decode run, whose items are all running sequences and nothing else is planned. */
  addUnplanned(item: PlanItem): void {
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
