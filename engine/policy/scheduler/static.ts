import { assert } from '../assert.js';
import type { SeqState, TimeUs } from '../types.js';
import type { PlanBuilder } from './plan-builder.js';
import { prefillTarget, Scheduler } from './scheduler.js';

/**
 * Static batching (the case study's baseline, like `generate()` over a fixed batch): a batch is
 * formed only when the previous one has completely finished; its prompts are prefilled in one
 * step and it decodes until its last member is done. The batch's worst-case KV is reserved at
 * formation, so it never preempts.
 */
export class StaticScheduler extends Scheduler {
  readonly policy = 'static' as const;

  protected compose(nowUs: TimeUs, builder: PlanBuilder): void {
    if (this.running.length === 0) {
      this.admitInOrder(nowUs, builder, true);
      return;
    }
    for (let i = 0; i < this.running.length; i++) {
      const planned = this.planRunning(this.running[i], 1, builder);
      assert(planned, 'a static batch reserves its worst case and never preempts');
    }
  }

  protected firstChunkTokens(seq: SeqState, numCachedTokens: number, tokenBudget: number): number {
    const remaining = prefillTarget(seq) - numCachedTokens;
    return remaining <= tokenBudget ? remaining : 0;
  }
}
