import fc from 'fast-check';
import type { PolicyKind, RequestSpec } from '../../engine/policy/index.js';
import { config, type RequestEvent } from './harness.js';

export interface Scenario {
  readonly policy: PolicyKind;
  readonly pageSizeTokens: number;
  readonly numBlocks: number;
  readonly allocator: 'paged' | 'contiguous';
  readonly prefixCaching: boolean;
  readonly maxNumSeqs: number;
  readonly chunkBudget: number;
  readonly loraSlots: number;
  readonly eviction: 'lru' | 'lfu';
  readonly tenantCap: number;
  readonly agingUs: number;
  readonly events: RequestEvent[];
}

const requestArb = fc.record({
  // Mostly bursts (memory pressure, preemption), sometimes idle gaps (aging, empty batches).
  gapUs: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 1_000 }), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 100_000 }), weight: 1 }),
  promptTokens: fc.integer({ min: 1, max: 250 }),
  maxOutputTokens: fc.integer({ min: 1, max: 120 }),
  priorityClass: fc.integer({ min: 0, max: 2 }),
  tenant: fc.integer({ min: 0, max: 3 }),
  adapter: fc.integer({ min: -1, max: 4 }),
  family: fc.integer({ min: 0, max: 2 }),
  // One request in eight is aborted by its client at some point.
  abortAfterUs: fc.oneof({ arbitrary: fc.constant(null), weight: 7 }, { arbitrary: fc.integer({ min: 0, max: 200_000 }), weight: 1 }),
});

/** Small random workloads that still exercise every mechanism (preemption, caps, LoRA misses). */
export function scenarioArb(
  options: { caps?: boolean; aborts?: boolean; policies?: PolicyKind[]; pressure?: boolean } = {},
): fc.Arbitrary<Scenario> {
  // Under pressure: paged KV barely larger than one request's worst case, many concurrent
  // sequences, long outputs: decodes outgrow memory and preempt by recompute.
  const pressure = options.pressure === true;
  return fc
    .record({
      policy: fc.constantFrom(...(options.policies ?? (pressure ? ['continuous', 'chunked'] : ['static', 'continuous', 'chunked']) as PolicyKind[])),
      pageSizeTokens: fc.constantFrom(1, 4, 16, 16),
      numBlocksTokens: pressure ? fc.integer({ min: 450, max: 800 }) : fc.integer({ min: 450, max: 1500 }),
      allocator: pressure ? fc.constant('paged' as const) : fc.constantFrom('paged' as const, 'paged' as const, 'contiguous' as const),
      prefixCaching: fc.boolean(),
      maxNumSeqs: pressure ? fc.integer({ min: 8, max: 16 }) : fc.integer({ min: 1, max: 16 }),
      chunkBudget: fc.integer({ min: 16, max: 512 }),
      loraSlots: fc.integer({ min: 0, max: 3 }),
      eviction: fc.constantFrom('lru' as const, 'lfu' as const),
      tenantCap: options.caps === false ? fc.constant(0) : fc.integer({ min: 0, max: 3 }),
      agingUs: fc.integer({ min: 1_000, max: 100_000 }),
      requests: fc.array(requestArb, { minLength: pressure ? 8 : 1, maxLength: 24 }),
    })
    .map((r) => {
      let arrivalUs = 0;
      const events: RequestEvent[] = r.requests.map((q, id) => {
        arrivalUs += q.gapUs;
        const spec: RequestSpec = {
          id,
          tenant: `t${q.tenant}`,
          adapter: q.adapter < 0 ? null : `lora${q.adapter}`,
          priorityClass: q.priorityClass,
          arrivalUs,
          promptTokens: q.promptTokens,
          maxOutputTokens: q.maxOutputTokens,
          content: { rangeKey: (s: number, e: number) => q.family * 7919 + s * 31 + e },
        };
        return options.aborts === false || q.abortAfterUs === null ? { spec } : { spec, abortAtUs: arrivalUs + q.abortAfterUs };
      });
      return {
        policy: r.policy,
        pageSizeTokens: r.pageSizeTokens,
        numBlocks: Math.ceil(r.numBlocksTokens / r.pageSizeTokens),
        allocator: r.allocator,
        prefixCaching: r.prefixCaching,
        maxNumSeqs: r.maxNumSeqs,
        chunkBudget: Math.max(r.chunkBudget, r.maxNumSeqs),
        loraSlots: r.loraSlots,
        eviction: r.eviction,
        tenantCap: r.tenantCap,
        agingUs: r.agingUs,
        events,
      };
    });
}

export function scenarioConfig(s: Scenario) {
  return config({
    policy: s.policy,
    maxNumSeqs: s.maxNumSeqs,
    maxSeqLenTokens: 400,
    maxNumBatchedTokens: s.policy === 'chunked' ? s.chunkBudget : 400,
    agingUs: s.agingUs,
    defaultTenantCap: s.tenantCap,
    kv: { allocator: s.allocator, numBlocks: s.numBlocks, pageSizeTokens: s.pageSizeTokens, prefixCaching: s.prefixCaching },
    lora: { numSlots: s.loraSlots, eviction: s.eviction },
  });
}
