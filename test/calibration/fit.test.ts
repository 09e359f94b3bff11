import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SamplesWriter } from '../../calibration/samples.js';
import type { Case } from '../../calibration/grids.js';
import { EfficiencyGrid } from '../../sim/cost/interp.js';
import { FAMILY_SPECS } from '../../sim/cost/op-work.js';
import { fitProfile } from '../../sim/cost/profile-fit.js';
import { parseProfile } from '../../sim/cost/profile.js';
import { formatSamplesCsv, mergeSamples, parseSamplesCsv, type Sample } from '../../sim/cost/samples.js';
import { knownEfficiency, syntheticSamples, SYNTHETIC_META } from './synthetic.js';

const samples = syntheticSamples(['llama2-7b', 'llama2-13b', 'llama2-70b'], 'full');
const fit = fitProfile({ samples, meta: SYNTHETIC_META, gpu: 'h200' });

describe('fit on synthetic samples', () => {
  it('recovers the known efficiency at every grid point (5 significant digits)', () => {
    let checked = 0;
    for (const t of fit.profile.tables) {
      const grid = new EfficiencyGrid(t.axes, t.efficiency);
      for (let idx = 0; idx < grid.size; idx++) {
        const e = grid.measuredAt(idx);
        if (e === null) continue;
        const ind = grid.indices(idx);
        const point: Record<string, number> = {};
        t.axes.forEach((a, i) => (point[a.name] = a.values[ind[i]]));
        expect(e / knownEfficiency(t.family, t.config, point) - 1).toBeCloseTo(0, 4);
        checked++;
      }
    }
    expect(checked).toBe(samples.filter((s) => s.set === 'fit').length);
  });

  it('covers every family, and the profile it writes passes its own checks', () => {
    expect(new Set(fit.profile.tables.map((t) => t.family))).toEqual(new Set(Object.keys(FAMILY_SPECS)));
    expect(() => parseProfile(JSON.parse(JSON.stringify(fit.profile)))).not.toThrow();
    expect(fit.profile.name).toBe('h200-2026-01-01');
    expect(fit.profile.derived).toBe(false);
  });

  it('leave-one-out and holdout errors of a smooth efficiency meet the goal, stored per family', () => {
    // The goal (median <= 3%, p90 <= 10%); the knee of 0.8 s / (s + 4 us) between grid points 4x apart is the hard part.
    for (const [family, e] of Object.entries(fit.profile.fit.looError)) {
      expect(e.n, family).toBeGreaterThan(0);
      expect(e.median, family).toBeLessThanOrEqual(0.03);
      expect(e.p90, family).toBeLessThanOrEqual(0.1);
    }
    for (const [family, e] of Object.entries(fit.profile.fit.holdoutError)) {
      expect(e.median, family).toBeLessThan(0.03);
    }
    expect(fit.holdout.length).toBe(samples.filter((s) => s.set === 'holdout').length);
  });

  it('nothing is padded when time already grows with size; a faster larger shape is padded to', () => {
    for (const p of Object.values(fit.profile.fit.padded ?? {})) expect(p.points).toBe(0);
    const base: Omit<Sample, 'point' | 'medianUs'> = { family: 'gemm', config: { n: 4096, k: 4096 }, set: 'fit', p10Us: 1, p90Us: 1, minUs: 1, maxUs: 1, reps: 1, callsPerRep: 1 };
    const odd: Sample[] = [
      { ...base, point: { m: 1 }, medianUs: 20 },
      { ...base, point: { m: 2 }, medianUs: 15 }, // faster than m = 1: an engine would pad 1 to 2
      { ...base, point: { m: 4 }, medianUs: 21 },
    ];
    const r = fitProfile({ samples: odd, meta: SYNTHETIC_META, gpu: 'h200' });
    expect(r.profile.fit.padded?.gemm).toEqual({ points: 1, of: 3, maxTimeReduction: 0.25 });
    const t = r.profile.tables[0];
    const grid = new EfficiencyGrid(t.axes, t.efficiency);
    // m = 1 now costs what m = 2 costs (same roofline in the memory-bound regime, nearly).
    expect(grid.efficiency([1])).toBeGreaterThan(grid.efficiency([2]) * 0.99);
  });

  it('is deterministic: the same samples give the same profile, byte for byte', () => {
    const again = fitProfile({ samples: [...samples], meta: SYNTHETIC_META, gpu: 'h200' });
    expect(JSON.stringify(again.profile)).toBe(JSON.stringify(fit.profile));
  });
});

describe('samples CSV', () => {
  it('round-trips between the runner\'s writer and the fit\'s reader', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stratos-samples-'));
    const path = join(dir, 'samples.csv');
    const w = new SamplesWriter(path, { date: '2026-01-01', gpu: { name: 'NVIDIA H200' } });
    const cases: Case[] = [
      { family: 'gemm', config: { n: 12288, k: 4096 }, point: { m: 7 }, set: 'fit' },
      { family: 'sampling', config: { method: 'topk_topp' }, point: { batch: 3, vocab: 32000 }, set: 'holdout' },
      { family: 'copyH2D', config: {}, point: { bytes: 65536 }, set: 'fit' },
      { family: 'prefill', config: { heads: 8, kvHeads: 1, headDim: 128 }, point: { seqs: 2, chunk: 16, ctx: 0 }, set: 'fit' },
    ];
    cases.forEach((c, i) => w.add(c, { medianUs: 10.5 + i, p10Us: 10, p90Us: 12, minUs: 9.5, maxUs: 13, reps: 9, callsPerRep: 4 }));
    w.end({ samples: 4 });
    const { meta, samples: back } = parseSamplesCsv(readFileSync(path, 'utf8'), path);
    expect(meta.date).toBe('2026-01-01');
    expect((meta.end as { samples: number }).samples).toBe(4);
    expect(back.map((s) => [s.family, s.config, s.point, s.set, s.medianUs])).toEqual(cases.map((c, i) => [c.family, c.config, c.point, c.set, 10.5 + i]));
    const again = parseSamplesCsv(formatSamplesCsv(meta, back));
    expect(again.samples).toEqual(back);
  });

  it('merge takes the families a later run holds from that run alone, the rest from the base, and records both runs', () => {
    const base = syntheticSamples(['llama2-7b'], 'quick');
    const later = syntheticSamples(['llama2-7b'], 'quick', () => 0.5).filter((s) => s.family === 'gemm' || s.family === 'prefill');
    const first = mergeSamples({ meta: SYNTHETIC_META, samples: base }, { meta: { date: 'later' }, samples: later });
    expect(first.families).toEqual(['gemm', 'prefill']);
    expect(first.samples.length).toBe(base.length);
    for (const f of ['gemm', 'prefill']) expect(first.samples.filter((s) => s.family === f)).toEqual(later.filter((s) => s.family === f));
    expect(first.samples.filter((s) => s.family !== 'gemm' && s.family !== 'prefill')).toEqual(base.filter((s) => s.family !== 'gemm' && s.family !== 'prefill'));
    expect(first.meta.date).toBe(SYNTHETIC_META.date);
    const again = mergeSamples(first, { meta: { date: 'latest' }, samples: later.filter((s) => s.family === 'gemm') });
    expect((again.meta.replacedBy as { families: string[]; run: { date: string } }[]).map((r) => [r.families, r.run.date])).toEqual([[['gemm', 'prefill'], 'later'], [['gemm'], 'latest']]);
  });

  it('errors name the line and what is wrong', () => {
    const head = '# stratos-calibration-samples {}\nfamily,config,point,set,median_us,p10_us,p90_us,min_us,max_us,reps,calls_per_rep\n';
    expect(() => parseSamplesCsv('family,config\n', 'x.csv')).toThrow(/x.csv: not a calibration samples file/);
    expect(() => parseSamplesCsv(head + 'gemv,n=1;k=1,m=1,fit,1,1,1,1,1,1,1\n', 'x.csv')).toThrow(/line 3: family "gemv"/);
    expect(() => parseSamplesCsv(head + 'gemm,n=1,m=1,fit,1,1,1,1,1,1,1\n', 'x.csv')).toThrow(/line 3: config lacks k/);
    expect(() => parseSamplesCsv(head + 'gemm,n=1;k=1,m=0,fit,1,1,1,1,1,1,1\n', 'x.csv')).toThrow(/point m = 0/);
    expect(() => parseSamplesCsv(head + 'gemm,n=1;k=1,m=1,both,1,1,1,1,1,1,1\n', 'x.csv')).toThrow(/set "both"/);
    expect(() => parseSamplesCsv(head + 'gemm,n=1;k=1,m=1,fit,0,1,1,1,1,1,1\n', 'x.csv')).toThrow(/median_us must be > 0/);
  });
});
