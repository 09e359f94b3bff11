import { describe, expect, it } from 'vitest';
import { createScheduler, LoraCache, type RequestSpec } from '../../engine/policy/index.js';
import { config, runWorkload } from './harness.js';

function req(id: number, promptTokens: number, maxOutputTokens: number, extra: Partial<RequestSpec> = {}): RequestSpec {
  return { id, tenant: 't', adapter: null, priorityClass: 0, arrivalUs: 0, promptTokens, maxOutputTokens, ...extra };
}

describe('request state machine', () => {
  it('waiting → running → finished (length), with the first token after prefill', () => {
    const s = createScheduler(config({ policy: 'continuous', kv: { numBlocks: 64 } }));
    const seq = s.addRequest(req(0, 20, 3));
    expect(seq.status).toBe('waiting');
    let plan = s.schedule({ nowUs: 0 });
    expect(seq.status).toBe('running');
    expect(plan.items).toEqual([{ seqId: 0, contextTokens: 0, numNewTokens: 20, isPrefill: true, samples: true, adapterSlot: -1 }]);
    expect(s.onStepEnd(plan, { nowUs: 10 }).firstTokenSeqIds).toEqual([0]);
    for (let i = 0; i < 2; i++) {
      plan = s.schedule({ nowUs: 10 + i });
      expect(plan.items[0]).toMatchObject({ contextTokens: 20 + i, numNewTokens: 1, isPrefill: false });
      const out = s.onStepEnd(plan, { nowUs: 11 + i });
      expect(out.finished.length).toBe(i === 1 ? 1 : 0);
    }
    expect([seq.status, seq.reason, seq.numOutputTokens]).toEqual(['finished', 'length', 3]);
    expect(s.allocator.numBlocksUsed()).toBe(0);
  });

  it('rejects at once what can never run, each with its reason', () => {
    const s = createScheduler(config({ maxSeqLenTokens: 4096, maxNumBatchedTokens: 4096, kv: { numBlocks: 100, pageSizeTokens: 16 }, lora: { numSlots: 0 } }));
    expect(s.addRequest(req(0, 4000, 100))).toMatchObject({ status: 'rejected', reason: 'prompt_too_long' });
    // 100 blocks × 16 = 1,600 tokens; 90% = 1,440: a 1,500-token worst case can never be admitted.
    expect(s.addRequest(req(1, 1400, 100))).toMatchObject({ status: 'rejected', reason: 'kv_capacity' });
    expect(s.addRequest(req(2, 10, 10, { adapter: 'x' }))).toMatchObject({ status: 'rejected', reason: 'adapter_slots' });
    expect(s.addRequest(req(3, 1000, 100)).status).toBe('waiting');
    // Nothing to prefill or to generate (a trace row can say so): rejected, never scheduled, and the
    // empty prompt wins over an adapter that could not be placed.
    expect(s.addRequest(req(4, 0, 100, { adapter: 'x' }))).toMatchObject({ status: 'rejected', reason: 'empty_prompt' });
    expect(s.addRequest(req(5, 10, 0))).toMatchObject({ status: 'rejected', reason: 'zero_output_tokens' });
    expect(s.numWaiting()).toBe(1);
  });

  it('a runner stop token finishes a sequence with reason stop; abort releases everything', () => {
    const s = createScheduler(config({ kv: { numBlocks: 64 }, lora: { numSlots: 1 } }));
    s.addRequest(req(0, 10, 50));
    s.addRequest(req(1, 10, 50, { adapter: 'a' }));
    let plan = s.schedule({ nowUs: 0 });
    s.onStepEnd(plan, { nowUs: 1 });
    plan = s.schedule({ nowUs: 1 });
    const out = s.onStepEnd(plan, { nowUs: 2, stoppedSeqIds: [0] });
    expect(out.finished.map((q) => [q.spec.id, q.reason])).toEqual([[0, 'stop']]);
    const aborted = s.abort(1, 'aborted_by_client');
    expect([aborted.status, aborted.reason]).toEqual(['aborted', 'aborted_by_client']);
    expect(s.lora.numPins('a')).toBe(0);
    expect(s.allocator.numBlocksUsed()).toBe(0);
    s.checkInvariants();
  });
});

describe('policies', () => {
  it('static batching admits nothing while a batch runs', () => {
    const s = createScheduler(config({ policy: 'static', kv: { numBlocks: 256 } }));
    s.addRequest(req(0, 10, 5));
    let plan = s.schedule({ nowUs: 0 });
    s.onStepEnd(plan, { nowUs: 1 });
    s.addRequest(req(1, 10, 5, { arrivalUs: 1 }));
    for (let t = 1; t < 5; t++) {
      plan = s.schedule({ nowUs: t });
      expect(plan.items.map((i) => i.seqId)).toEqual([0]);
      s.onStepEnd(plan, { nowUs: t + 1 });
    }
    plan = s.schedule({ nowUs: 5 });
    expect(plan.items.map((i) => [i.seqId, i.isPrefill])).toEqual([[1, true]]);
  });

  it('continuous batching is prefill-first: a new prompt joins at the next step and pauses decodes for it', () => {
    const s = createScheduler(config({ policy: 'continuous', kv: { numBlocks: 256 } }));
    s.addRequest(req(0, 10, 5));
    s.onStepEnd(s.schedule({ nowUs: 0 }), { nowUs: 1 });
    s.addRequest(req(1, 10, 5, { arrivalUs: 1 }));
    const plan = s.schedule({ nowUs: 1 });
    expect(plan.items.map((i) => [i.seqId, i.isPrefill])).toEqual([[1, true]]);
    s.onStepEnd(plan, { nowUs: 2 });
    expect(s.schedule({ nowUs: 2 }).items.map((i) => i.seqId)).toEqual([0, 1]);
  });

  it('chunked prefill mixes decodes with prompt chunks inside the token budget', () => {
    const s = createScheduler(config({ policy: 'chunked', maxNumBatchedTokens: 64, maxNumSeqs: 8, kv: { numBlocks: 256 } }));
    s.addRequest(req(0, 10, 20));
    s.onStepEnd(s.schedule({ nowUs: 0 }), { nowUs: 1 });
    s.addRequest(req(1, 200, 5, { arrivalUs: 1 }));
    const chunks: number[] = [];
    for (let t = 1; t < 6; t++) {
      const plan = s.schedule({ nowUs: t });
      expect(plan.numPrefillTokens + plan.numDecodeTokens).toBeLessThanOrEqual(64);
      expect(plan.items[0]).toMatchObject({ seqId: 0, isPrefill: false });
      const chunk = plan.items.find((i) => i.seqId === 1 && i.isPrefill);
      if (chunk !== undefined) chunks.push(chunk.numNewTokens);
      s.onStepEnd(plan, { nowUs: t + 1 });
    }
    expect(chunks).toEqual([63, 63, 63, 11]);
  });

  it('preempts the newest running sequence (recompute) when decodes run out of blocks', () => {
    // 8 blocks of 4 tokens: two 12-token prompts take 6; their growth needs more.
    const s = createScheduler(config({ policy: 'continuous', watermarkFraction: 0, kv: { numBlocks: 8, pageSizeTokens: 4, prefixCaching: false } }));
    s.addRequest(req(0, 12, 10));
    s.addRequest(req(1, 12, 10));
    s.onStepEnd(s.schedule({ nowUs: 0 }), { nowUs: 1 });
    const preempted: number[] = [];
    for (let t = 1; t < 12 && preempted.length === 0; t++) {
      const plan = s.schedule({ nowUs: t });
      preempted.push(...plan.preempted);
      s.onStepEnd(plan, { nowUs: t + 1 });
    }
    expect(preempted).toEqual([1]);
    expect(s.get(1)).toMatchObject({ status: 'preempted', numComputedTokens: 0, numPreemptions: 1 });
    const run = runWorkload(s.config, [{ spec: req(0, 12, 10) }, { spec: req(1, 12, 10) }]);
    expect([...run.ended.values()].every((q) => q.status === 'finished')).toBe(true);
  });

  it('paged KV holds more concurrent requests than contiguous reservation at max length', () => {
    const specs = Array.from({ length: 40 }, (_, id) => ({ spec: req(id, 300, 50) }));
    const peak = (allocator: 'paged' | 'contiguous'): number => {
      let max = 0;
      runWorkload(config({ maxSeqLenTokens: 4096, maxNumBatchedTokens: 16384, kv: { allocator, numBlocks: 1024, pageSizeTokens: 16 } }), specs, {
        onPlan: (_p, s) => (max = Math.max(max, s.numRunning())),
      });
      return max;
    };
    // 16,384 tokens of KV: 4 slots of 4,096 vs. about 16,384 / 350 ≈ 46 paged sequences.
    expect(peak('contiguous')).toBe(4);
    expect(peak('paged')).toBe(40);
  });

  it('prefix caching serves a repeated prompt from cached blocks', () => {
    const content = { rangeKey: (a: number, b: number) => a * 100_003 + b };
    const s = createScheduler(config({ kv: { numBlocks: 64, pageSizeTokens: 16 } }));
    s.addRequest(req(0, 100, 1, { content }));
    s.onStepEnd(s.schedule({ nowUs: 0 }), { nowUs: 1 });
    const second = s.addRequest(req(1, 100, 1, { content, arrivalUs: 1 }));
    const plan = s.schedule({ nowUs: 1 });
    expect(second.numCachedPromptTokens).toBe(96);
    expect(plan.items[0]).toMatchObject({ contextTokens: 96, numNewTokens: 4 });
  });

  it('priority classes: a premium request goes first, and aging promotes a standard one', () => {
    const s = createScheduler(config({ policy: 'static', maxNumSeqs: 1, agingUs: 1000, kv: { numBlocks: 64 } }));
    s.addRequest(req(0, 10, 1, { priorityClass: 1, arrivalUs: 0 }));
    s.addRequest(req(1, 10, 1, { priorityClass: 0, arrivalUs: 10 }));
    expect(s.schedule({ nowUs: 10 }).items[0].seqId).toBe(1);
    const s2 = createScheduler(config({ policy: 'static', maxNumSeqs: 1, agingUs: 1000, kv: { numBlocks: 64 } }));
    s2.addRequest(req(0, 10, 1, { priorityClass: 1, arrivalUs: 0 }));
    s2.addRequest(req(1, 10, 1, { priorityClass: 0, arrivalUs: 10 }));
    expect(s2.schedule({ nowUs: 1000 }).items[0].seqId).toBe(0);
  });
});

describe('LoRA residency cache', () => {
  it('LRU evicts the least recently used unpinned adapter; LFU the least frequently used', () => {
    for (const [eviction, victim] of [['lru', 'b'], ['lfu', 'c']] as const) {
      const cache = new LoraCache(2, eviction);
      cache.acquire('b');
      cache.release('b');
      cache.acquire('b');
      cache.release('b');
      cache.acquire('c');
      cache.release('c');
      const got = cache.acquire('d');
      expect(got.eviction?.adapter).toBe(victim);
      expect(got.load).toEqual({ adapter: 'd', slot: got.slot });
      cache.checkInvariants();
    }
  });

  it('never evicts a pinned adapter: with every slot pinned nothing can be acquired', () => {
    const cache = new LoraCache(1, 'lru');
    cache.acquire('a');
    expect(cache.canAcquire('b')).toBe(false);
    expect(() => cache.acquire('b')).toThrow(/pinned/);
    cache.release('a');
    expect(cache.canAcquire('b')).toBe(true);
  });
});

describe('extendDecodeRun', () => {
  function decodingScheduler() {
    const s = createScheduler(config({ policy: 'continuous', kv: { numBlocks: 64, pageSizeTokens: 4 } }));
    s.addRequest(req(0, 6, 30));
    s.addRequest(req(1, 3, 40));
    s.onStepEnd(s.schedule({ nowUs: 0 }), { nowUs: 10 });
    return s;
  }

  it('lengthens a pending run to what planning it whole gives, and no further than its steady length', () => {
    const whole = decodingScheduler();
    const pieces = decodingScheduler();
    const steady = whole.steadyDecodeSteps(10);
    expect(steady).toBe(29);
    const planWhole = whole.schedule({ nowUs: 10, maxSteps: steady });
    let plan = pieces.schedule({ nowUs: 10, maxSteps: 5 });
    plan = pieces.extendDecodeRun(plan, 3);
    plan = pieces.extendDecodeRun(plan, steady - 8);
    expect([plan.stepIndex, plan.numSteps, plan.items, plan.kvBlocksUsedPerStep]).toEqual([planWhole.stepIndex, planWhole.numSteps, planWhole.items, planWhole.kvBlocksUsedPerStep]);
    expect([0, 1].map((id) => pieces.allocator.blockTable(id))).toEqual([0, 1].map((id) => whole.allocator.blockTable(id)));
    expect(() => pieces.extendDecodeRun(plan, 1)).toThrow(/steady length/);
    expect(pieces.onStepEnd(plan, { nowUs: 99 }).finished.map((seq) => seq.spec.id)).toEqual([0]);
  });

  it('refuses a plan that is not a pending run, and a run the scheduler changed under', () => {
    const s = decodingScheduler();
    const plan = s.schedule({ nowUs: 10, maxSteps: 4 });
    s.addRequest(req(2, 3, 3, { arrivalUs: 11 }));
    expect(() => s.extendDecodeRun(plan, 2)).toThrow(/changed since the run was planned/);
    s.onStepEnd(plan, { nowUs: 20 });
    expect(() => s.extendDecodeRun(plan, 2)).toThrow(/not the pending one/);
    const single = s.schedule({ nowUs: 20 });
    expect(() => s.extendDecodeRun(single, 2)).toThrow(/only a decode run/);
  });
});
