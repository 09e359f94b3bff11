// The GPU power-management term: the microbenchmark's runner (on a fake GPU whose clock follows
// a known heat curve), the fit that recovers that curve, the profile section's checks, and the
// state the simulator and the engine's fake runner price prefill steps with.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { POWER_BENCH_CONFIG, runPowerBench, SHAPE_CHECKS, type PowerBenchConfig } from '../../calibration/power-bench.js';
import { parseSimConfig, type SimConfigInput } from '../../sim/config.js';
import { fitPower } from '../../sim/cost/power-fit.js';
import { computeShare, parsePowerProfile, PowerState, speedAt, type PowerProfile } from '../../sim/cost/power.js';
import { runConfig } from '../../sim/run.js';
import { fakePowerGpu } from './fake-power-gpu.js';

const RIDGE = 989e12 / 4.8e12;
// The fake GPU's truth: boost saves 13% of a compute-bound kernel's time while the heat is low,
// nothing once it passes 0.8 (the power cap holds), linearly in between; time constant 30 ms.
const trueSpeed = (h: number): number => (h <= 0.4 ? 0.87 : h >= 0.8 ? 1 : 0.87 + (0.13 * (h - 0.4)) / 0.4);
const TRUE_TAU_MS = 30;
const SMALL: PowerBenchConfig = { ...POWER_BENCH_CONFIG, idleS: 1, coldS: 1, levelS: 2 };

function fakeBench() {
  const share = computeShare(2048, RIDGE);
  const f = fakePowerGpu({ tauMs: TRUE_TAU_MS, speed: trueSpeed, computeMs: 0.5, memoryMs: 0.05, computeShare: share });
  const lines: string[] = [];
  return { bench: runPowerBench(f.g, SMALL, 'test', (l) => lines.push(l), f.sleep), lines, share };
}

const PROFILE: PowerProfile = { tauUs: 30_000, heat: [0, 0.4, 0.8, 1], speed: [0.87, 0.87, 1, 1], provenance: { source: 'test' } };

describe('power microbenchmark (fake GPU)', () => {
  it('runs the cold phase and every duty level, each period timed, and logs the steady compute time', () => {
    const { bench, lines } = fakeBench();
    expect(bench.format).toBe('stratos-power-bench/1');
    expect(bench.phases.map((p) => p.name)).toEqual(['cold', ...SMALL.duties.map((d) => `duty ${d}`)]);
    for (const p of bench.phases) {
      expect(p.records.length).toBeGreaterThanOrEqual(4);
      for (const r of p.records) expect(r.every((x) => Number.isFinite(x) && x >= 0)).toBe(true);
    }
    expect(bench.shapes.map((s) => [s.m, s.n, s.k])).toEqual(SHAPE_CHECKS);
    for (const s of bench.shapes) {
      expect(s.coolMs.length).toBe(3);
      expect(s.hotMs.length).toBe(10);
      // The fake GPU's compute kernels run faster cool than hot.
      expect(Math.max(...s.coolMs)).toBeLessThan(Math.min(...s.hotMs));
    }
    expect(lines.length).toBe(1 + bench.phases.length + bench.shapes.length);
  });
});

describe('power fit', () => {
  it('recovers the time constant and the speed curve it was generated with', () => {
    const { bench, share } = fakeBench();
    const fit = fitPower(bench, RIDGE, 'fake');
    expect(fit.profile.tauUs / 1000).toBeGreaterThan(TRUE_TAU_MS * 0.7);
    expect(fit.profile.tauUs / 1000).toBeLessThan(TRUE_TAU_MS * 1.4);
    expect(fit.rmsError).toBeLessThan(0.01);
    for (const h of [0, 0.2, 0.9]) expect(Math.abs(speedAt(fit.profile, h * share) - trueSpeed(h * share))).toBeLessThan(0.02);
    // Each phase's steady compute time, as the model replays it, within 1% of the measurement.
    for (const p of fit.phases) expect(Math.abs(p.predicted - p.measured)).toBeLessThan(0.01);
    // The fitted section is a valid profile section.
    expect(parsePowerProfile(JSON.parse(JSON.stringify(fit.profile)), 'fit')).toEqual(fit.profile);
  });

  it('refuses data that is not the benchmark\'s', () => {
    const { bench } = fakeBench();
    expect(() => fitPower({ ...bench, format: 'other' }, RIDGE, 'x.json')).toThrow(/x\.json: format "other"/);
    expect(() => fitPower({ ...bench, phases: bench.phases.slice(0, 2) }, RIDGE, 'x.json')).toThrow(/cold phase first and at least 3 duty levels/);
  });
});

describe('power profile section', () => {
  it('names the key and value that are wrong', () => {
    expect(() => parsePowerProfile({ ...PROFILE, tauUs: 0 }, 'p.json')).toThrow(/p\.json: power\.tauUs = 0: must be a finite number > 0/);
    expect(() => parsePowerProfile({ ...PROFILE, heat: [0.1, 0.4, 0.8, 1] }, 'p.json')).toThrow(/power\.heat\[0\] = 0\.1: must be 0/);
    expect(() => parsePowerProfile({ ...PROFILE, speed: [0.9, 0.87, 1, 1] }, 'p.json')).toThrow(/power\.speed\[1\] = 0\.87: must not be below/);
    expect(() => parsePowerProfile({ ...PROFILE, speed: [0.87, 1] }, 'p.json')).toThrow(/power\.speed = .*must be an array as long as heat/);
  });
});

describe('PowerState', () => {
  const host = 100;
  const state = () => new PowerState(PROFILE, RIDGE, () => host, (t) => t);

  it('a large prefill step on a cool GPU runs its compute-bound part at boost; back to back the GPU heats and steps converge to their price', () => {
    const s = state();
    const price = 20_000;
    const first = s.prefillStepUs(10_000_000, price, 8, 2048);
    const share = computeShare(2048, RIDGE);
    expect(first).toBeLessThan(price);
    expect(first).toBeGreaterThan(host + (price - host) * (1 - share * 0.13) - 1);
    let t = 10_000_000 + first;
    let d = first;
    for (let i = 0; i < 50; i++) {
      d = s.prefillStepUs(t, price, 8, 2048);
      t += d;
    }
    expect(d).toBe(price);
  });

  it('decode work that ends before the heat time (overlapping a priced step) leaves the heat alone; a day-long idle gap is fine', () => {
    const a = state();
    const b = state();
    const first = a.prefillStepUs(0, 20_000, 8, 2048);
    expect(b.prefillStepUs(0, 20_000, 8, 2048)).toBe(first);
    // Logged times may place a decode step inside the priced prefill (validation's per-step pricing).
    a.decodeWork(first - 5_000, 3_000, 64);
    expect(a.prefillStepUs(first, 20_000, 8, 2048)).toBe(b.prefillStepUs(first, 20_000, 8, 2048));
    // e^-(gap / tau) underflows: the GPU is simply cool again (once threw: detExp past 700).
    expect(a.prefillStepUs(86_400e6, 20_000, 8, 2048)).toBe(state().prefillStepUs(0, 20_000, 8, 2048));
  });

  it('a small prefill (memory-bound) barely changes; long idle cools the GPU again', () => {
    const s = state();
    expect(s.prefillStepUs(0, 5000, 1, 16)).toBeGreaterThan(5000 * (1 - computeShare(16, RIDGE) * 0.13) - 1);
    let t = 0;
    for (let i = 0; i < 50; i++) t += s.prefillStepUs(t, 20_000, 8, 2048);
    const hot = s.prefillStepUs(t, 20_000, 8, 2048);
    const cooled = s.prefillStepUs(t + hot + 1_000_000, 20_000, 8, 2048);
    expect(hot).toBe(20_000);
    expect(cooled).toBeLessThan(hot);
  });

  it('property: durations are integers in [price × (1 − 13% × share), price], deterministic, and a hotter GPU is never faster', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ gapUs: fc.integer({ min: 0, max: 200_000 }), priceUs: fc.integer({ min: 200, max: 80_000 }), tokens: fc.integer({ min: 1, max: 8192 }) }), { minLength: 1, maxLength: 40 }), (steps) => {
        const a = state();
        const b = state();
        let t = 0;
        for (const st of steps) {
          t += st.gapUs;
          const d = a.prefillStepUs(t, st.priceUs, 4, st.tokens);
          expect(b.prefillStepUs(t, st.priceUs, 4, st.tokens)).toBe(d);
          expect(Number.isSafeInteger(d)).toBe(true);
          expect(d).toBeLessThanOrEqual(st.priceUs);
          expect(d).toBeGreaterThanOrEqual(Math.floor(host + (st.priceUs - host) * (1 - 0.13 * computeShare(st.tokens, RIDGE))));
          t += d;
        }
      }),
    );
  });
});

describe('the simulator with a power section in the profile', () => {
  /** The committed H200 profile with the given power section (null: none, the plain profile). */
  function profileWithPower(power: unknown = PROFILE): string {
    const dir = mkdtempSync(join(tmpdir(), 'stratos-power-'));
    const file = join(dir, 'h200-power.json');
    const base = JSON.parse(readFileSync('calibration/profiles/h200.json', 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...base, power }));
    return file;
  }
  const input = (profile: string | undefined, power: 'profile' | 'off', lazy = true): SimConfigInput => ({
    gpu: 'h200',
    model: 'llama2-7b',
    seed: 3,
    mode: lazy ? 'lazy' : 'step',
    workload: { rate: 4, durationS: 20, inputTokens: 'uniform:300:3000', outputTokens: 'uniform:20:200' },
    cost: { ...(profile !== undefined ? { profile } : {}), power },
  });
  const run = (i: SimConfigInput) => {
    const dir = mkdtempSync(join(tmpdir(), 'stratos-power-run-'));
    const { summary } = runConfig(parseSimConfig(i), { outDir: dir });
    return { summary: summary as Record<string, any>, requests: readFileSync(join(dir, 'requests.csv'), 'utf8'), dir };
  };

  it('prefill steps run faster at moderate load (TTFT drops), decode runs are priced as before, off is the plain profile', () => {
    const file = profileWithPower();
    const on = run(input(file, 'profile'));
    const off = run(input(file, 'off'));
    const plain = run(input(profileWithPower(null), 'profile'));
    expect(off.requests).toBe(plain.requests);
    expect(on.summary.ttft_ms.mean).toBeLessThan(off.summary.ttft_ms.mean * 0.97);
    expect(on.summary.completed).toBe(off.summary.completed);
    expect(on.summary.cost_model.name).toMatch(/\+power$/);
    expect(off.summary.cost_model.name).not.toMatch(/power/);
  });

  it('lazy and step-by-step simulation agree byte for byte with power on', () => {
    const file = profileWithPower();
    expect(run(input(file, 'profile', true)).requests).toBe(run(input(file, 'profile', false)).requests);
  });
});
