import type { BatchPlan, BlockCopy, LoraLoad, PlanItem, SeqId } from '../types.js';

/** Collects one plan while the scheduler forms it; `build` freezes it. */
export class PlanBuilder {
  readonly items: PlanItem[] = [];
  readonly preempted: SeqId[] = [];
  readonly loraLoads: LoraLoad[] = [];
  readonly loraEvictions: LoraLoad[] = [];
  readonly blockCopies: BlockCopy[] = [];
  numPrefillTokens = 0;
  numDecodeTokens = 0;
  private readonly planned = new Set<SeqId>();

  constructor(readonly maxNumBatchedTokens: number) {}

  get numTokens(): number {
    return this.numPrefillTokens + this.numDecodeTokens;
  }

  get tokenBudgetLeft(): number {
    return this.maxNumBatchedTokens - this.numTokens;
  }

  isPlanned(seqId: SeqId): boolean {
    return this.planned.has(seqId);
  }

  add(item: PlanItem): void {
    this.planned.add(item.seqId);
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
