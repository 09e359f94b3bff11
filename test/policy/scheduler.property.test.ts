import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { scenarioArb, scenarioConfig } from './arbitraries.js';
import { runWorkload } from './harness.js';

const TERMINAL = new Set(['finished', 'rejected', 'aborted']);

describe('scheduler properties (static, continuous, chunked; paged and contiguous KV)', () => {
  it('every request ends finished, rejected or aborted, with a reason, and generates exactly its length', () => {
    fc.assert(
      fc.property(scenarioArb(), (s) => {
        const run = runWorkload(scenarioConfig(s), s.events);
        expect(run.exhausted).toBe(false);
        expect(run.ended.size).toBe(s.events.length);
        for (const e of s.events) {
          const seq = run.ended.get(e.spec.id)!;
          expect(TERMINAL.has(seq.status)).toBe(true);
          expect(seq.reason).not.toBeNull();
          if (seq.status === 'finished') expect(seq.numOutputTokens).toBe(e.spec.maxOutputTokens);
        }
        expect(run.scheduler.hasWork()).toBe(false);
        // Everything given back: no leaked blocks or adapter pins.
        expect(run.scheduler.allocator.numBlocksUsed()).toBe(0);
        run.scheduler.checkInvariants();
      }),
    );
  });

  it('no step exceeds its token or batch limit, and KV is never over-committed', () => {
    fc.assert(
      fc.property(scenarioArb(), (s) => {
        const cfg = scenarioConfig(s);
        runWorkload(cfg, s.events, {
          checkEveryStep: true,
          onPlan: (plan, scheduler) => {
            expect(plan.items.length).toBeLessThanOrEqual(cfg.maxNumSeqs);
            expect(plan.numPrefillTokens + plan.numDecodeTokens).toBeLessThanOrEqual(cfg.maxNumBatchedTokens);
            expect(scheduler.numRunning()).toBeLessThanOrEqual(cfg.maxNumSeqs);
            for (const used of plan.kvBlocksUsedPerStep) expect(used).toBeLessThanOrEqual(cfg.kv.numBlocks);
            expect(new Set(plan.items.map((i) => i.seqId)).size).toBe(plan.items.length);
          },
        });
      }),
    );
  });

  it('FIFO holds within a priority class (no tenant caps)', () => {
    fc.assert(
      fc.property(scenarioArb({ caps: false }), (s) => {
        const run = runWorkload(scenarioConfig(s), s.events);
        const admitted = s.events.filter((e) => run.firstAdmit.has(e.spec.id));
        for (const a of admitted) {
          for (const b of admitted) {
            if (a.spec.priorityClass !== b.spec.priorityClass || a.spec.arrivalUs >= b.spec.arrivalUs) continue;
            const ra = run.firstAdmit.get(a.spec.id)!;
            const rb = run.firstAdmit.get(b.spec.id)!;
            expect(ra.step < rb.step || (ra.step === rb.step && ra.order < rb.order)).toBe(true);
          }
        }
      }),
    );
  });

  it('aging bounds waiting: once a request has waited past its aging bound, no later arrival is admitted before it', () => {
    fc.assert(
      fc.property(scenarioArb({ caps: false }), (s) => {
        const cfg = scenarioConfig(s);
        const run = runWorkload(cfg, s.events);
        const spec = new Map(s.events.map((e) => [e.spec.id, e.spec]));
        for (const { nowUs, admitted, stillWaiting } of run.admissions) {
          for (const waitingId of stillWaiting) {
            const a = spec.get(waitingId)!;
            const promoted = nowUs - a.arrivalUs >= a.priorityClass * cfg.agingUs;
            if (!promoted) continue;
            for (const id of admitted) expect(spec.get(id)!.arrivalUs <= a.arrivalUs).toBe(true);
          }
        }
      }),
    );
  });

  it('per-tenant caps are never exceeded', () => {
    fc.assert(
      fc.property(scenarioArb({ caps: true }), (s) => {
        const cfg = scenarioConfig(s);
        runWorkload(cfg, s.events, {
          onPlan: (_plan, scheduler) => {
            if (cfg.defaultTenantCap === 0) return;
            const counts = new Map<string, number>();
            for (const seq of scheduler.runningSeqs()) counts.set(seq.spec.tenant, (counts.get(seq.spec.tenant) ?? 0) + 1);
            for (const count of counts.values()) expect(count).toBeLessThanOrEqual(cfg.defaultTenantCap);
          },
        });
      }),
    );
  });

  it('LoRA: never more adapters than slots, never evicts one in use, never runs a sequence without its adapter', () => {
    fc.assert(
      fc.property(scenarioArb(), (s) => {
        const cfg = scenarioConfig(s);
        const adapterOf = new Map(s.events.map((e) => [e.spec.id, e.spec.adapter]));
        let runningBefore: { id: number; adapter: string | null }[] = [];
        runWorkload(cfg, s.events, {
          beforeSchedule: (scheduler) => {
            runningBefore = scheduler.runningSeqs().map((seq) => ({ id: seq.spec.id, adapter: seq.spec.adapter }));
          },
          onPlan: (plan, scheduler) => {
            expect(scheduler.lora.numResident()).toBeLessThanOrEqual(cfg.lora.numSlots);
            for (const item of plan.items) {
              const adapter = adapterOf.get(item.seqId)!;
              if (adapter === null) expect(item.adapterSlot).toBe(-1);
              else expect(scheduler.lora.slotOf(adapter)).toBe(item.adapterSlot);
            }
            // A sequence that ran before this step and still runs pinned its adapter throughout.
            const preempted = new Set(plan.preempted);
            for (const evicted of plan.loraEvictions) {
              for (const seq of runningBefore) {
                if (!preempted.has(seq.id)) expect(seq.adapter).not.toBe(evicted.adapter);
              }
            }
          },
        });
      }),
    );
  });

  it('multi-step decode runs (the simulator fast path) equal stepping one iteration at a time', () => {
    fc.assert(
      fc.property(scenarioArb(), (s) => {
        const cfg = scenarioConfig(s);
        const single = runWorkload(cfg, s.events);
        const lazy = runWorkload(cfg, s.events, { lazy: true });
        const steps = (plans: typeof single.plans) => plans.flatMap((p) => p.kvBlocksUsedPerStep);
        expect(steps(lazy.plans)).toEqual(steps(single.plans));
        expect([...lazy.finishUs]).toEqual([...single.finishUs]);
        expect([...lazy.firstTokenStep]).toEqual([...single.firstTokenStep]);
        for (const [id, seq] of single.ended) {
          const other = lazy.ended.get(id)!;
          expect([other.status, other.reason, other.numPreemptions, other.numOutputTokens]).toEqual([
            seq.status,
            seq.reason,
            seq.numPreemptions,
            seq.numOutputTokens,
          ]);
        }
      }),
    );
  });

  it('a decode run lengthened piece by piece (extendDecodeRun) equals planning it whole and stepping one iteration at a time', () => {
    fc.assert(
      fc.property(scenarioArb({ pressure: true }), fc.integer({ min: 1, max: 40 }), (s, extendBy) => {
        const cfg = scenarioConfig(s);
        const single = runWorkload(cfg, s.events);
        const whole = runWorkload(cfg, s.events, { lazy: true });
        const pieces = runWorkload(cfg, s.events, { lazy: true, extendBy, checkEveryStep: true });
        const steps = (plans: typeof single.plans) => plans.flatMap((p) => p.kvBlocksUsedPerStep);
        expect(steps(pieces.plans)).toEqual(steps(single.plans));
        // Whole runs and lengthened ones are the same plans: same steps, same items.
        expect(pieces.plans.map((p) => [p.stepIndex, p.numSteps, p.items])).toEqual(whole.plans.map((p) => [p.stepIndex, p.numSteps, p.items]));
        expect([...pieces.finishUs]).toEqual([...single.finishUs]);
        expect([...pieces.firstTokenStep]).toEqual([...single.firstTokenStep]);
        for (const [id, seq] of single.ended) {
          const other = pieces.ended.get(id)!;
          expect([other.status, other.reason, other.numPreemptions, other.numOutputTokens]).toEqual([seq.status, seq.reason, seq.numPreemptions, seq.numOutputTokens]);
        }
        expect(pieces.scheduler.allocator.numBlocksUsed()).toBe(0);
      }),
    );
  });

  it('decode runs built in the scheduler\'s reused storage (reuseRunStorage) are the same plans, piece by piece too', () => {
    fc.assert(
      fc.property(scenarioArb({ pressure: true }), fc.integer({ min: 1, max: 40 }), (s, extendBy) => {
        const cfg = scenarioConfig(s);
        const whole = runWorkload(cfg, s.events, { lazy: true });
        const reused = runWorkload(cfg, s.events, { lazy: true, reuseRunStorage: true });
        const reusedPieces = runWorkload(cfg, s.events, { lazy: true, reuseRunStorage: true, extendBy, checkEveryStep: true });
        const values = (plans: typeof whole.plans) => plans.map((p) => [p.stepIndex, p.numSteps, p.items, p.kvBlocksUsedPerStep]);
        expect(values(reused.plans)).toEqual(values(whole.plans));
        expect(values(reusedPieces.plans)).toEqual(values(whole.plans));
        expect([...reusedPieces.finishUs]).toEqual([...whole.finishUs]);
        expect(reusedPieces.scheduler.allocator.numBlocksUsed()).toBe(0);
      }),
    );
  });

  it('under memory pressure (preemption by recompute) every request ends, nothing leaks, and the fast path equals stepping', () => {
    let runsWithPreemption = 0;
    fc.assert(
      fc.property(scenarioArb({ pressure: true }), (s) => {
        const cfg = scenarioConfig(s);
        const single = runWorkload(cfg, s.events, { checkEveryStep: true });
        const lazy = runWorkload(cfg, s.events, { lazy: true });
        expect(single.exhausted).toBe(false);
        expect(single.ended.size).toBe(s.events.length);
        for (const seq of single.ended.values()) expect(seq.reason).not.toBeNull();
        expect(single.scheduler.allocator.numBlocksUsed()).toBe(0);
        expect(lazy.plans.flatMap((p) => p.kvBlocksUsedPerStep)).toEqual(single.plans.flatMap((p) => p.kvBlocksUsedPerStep));
        expect([...lazy.finishUs]).toEqual([...single.finishUs]);
        if (single.plans.some((p) => p.preempted.length > 0)) runsWithPreemption++;
      }),
    );
    // The generator must actually exercise preemption, or this property proves little.
    expect(runsWithPreemption).toBeGreaterThan(100);
  });
});
