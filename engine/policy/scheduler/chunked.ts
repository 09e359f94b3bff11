import type { SeqState, TimeUs } from '../types.js';
import type { PlanBuilder } from './plan-builder.js';
import { isDecoding, prefillTarget, Scheduler } from './scheduler.js';

/**
 * Chunked prefill (Sarathi-Serve, vLLM's default today): each step has a token budget. Running
 * decodes take one token each first, then unfinished prompts continue in chunks, then waiting
 * requests are admitted with a chunk of whatever budget is left. Decodes never stall behind a
 * long prompt, which keeps inter-token latency flat.
 */
export class ChunkedScheduler extends Scheduler {
  readonly policy = 'chunked' as const;

  protected compose(nowUs: TimeUs, builder: PlanBuilder): void {
    for (let i = 0; i < this.running.length; i++) {
      const seq = this.running[i];
      if (isDecoding(seq) && !this.planRunning(seq, 1, builder)) break;
    }
    for (let i = 0; i < this.running.length; i++) {
      const seq = this.running[i];
      if (isDecoding(seq)) continue;
      const chunk = Math.min(prefillTarget(seq) - seq.numComputedTokens, builder.tokenBudgetLeft);
      if (chunk <= 0) break;
      if (!this.planRunning(seq, chunk, builder)) break;
    }
    if (builder.tokenBudgetLeft > 0) this.admitInOrder(nowUs, builder, false);
  }

  protected firstChunkTokens(seq: SeqState, numCachedTokens: number, tokenBudget: number): number {
    return Math.min(prefillTarget(seq) - numCachedTokens, tokenBudget);
  }
}
