// The profile cost model's speed paths (a step estimated with Math.log/Math.exp, a decode run's
// 1/efficiency carried by a recurrence) must give exactly the microseconds of the exact pricing:
// the model here is the exact total (deterministic ln/exp throughout), rounded up, per step.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GPUS, MODELS, type GpuName, type KvDtype, type ModelName, type ReplicaShape } from '../../sim/catalog.js';
import type { StepShape } from '../../sim/cost/cost-model.js';
import { defaultProfilePath } from '../../sim/cost/create.js';
import { EfficiencyGrid } from '../../sim/cost/interp.js';
import { DEFAULT_PROFILE_OPTIONS, ProfileCostModel, type ProfileCostOptions } from '../../sim/cost/profile-model.js';
import { CompiledProfile, loadProfile } from '../../sim/cost/profile.js';
import { decodeRunStepShape } from '../../sim/replica/step-shape.js';

/** The GPUs with a committed profile. */
type ProfiledGpu = 'a100-80gb' | 'h100' | 'h200';
const compiled: Record<ProfiledGpu, CompiledProfile> = { 'a100-80gb': new CompiledProfile(loadProfile(defaultProfilePath('a100-80gb'))), h100: new CompiledProfile(loadProfile(defaultProfilePath('h100'))), h200: new CompiledProfile(loadProfile(defaultProfilePath('h200'))) };

const shapeOf = (model: ModelName, tp: number, gpu: GpuName, kvDtype: KvDtype = 'bf16'): ReplicaShape => ({ model: MODELS[model], gpu: GPUS[gpu], tp, weightDtype: 'bf16', kvDtype });

/** The exact price of a step: what stepUs returned before its estimate (private stepTotalUs, exact mode). */
function exactStepUs(m: ProfileCostModel, s: StepShape): number {
  return Math.max(1, Math.ceil((m as unknown as { stepTotalUs(s: StepShape): number }).stepTotalUs(s)));
}

const OPTIONS: Record<string, ProfileCostOptions> = {
  gpu: DEFAULT_PROFILE_OPTIONS,
  cpu: { ...DEFAULT_PROFILE_OPTIONS, sampling: 'cpu', cpuSamplingUsPerToken: 2000 },
  cpuMeasured: { ...DEFAULT_PROFILE_OPTIONS, sampling: 'cpu' },
  page8: { ...DEFAULT_PROFILE_OPTIONS, pageSizeTokens: 8, loraRank: 32 },
};

const modelArb = fc.record({
  model: fc.constantFrom<ModelName>('llama2-7b', 'llama2-13b', 'llama2-70b'),
  tp: fc.constantFrom(1, 2, 4, 8),
  gpu: fc.constantFrom<ProfiledGpu>('a100-80gb', 'h100', 'h200'),
  kvDtype: fc.constantFrom<KvDtype>('bf16', 'fp8'),
  options: fc.constantFrom(...Object.keys(OPTIONS)),
});

const models = new Map<string, ProfileCostModel>();
function modelFor(k: { model: ModelName; tp: number; gpu: ProfiledGpu; kvDtype: KvDtype; options: string }): ProfileCostModel {
  const key = JSON.stringify(k);
  let m = models.get(key);
  if (m === undefined) models.set(key, (m = new ProfileCostModel(shapeOf(k.model, k.tp, k.gpu, k.kvDtype), compiled[k.gpu], OPTIONS[k.options])));
  return m;
}

describe('profile cost model fast paths', () => {
  it('decodeRunUs gives every step the exact price, across segments of the efficiency curve and its ends', () => {
    fc.assert(
      fc.property(
        modelArb,
        fc.integer({ min: 1, max: 300 }),
        // Contexts per sequence from below the grid (tens of tokens) to beyond it.
        fc.integer({ min: 0, max: 40_000 }),
        fc.integer({ min: 0, max: 16 }),
        fc.integer({ min: 1, max: 3000 }),
        fc.option(fc.integer({ min: 0, max: 20_000_000 }), { nil: undefined }),
        (k, n, ctxPerSeq, adapters, maxSteps, limit) => {
          const m = modelFor(k);
          const ctx0 = n * ctxPerSeq + (ctxPerSeq % n);
          const limitUs = limit ?? Infinity;
          const got: number[] = [];
          const count = m.decodeRunUs(n, ctx0, adapters, maxSteps, 0, limitUs, got);
          const want: number[] = [];
          for (let i = 0, t = 0; i < maxSteps && (i === 0 || t < limitUs); i++) {
            const d = exactStepUs(m, decodeRunStepShape(n, ctx0, adapters, i));
            want.push(d);
            t += d;
          }
          expect(count).toBe(want.length);
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('its attention estimates stay within 1e-10 (relative) of the exact ones, far inside the 1e-9 margin on the total', () => {
    fc.assert(
      fc.property(
        modelArb,
        fc.integer({ min: 1, max: 300 }),
        fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 40_000 })),
        fc.integer({ min: 1, max: 3000 }),
        (k, n, ctxPerSeq, maxSteps) => {
          const m = modelFor(k) as unknown as {
            decodeLineOf(n: number): unknown;
            decodeRunFastUs(line: unknown, n: number, ctx0: number, a: number, k: number, s: number, l: number, d: number[], offset: number, e: number[]): number;
            decodeAttentionLayerUs(n: number, ctx: number): number;
            numLayers: number;
          };
          const line = m.decodeLineOf(n);
          expect(line).not.toBeNull();
          const ctx0 = n * ctxPerSeq;
          const estimates: number[] = [];
          m.decodeRunFastUs(line, n, ctx0, 1, maxSteps, 0, Infinity, [], 0, estimates);
          expect(estimates.length).toBe(maxSteps);
          for (let i = 0; i < maxSteps; i++) {
            const exact = m.decodeAttentionLayerUs(n, ctx0 + i * n) * m.numLayers;
            expect(Math.abs(estimates[i] / exact - 1)).toBeLessThan(1e-10);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('stepUs gives the exact price of any step (prefill, decode, mixed, adapter loads)', () => {
    const stepArb = fc
      .record({
        decode: fc.integer({ min: 0, max: 256 }),
        decodeCtx: fc.integer({ min: 0, max: 4000 }),
        prefillSeqs: fc.integer({ min: 0, max: 8 }),
        chunk: fc.integer({ min: 1, max: 4096 }),
        prefillCtx: fc.integer({ min: 0, max: 4000 }),
        adapters: fc.integer({ min: 0, max: 16 }),
        loads: fc.integer({ min: 0, max: 3 }),
      })
      .filter((s) => s.decode + s.prefillSeqs > 0);
    fc.assert(
      fc.property(modelArb, stepArb, (k, s) => {
        const m = modelFor(k);
        const prefillTokens = s.prefillSeqs * s.chunk;
        const decodeContext = s.decode * s.decodeCtx;
        const shape: StepShape = {
          numSeqs: s.decode + s.prefillSeqs,
          numPrefillTokens: prefillTokens,
          numDecodeTokens: s.decode,
          contextTokensSum: decodeContext + s.prefillSeqs * s.prefillCtx,
          prefillAttentionPairs: (s.prefillSeqs * s.chunk * (2 * s.prefillCtx + s.chunk + 1)) / 2,
          numSampled: s.decode + s.prefillSeqs,
          numLoraLoads: s.loads,
          numAdapters: s.adapters,
          decodeContextTokensSum: decodeContext,
          numPrefillSeqs: s.prefillSeqs,
          prefillLongestNewTokens: s.prefillSeqs > 0 ? s.chunk : 0,
          prefillLongestContextTokens: s.prefillSeqs > 0 ? s.prefillCtx : 0,
        };
        expect(m.stepUs(shape)).toBe(exactStepUs(m, shape));
      }),
      { numRuns: 400 },
    );
  });

  it('decodeRunIntoUs writes from index 0 what decodeRunUs pushes, over a reused array', () => {
    const m = modelFor({ model: 'llama2-70b', tp: 4, gpu: 'a100-80gb', kvDtype: 'bf16', options: 'cpu' });
    const reused: number[] = Array.from({ length: 5000 }, () => -1);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 256 }), fc.integer({ min: 0, max: 4000 }), fc.integer({ min: 1, max: 4000 }), fc.integer({ min: 0, max: 5_000_000 }), (n, ctxPerSeq, k, limit) => {
        const pushed = [7, 7];
        const count = m.decodeRunUs(n, n * ctxPerSeq, 2, k, 0, limit, pushed);
        expect(pushed.slice(0, 2)).toEqual([7, 7]);
        expect(m.decodeRunIntoUs(n, n * ctxPerSeq, 2, k, 0, limit, reused)).toBe(count);
        expect(reused.slice(0, count)).toEqual(pushed.slice(2));
      }),
      { numRuns: 100 },
    );
  });

  it('falls back to the exact price when the estimate is too close to an integer (the path is exercised)', () => {
    const m = new ProfileCostModel(shapeOf('llama2-13b', 1, 'a100-80gb'), compiled['a100-80gb']);
    const before = m.numExactSteps;
    const got: number[] = [];
    // Millions of steps of many batch sizes: at a relative margin of 1e-9 a few land within it.
    let steps = 0;
    for (let n = 1; n <= 64; n++) {
      got.length = 0;
      steps += m.decodeRunUs(n, n * 200, 1, 30_000, 0, Infinity, got);
      for (let i = 0; i < got.length; i += 997) expect(got[i]).toBe(exactStepUs(m, decodeRunStepShape(n, n * 200, 1, i)));
    }
    expect(steps).toBe(64 * 30_000);
    expect(m.numExactSteps).toBeGreaterThan(before);
  });
});

describe('efficiency grid estimates', () => {
  it('efficiencyApprox is within 1e-12 of efficiency, and the exact one is unaffected by it', () => {
    const tables = compiled['a100-80gb'].profile.tables.map((t) => ({ axes: t.axes, grid: new EfficiencyGrid(t.axes, t.efficiency) }));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: tables.length - 1 }), fc.array(fc.double({ min: 0, max: 1.2, noNaN: true }), { minLength: 4, maxLength: 4 }), (ti, fractions) => {
        const { axes, grid } = tables[ti];
        // Points inside and a little beyond each axis, in its log coordinate.
        const point = axes.map((a, i) => {
          const lo = a.values[0] + a.offset;
          const hi = a.values[a.values.length - 1] + a.offset;
          return Math.max(1e-9, lo * Math.pow(hi / lo, fractions[i]) - a.offset);
        });
        const exact = grid.efficiency(point);
        const approx = grid.efficiencyApprox(point);
        expect(Math.abs(approx / exact - 1)).toBeLessThan(1e-12);
        expect(grid.efficiency(point)).toBe(exact);
      }),
      { numRuns: 500 },
    );
  });

  it('lnEfficiencyAlong is the curve efficiency follows along an axis (linear in ln between grid values)', () => {
    const table = compiled['a100-80gb'].profile.tables.find((t) => t.family === 'decode')!;
    const grid = new EfficiencyGrid(table.axes, table.efficiency);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 600 }), fc.constantFrom(8, 16, 32, 128), fc.double({ min: 1, max: 60_000, noNaN: true }), (batch, page, ctx) => {
        const curve = grid.lnEfficiencyAlong([batch, 1, page], 1)!;
        expect(curve).not.toBeNull();
        const ux = Math.log(ctx + table.axes[1].offset);
        const { u, lnEff } = curve;
        let ln = lnEff[0];
        if (ux >= u[u.length - 1]) ln = lnEff[u.length - 1];
        else if (ux > u[0]) {
          let j = 0;
          while (u[j + 1] <= ux) j++;
          ln = lnEff[j] + ((ux - u[j]) / (u[j + 1] - u[j])) * (lnEff[j + 1] - lnEff[j]);
        }
        expect(Math.abs(Math.exp(ln) / grid.efficiency([batch, ctx, page]) - 1)).toBeLessThan(1e-12);
      }),
      { numRuns: 500 },
    );
  });
});
