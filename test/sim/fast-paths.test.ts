// The simulator's speed paths must give exactly what the plain definitions give: these compare
// each against a deliberately simple model.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GPUS, MODELS, type GpuName, type KvDtype, type ModelName, type WeightDtype } from '../../sim/catalog.js';
import { RooflineCostModel } from '../../sim/cost/roofline.js';
import { ItlWindows, ReplicaStats } from '../../sim/metrics/replica-stats.js';
import { SampleList } from '../../sim/metrics/sample-list.js';
import { bucketOf, bucketWidth, denseIndexOf, WeightedSamples } from '../../sim/metrics/weighted-samples.js';
import { decodeRunStepShape } from '../../sim/replica/step-shape.js';

/** The bucketing as first written (floating-point division), the model for the bit-trick path. */
function bucketOfModel(value: number): number {
  if (value < 2048 || !Number.isFinite(value)) return value;
  const v = Math.floor(value);
  const bits = v < 2 ** 31 ? 32 - Math.clz32(v) : Math.floor(Math.log2(v)) + 1;
  const scale = 2 ** (bits - 11);
  return Math.floor(v / scale) * scale;
}

/** A multiset as a map from bucket to count, percentiles by sorting the keys: the reference. */
class SamplesModel {
  readonly counts = new Map<number, number>();
  n = 0;
  sum = 0;
  add(value: number, count: number): void {
    if (count <= 0) return;
    const key = bucketOfModel(value);
    this.counts.set(key, (this.counts.get(key) ?? 0) + count);
    this.n += count;
    this.sum += value * count;
  }
  percentiles(ps: readonly number[]): number[] {
    if (this.n === 0) return ps.map(() => NaN);
    const keys = [...this.counts.keys()].sort((a, b) => a - b);
    return ps.map((p) => {
      const rank = Math.max(1, Math.ceil((p / 100) * this.n));
      let seen = 0;
      for (const k of keys) {
        seen += this.counts.get(k)!;
        if (seen >= rank) return k;
      }
      throw new Error('rank past the end');
    });
  }
  max(): number {
    return this.n === 0 ? NaN : Math.max(...this.counts.keys());
  }
}

const PS = [0, 1, 50, 90, 95, 99, 99.9, 100];

// Latencies as they occur (integers over many octaves), plus the rare keys outside the dense range.
const valueArb = fc.oneof(
  fc.integer({ min: 0, max: 5000 }),
  fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  fc.integer({ min: 2 ** 31, max: 2 ** 40 }),
  fc.double({ min: 0, max: 4000, noNaN: true }),
  fc.integer({ min: 20_000, max: 60_000 }),
);
const opArb = fc.record({ value: valueArb, count: fc.integer({ min: 0, max: 1000 }), bucketed: fc.boolean(), into: fc.integer({ min: 0, max: 2 }) });

describe('weighted samples', () => {
  it('bucketOf equals the floating-point definition', () => {
    fc.assert(
      fc.property(fc.oneof(valueArb, fc.double({ noNaN: true })), (v) => {
        expect(bucketOf(v)).toBe(bucketOfModel(v));
      }),
    );
  });

  it('bucketWidth: the integers from the key up to key + width share the bucket, the next one does not', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 2 ** 31 + 10 }), fc.double({ min: 0, max: 1e6, noNaN: true })), (v) => {
        const key = bucketOf(v);
        const width = bucketWidth(v, key);
        if (width === 0) return;
        expect(Number.isInteger(v) && v >= key && v < key + width).toBe(true);
        for (const x of [key, key + 1, v, key + width - 1]) expect(bucketOf(x)).toBe(key);
        expect(bucketOf(key + width)).not.toBe(key);
        expect(bucketOf(key - 1)).not.toBe(key);
      }),
    );
  });

  it('add, addBucketed, addAtDenseIndex and addAll give the reference percentiles, mean, size and max', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        // Three histograms filled separately, then merged into the first (as replicas are merged).
        const parts = [new WeightedSamples(), new WeightedSamples(), new WeightedSamples()];
        const model = new SamplesModel();
        for (const op of ops) {
          const index = denseIndexOf(bucketOf(op.value));
          if (op.bucketed && index >= 0 && op.count % 2 === 0) parts[op.into].addAtDenseIndex(index, op.count, op.value * op.count);
          else if (op.bucketed) parts[op.into].addBucketed(bucketOf(op.value), op.count, op.value * op.count);
          else parts[op.into].add(op.value, op.count);
          model.add(op.value, op.count);
        }
        const all = parts[0];
        all.addAll(parts[1]);
        all.addAll(parts[2]);
        expect(all.size).toBe(model.n);
        expect(all.percentiles(PS)).toEqual(model.percentiles(PS));
        expect(all.max()).toBe(model.max());
        // Integer sums below 2^53 are exact in any order; fractional ones depend on the merge order.
        const exact = ops.every((op) => Number.isInteger(op.value)) && model.sum < 2 ** 53;
        if (model.n > 0 && exact) expect(all.mean()).toBe(model.sum / model.n);
      }),
    );
  });

  it('subtractAll leaves exactly the other samples (a subset recorded twice: once among all, once apart)', () => {
    // Integer values, as gaps are: every sum is exact, so the mean of the rest is exact too.
    const intOpArb = fc.record({ value: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 2 ** 31, max: 2 ** 36 })), count: fc.integer({ min: 0, max: 1000 }), apart: fc.boolean() });
    fc.assert(
      fc.property(fc.array(intOpArb, { maxLength: 200 }), (ops) => {
        const all = new WeightedSamples();
        const apart = new WeightedSamples();
        const rest = new SamplesModel();
        for (const op of ops) {
          all.add(op.value, op.count);
          if (op.apart) apart.add(op.value, op.count);
          else rest.add(op.value, op.count);
        }
        all.subtractAll(apart);
        expect(all.size).toBe(rest.n);
        expect(all.percentiles(PS)).toEqual(rest.percentiles(PS));
        expect(all.max()).toBe(rest.max());
        if (rest.n > 0) expect(all.mean()).toBe(rest.sum / rest.n);
      }),
    );
    const one = new WeightedSamples();
    one.add(30_000, 2);
    const more = new WeightedSamples();
    more.add(30_000, 3);
    expect(() => one.subtractAll(more)).toThrow(/fewer samples/);
  });

  it('a sample list gives the same distribution as weighted samples of count 1', () => {
    fc.assert(
      fc.property(fc.array(valueArb, { maxLength: 300 }), (values) => {
        const list = new SampleList();
        const weighted = new WeightedSamples();
        for (const v of values) {
          list.add(v);
          weighted.add(v);
        }
        expect(list.size).toBe(weighted.size);
        expect(list.percentiles(PS)).toEqual(weighted.percentiles(PS));
        if (values.length > 0) expect(list.mean()).toBe(weighted.mean());
      }),
    );
  });
});

describe('replica ITL by tenant and by window', () => {
  it('a replica\'s ITL (merged from its windows) holds the samples of its tenants, also with a shared tenant map', () => {
    const addArb = fc.record({ replica: fc.integer({ min: 0, max: 2 }), tenant: fc.constantFrom('a', 'b', 'c'), gap: valueArb, count: fc.integer({ min: 0, max: 50 }), timeUs: fc.integer({ min: 0, max: 10_000_000 }) });
    fc.assert(
      fc.property(fc.array(addArb, { maxLength: 200 }), (adds) => {
        const shared = new Map<string, WeightedSamples>();
        const own = [0, 1, 2].map(() => new ReplicaStats(1_000_000));
        const sharing = [0, 1, 2].map(() => new ReplicaStats(1_000_000, shared));
        for (const a of adds) {
          own[a.replica].addItl(a.tenant, a.gap, a.count, a.timeUs);
          sharing[a.replica].addItl(a.tenant, a.gap, a.count, a.timeUs);
        }
        for (let r = 0; r < 3; r++) {
          const byTenant = new WeightedSamples();
          for (const w of own[r].itlByTenant.values()) byTenant.addAll(w);
          expect(own[r].itl.size).toBe(byTenant.size);
          expect(own[r].itl.percentiles(PS)).toEqual(byTenant.percentiles(PS));
          expect(sharing[r].itl.percentiles(PS)).toEqual(own[r].itl.percentiles(PS));
        }
        // The shared map holds, per tenant, the three replicas' samples together.
        for (const t of ['a', 'b', 'c']) {
          const merged = new WeightedSamples();
          for (const st of own) if (st.itlByTenant.has(t)) merged.addAll(st.itlByTenant.get(t)!);
          expect(shared.get(t)?.size ?? 0).toBe(merged.size);
          if (merged.size > 0) expect(shared.get(t)!.percentiles(PS)).toEqual(merged.percentiles(PS));
        }
      }),
    );
  });
});

describe('per-window ITL shared by the replicas of a pool', () => {
  it('merging each distinct window map once gives what merging every replica\'s own maps gives', () => {
    // Gaps are integer microseconds (step durations), so every sum is exact in any order.
    const gapArb = fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 20_000, max: 60_000 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }));
    const addArb = fc.record({ replica: fc.integer({ min: 0, max: 2 }), tenant: fc.constantFrom('a', 'b'), gap: gapArb, count: fc.integer({ min: 0, max: 50 }), timeUs: fc.integer({ min: 0, max: 10_000_000 }) });
    fc.assert(
      fc.property(fc.array(addArb, { maxLength: 200 }), (adds) => {
        const sharedWindows = new ItlWindows();
        const own = [0, 1, 2].map(() => new ReplicaStats(1_000_000));
        const sharing = [0, 1, 2].map(() => new ReplicaStats(1_000_000, new Map(), sharedWindows));
        for (const a of adds) {
          own[a.replica].addItl(a.tenant, a.gap, a.count, a.timeUs);
          sharing[a.replica].addItl(a.tenant, a.gap, a.count, a.timeUs);
        }
        const merge = (stats: ReplicaStats[]): Map<number, WeightedSamples> => {
          const out = new Map<number, WeightedSamples>();
          const seen = new Set<Map<number, WeightedSamples>>();
          for (const st of stats) {
            if (seen.has(st.itlByWindow)) continue;
            seen.add(st.itlByWindow);
            for (const [w, samples] of st.itlByWindow) {
              if (!out.has(w)) out.set(w, new WeightedSamples());
              out.get(w)!.addAll(samples);
            }
          }
          return out;
        };
        const a = merge(own);
        const b = merge(sharing);
        expect([...b.keys()].sort((x, y) => x - y)).toEqual([...a.keys()].sort((x, y) => x - y));
        for (const [w, samples] of a) {
          expect(b.get(w)!.size).toBe(samples.size);
          if (samples.size > 0) expect(b.get(w)!.percentiles(PS)).toEqual(samples.percentiles(PS));
          if (samples.size > 0) expect(b.get(w)!.mean()).toBe(samples.mean());
        }
        // A replica's `itl` is its map's: with a shared map, the pool's.
        expect(sharing[0].itl.size).toBe(adds.reduce((n, x) => n + x.count, 0));
      }),
    );
  });
});

describe('roofline decode fast path', () => {
  it('decodeRunUs equals stepUs of each decode-run shape, for every model, GPU, dtype and option', () => {
    const shapeArb = fc.record({
      model: fc.constantFrom<ModelName>('llama2-7b', 'llama2-13b', 'llama2-70b'),
      gpu: fc.constantFrom<GpuName>('a100-80gb', 'h200'),
      tp: fc.constantFrom(1, 2, 4, 8),
      weightDtype: fc.constantFrom<WeightDtype>('bf16', 'fp16', 'fp8', 'int8', 'int4'),
      kvDtype: fc.constantFrom<KvDtype>('bf16', 'fp16', 'fp8'),
      sampling: fc.constantFrom<'gpu' | 'cpu'>('gpu', 'cpu'),
      memoryEfficiency: fc.double({ min: 0.05, max: 1, noNaN: true }),
      gemmEfficiency: fc.double({ min: 0.05, max: 1, noNaN: true }),
      hostOverheadUs: fc.double({ min: 0, max: 5000, noNaN: true }),
      numSeqs: fc.integer({ min: 1, max: 1024 }),
      contextTokens0: fc.integer({ min: 0, max: 4_000_000 }),
      numAdapters: fc.integer({ min: 0, max: 64 }),
      step: fc.integer({ min: 0, max: 5000 }),
    });
    fc.assert(
      fc.property(shapeArb, (s) => {
        const cost = new RooflineCostModel(
          { model: MODELS[s.model], gpu: GPUS[s.gpu], tp: s.tp, weightDtype: s.weightDtype, kvDtype: s.kvDtype },
          {
            memoryEfficiency: s.memoryEfficiency,
            gemmEfficiency: s.gemmEfficiency,
            attentionEfficiency: 0.5,
            hostOverheadUs: s.hostOverheadUs,
            sampling: s.sampling,
            cpuSamplingUsPerToken: 2000,
            allReduceLatencyUs: 8,
            loraRank: 16,
          },
        );
        // A whole run: the steps that start before the limit (step 0 always), each priced by stepUs.
        const maxSteps = 1 + (s.step % 300);
        const startUs = 1_000_000;
        const limitUs = s.step % 5 === 0 ? Infinity : startUs + (s.step % 7) * 20_000;
        const expected: number[] = [];
        for (let i = 0, t = startUs; i < maxSteps && (i === 0 || t < limitUs); i++) {
          const d = cost.stepUs(decodeRunStepShape(s.numSeqs, s.contextTokens0, s.numAdapters, i));
          expected.push(d);
          t += d;
        }
        const got: number[] = [];
        expect(cost.decodeRunUs(s.numSeqs, s.contextTokens0, s.numAdapters, maxSteps, startUs, limitUs, got)).toBe(expected.length);
        expect(got).toEqual(expected);
      }),
    );
  });
});
