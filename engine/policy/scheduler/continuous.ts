import type { SeqState, TimeUs } from '../types.js';
import type { PlanBuilder } from './plan-builder.js';
import { prefillTarget, Scheduler } from './scheduler.js';

/**
 * Continuous (iteration-level) batching, prefill-first as in vLLM's original scheduler: when a
 * waiting request can be admitted, the step prefills the admitted prompts whole; otherwise every
 * running sequence decodes one token, preempting the newest by recompute when KV runs out.
 */
export class ContinuousScheduler extends Scheduler {
  readonly policy = 'continuous' as const;

  protected compose(nowUs: TimeUs, builder: PlanBuilder): void {
    if (this.admitInOrder(nowUs, builder, false) > 0) return;
    for (let i = 0; i < this.running.length; i++) {
      if (!this.planRunning(this.running[i], 1, builder)) break;
    }
  }

  protected firstChunkTokens(seq: SeqState, numCachedTokens: number, tokenBudget: number): number {
    const remaining = prefillTarget(seq) - numCachedTokens;
    return remaining <= tokenBudget ? remaining : 0;
  }
}
