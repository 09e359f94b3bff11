import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSimConfig, type SimConfigInput } from '../../sim/config.js';
import { lossRatio } from '../../sim/fleet/report.js';
import type { StepRow } from '../../sim/replica/replica.js';
import { runConfig } from '../../sim/run.js';
import { smallFleet, type Fleet } from './small-fleet.js';

function run(input: SimConfigInput): { summary: Record<string, any>; dir: string; result: ReturnType<typeof runConfig>['result'] } {
  const dir = mkdtempSync(join(tmpdir(), 'stratos-fleet-'));
  const { summary, result } = runConfig(parseSimConfig(input), { outDir: dir });
  return { summary, dir, result };
}

const read = (dir: string, f: string): string => readFileSync(join(dir, f), 'utf8');

function conserved(s: Record<string, any>): void {
  expect(s.unfinished).toBe(0);
  expect(s.completed + s.rejected + s.aborted + s.failed).toBe(s.requests);
}

describe('fleet', () => {
  it('a one-pool round-robin fleet writes the same requests.csv as the plain config', () => {
    const plain: SimConfigInput = { gpu: 'h200', replicas: 3, seed: 2, workload: { rate: 8, durationS: 20, tenants: [{ name: 'x', weight: 1, priorityClass: 1 }] } };
    const fleet: SimConfigInput = {
      gpu: 'h200',
      seed: 2,
      workload: { rate: 8, durationS: 20 },
      fleet: { pools: [{ name: 'p', model: 'llama2-13b', replicas: 3 }], tenants: [{ name: 'x', plan: 'standard', tier: 'p' }] },
    };
    const a = run(plain);
    const b = run(fleet);
    expect(read(b.dir, 'requests.csv')).toEqual(read(a.dir, 'requests.csv'));
    expect(b.summary.pools.p.requests).toBe(a.summary.requests);
  });

  it('routes tenants to their tiers, prices them and keeps conservation', () => {
    const { summary: s, dir } = run(smallFleet());
    conserved(s);
    expect(s.pools.small.requests + s.pools.mid.requests).toBe(s.requests);
    expect(s.pools.mid.requests).toBeGreaterThan(s.pools.small.requests);
    const rows = read(dir, 'requests.csv').trimEnd().split('\n').slice(1);
    for (const row of rows) {
      const [, tenant, model] = row.split(',');
      expect(model).toBe(tenant === 'a' || tenant === 'b' ? 'llama2-13b' : 'llama2-7b');
    }
    expect(s.cost.gpu_hours).toBeGreaterThan(0);
    // 5 serving replicas + 1 spare, one GPU each, over the run.
    expect(s.cost.gpu_hours).toBeCloseTo((6 * s.duration_s) / 3600, 2);
    expect(s.cost.revenue_usd).toBeGreaterThan(0);
    expect(s.tier_economics.pairs[0].tier).toBe('mid');
  });

  it('lazy and step-by-step runs agree byte for byte with JSQ and router limits', () => {
    const input = smallFleet({ plans: { premium: { priority: 'premium', maxConcurrent: 3 }, standard: { priority: 'standard', rateLimit: { ratePerS: 4, burst: 4 } } } });
    const lazy = run({ ...input, mode: 'lazy' });
    const step = run({ ...input, mode: 'step' });
    expect(read(lazy.dir, 'requests.csv')).toEqual(read(step.dir, 'requests.csv'));
    expect(read(lazy.dir, 'summary.json')).toEqual(read(step.dir, 'summary.json'));
  });

  it('with faults and retries, lazy and step runs give every request the same outcome', () => {
    // A lazy replica loses its whole decode run in flight at a failure (step mode only the last
    // step), so replica statistics may differ; what happens to each request may not.
    const input = smallFleet({ faults: { schedule: [{ pool: 'mid', replica: 1, atS: 8, downS: 10 }, { pool: 'small', replica: 0, atS: 12, downS: 5 }], failoverDelayS: 2, maxRetries: 1 } });
    const lazy = run({ ...input, mode: 'lazy' });
    const step = run({ ...input, mode: 'step' });
    expect(read(lazy.dir, 'requests.csv')).toEqual(read(step.dir, 'requests.csv'));
    expect(lazy.summary.faults.failures).toBe(2);
    expect(lazy.summary.faults.retries).toBeGreaterThan(0);
    conserved(lazy.summary);
  });

  it('property: no request is lost across failures (every one ends, failures say why)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ pool: fc.constantFrom('small', 'mid'), replica: fc.nat(1), atS: fc.integer({ min: 0, max: 25 }), downS: fc.integer({ min: 1, max: 20 }) }), { maxLength: 4 }),
        fc.integer({ min: 0, max: 5 }),
        fc.nat(2),
        fc.integer({ min: 1, max: 1000 }),
        (schedule, failoverDelayS, maxRetries, seed) => {
          const input = smallFleet({ faults: { schedule, failoverDelayS, maxRetries } }, { seed, workload: { rate: 10, durationS: 20, inputTokens: 'uniform:50:400', outputTokens: 'uniform:10:120' } });
          const { summary: s, result } = run(input);
          conserved(s);
          const r = result.records;
          for (let id = 0; id < r.size; id++) {
            if (r.status[id] === 'failed') expect(r.reason[id]).toBe('replica_failure');
            expect(r.finishUs[id]).toBeGreaterThanOrEqual(r.arrivalUs[id]);
          }
          expect(s.failed).toBe(s.faults.failed_requests);
        },
      ),
      { numRuns: 12 },
    );
  });

  it('property: aging bounds hold across the router (a standard request is never overtaken by premium ones arriving agingS after it)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.constantFrom('round-robin', 'jsq', 'least-kv', 'affinity'), (seed, policy) => {
        const input = smallFleet({ router: { policy: policy as 'jsq' }, tenants: [
          { name: 'a', plan: 'premium', tier: 'mid', weight: 3 },
          { name: 'b', plan: 'standard', tier: 'mid', weight: 2 },
          { name: 'c', plan: 'standard', tier: 'small', weight: 2 },
          { name: 'd', plan: 'premium', tier: 'small', weight: 1 },
        ] }, { seed, scheduler: { agingS: 0.5, maxNumSeqs: 4 }, policy: 'continuous', workload: { rate: 30, durationS: 8, inputTokens: 'uniform:50:300', outputTokens: 'uniform:20:100' } });
        const { result } = run(input);
        const r = result.records;
        const agingUs = 500_000;
        const premium = new Set(['a', 'd']);
        const byReplica = new Map<number, number[]>();
        for (let id = 0; id < r.size; id++) {
          if (r.firstScheduledUs[id] < 0) continue;
          const list = byReplica.get(r.replica[id]) ?? [];
          list.push(id);
          byReplica.set(r.replica[id], list);
        }
        let overtakes = 0;
        for (const ids of byReplica.values()) {
          for (const s of ids) {
            if (premium.has(r.tenant[s]) || r.preemptions[s] > 0) continue;
            for (const q of ids) {
              if (!premium.has(r.tenant[q]) || r.arrivalUs[q] < r.arrivalUs[s] + agingUs) continue;
              if (r.firstScheduledUs[q] < r.firstScheduledUs[s]) overtakes++;
            }
          }
        }
        expect(overtakes).toBe(0);
      }),
      { numRuns: 8 },
    );
  });

  it('counts each router refusal with its reason', () => {
    const { summary: s } = run(
      smallFleet(
        {
          router: { policy: 'round-robin', maxInputTokens: 500 },
          plans: { tight: { priority: 'standard', rateLimit: { ratePerS: 1, burst: 2 } }, capped: { priority: 'premium', maxConcurrent: 2 } },
          tenants: [
            { name: 'a', plan: 'tight', tier: 'mid', weight: 2 },
            { name: 'b', plan: 'capped', tier: 'small', weight: 2 },
          ],
        },
        { workload: { rate: 20, durationS: 10, inputTokens: 'uniform:50:600', outputTokens: 'uniform:100:300' } },
      ),
    );
    conserved(s);
    expect(s.router.refusals.input_too_long).toBeGreaterThan(0);
    expect(s.router.refusals.rate_limited).toBeGreaterThan(0);
    expect(s.router.refusals.tenant_concurrency_cap).toBeGreaterThan(0);
    const reasons = Object.keys(s.not_completed_reasons);
    expect(reasons).toEqual(expect.arrayContaining(['rejected:input_too_long', 'rejected:rate_limited', 'rejected:tenant_concurrency_cap']));
  });

  it('the autoscaler adds replicas under overload after the provisioning delay', () => {
    const { summary: s } = run(
      smallFleet(
        { pools: [{ name: 'small', model: 'llama2-7b', replicas: 1, maxReplicas: 4 }, { name: 'mid', model: 'llama2-13b', replicas: 1, maxReplicas: 4 }], autoscaler: { enabled: true, intervalS: 5, provisionS: 5, queuePerReplicaHigh: 2 } },
        { workload: { rate: 40, durationS: 40, inputTokens: 'uniform:200:1500', outputTokens: 'uniform:100:400' } },
      ),
    );
    conserved(s);
    expect(s.pools.mid.scale_ups).toBeGreaterThan(0);
    expect(s.pools.mid.replicas_peak).toBeGreaterThan(1);
  });

  it('peak ITL splits into back-to-back and interrupted gaps: under continuous batching the interrupted ones are the decoders a prefill step kept waiting', () => {
    // No diurnal shape: the peak window is the whole run, so the peak figures hold every gap.
    const input = (policy: 'continuous' | 'chunked'): SimConfigInput => smallFleet({}, { policy, workload: { rate: 12, durationS: 30, inputTokens: 'uniform:50:2000', outputTokens: 'uniform:20:200' } });
    const steps: StepRow[] = [];
    const { summary, result } = runConfig(parseSimConfig(input('continuous')), { hooks: { onStep: (row) => steps.push(row) } });
    const s = summary as Record<string, any>;
    conserved(s);
    // The model: a decode step's sequences that were not in the step before it (a prefill step,
    // whose sequences sampled their first token) waited out at least one step. Exact without preemption.
    const expected = new Map<number, number>();
    const bySlot = new Map<number, StepRow[]>();
    for (const row of steps) (bySlot.get(row.replica) ?? bySlot.set(row.replica, []).get(row.replica)!).push(row);
    for (const [slot, rows] of bySlot) {
      const pool = result.fleet!.slotPool[slot];
      let previous: StepRow | null = null;
      for (const row of rows.sort((a, b) => a.stepIndex - b.stepIndex)) {
        if (row.numSeqs === 0) continue;
        if (row.numPrefillTokens === 0 && previous !== null && previous.numPrefillTokens > 0) expected.set(pool, (expected.get(pool) ?? 0) + row.numSeqs - previous.numSeqs);
        previous = row;
      }
    }
    const chunked = run(input('chunked')).summary;
    result.fleet!.pools.forEach((pool, p) => {
      const peak = s.pools[pool.name].peak;
      expect(s.pools[pool.name].preemptions).toBe(0);
      expect(peak.itl_interrupted_ms.count).toBe(expected.get(p) ?? 0);
      expect(peak.itl_interrupted_ms.count).toBeGreaterThan(0);
      expect(peak.itl_back_to_back_ms.count + peak.itl_interrupted_ms.count).toBe(peak.itl_ms.count);
      const meanOfParts = (peak.itl_back_to_back_ms.mean * peak.itl_back_to_back_ms.count + peak.itl_interrupted_ms.mean * peak.itl_interrupted_ms.count) / peak.itl_ms.count;
      expect(meanOfParts).toBeCloseTo(peak.itl_ms.mean, 2);
      // Each interrupted gap holds a prefill step and a decode step: longer than a decode step.
      expect(peak.itl_interrupted_ms.p50).toBeGreaterThan(peak.itl_back_to_back_ms.p50);
      expect(peak.sla_windows_violated).toBeGreaterThanOrEqual(Math.max(peak.sla_windows_violated_ttft, peak.sla_windows_violated_itl));
      expect(peak.sla_windows_violated).toBeLessThanOrEqual(peak.sla_windows_violated_ttft + peak.sla_windows_violated_itl);
      // Chunked prefill runs every decoder in every step: no gap is interrupted.
      expect(chunked.pools[pool.name].preemptions).toBe(0);
      expect(chunked.pools[pool.name].peak.itl_interrupted_ms.count).toBe(0);
      expect(chunked.pools[pool.name].peak.itl_back_to_back_ms.count).toBe(chunked.pools[pool.name].peak.itl_ms.count);
    });
    expect(s.sla_peak.pool_windows_violated_itl).toBe(Object.values<any>(s.pools).reduce((a, p) => a + p.peak.sla_windows_violated_itl, 0));
    expect(s.sla_peak.pool_windows_violated_ttft).toBe(Object.values<any>(s.pools).reduce((a, p) => a + p.peak.sla_windows_violated_ttft, 0));
  });

  it('tier economics: the case study loss ratio of 70B over 13B', () => {
    expect(lossRatio(13, 70)).toBeCloseTo(0.88, 3);
  });
});

describe('fleet config errors name the key, the value and what is allowed', () => {
  const expectError = (over: Partial<Fleet>, pattern: RegExp): void => {
    expect(() => parseSimConfig(smallFleet(over))).toThrow(pattern);
  };
  it('unknown tier, unknown plan, adapter without tenant, unknown pool in a fault', () => {
    expectError({ tenants: [{ name: 'a', plan: 'premium', tier: 'huge' }] }, /fleet.tenants.0.tier = "huge": unknown tier; allowed: small, mid/);
    expectError({ tenants: [{ name: 'a', plan: 'gold', tier: 'mid' }] }, /fleet.tenants.0.plan = "gold": unknown plan; allowed: premium, standard/);
    expectError({ adapters: [{ name: 'z', tenant: 'nobody' }] }, /fleet.adapters.0.tenant = "nobody": adapter z names no known tenant/);
    expectError({ faults: { schedule: [{ pool: 'big', replica: 0, atS: 1, downS: 1 }] } }, /fleet.faults.schedule.0.pool = "big": unknown pool/);
  });
  it('negative rate, unknown router policy, unknown key, crossed autoscaler bounds', () => {
    expectError({ plans: { standard: { rateLimit: { ratePerS: -2, burst: 3 } } } }, /fleet.plans.standard.rateLimit.ratePerS = -2/);
    expectError({ router: { policy: 'random' as 'jsq' } }, /fleet.router.policy = "random": allowed: round-robin, jsq, least-kv, affinity/);
    expectError({ router: { polcy: 'jsq' } as never }, /fleet.router.polcy: unknown key; allowed keys: policy, choices, maxInputTokens/);
    expectError({ pools: [{ name: 'small', model: 'llama2-7b', replicas: 3, minReplicas: 4 }, { name: 'mid', model: 'llama2-13b', replicas: 1 }] }, /minReplicas 4 <= replicas 3/);
    expectError({ pools: [{ name: 'small', model: 'llama2-9b' as 'llama2-7b', replicas: 1 }] }, /fleet.pools.0.model = "llama2-9b": allowed: llama2-7b/);
  });
  it('a pool on a GPU the pricing has no $/GPU-hour for (it would cost nothing)', () => {
    const pools = [{ name: 'small', model: 'llama2-7b' as const, replicas: 1, gpu: 'h100' as const }, { name: 'mid', model: 'llama2-13b' as const, replicas: 1 }];
    expectError({ pools }, /fleet.pricing.gpuHourUsd: no price for h100 \(fleet.pools.0, small, runs on it\); priced: h200/);
    expect(() => parseSimConfig(smallFleet({ pools, pricing: { gpuHourUsd: { h200: 6, h100: 5 } } }))).not.toThrow();
    // Without a pricing section every GPU with a profile has a default list price, H100 included.
    const { pricing: _given, ...unpriced } = smallFleet({ pools }).fleet!;
    expect(parseSimConfig({ ...smallFleet(), fleet: unpriced }).fleet!.pricing.gpuHourUsd).toEqual({ 'a100-80gb': 2.25, h100: 4.25, h200: 5.75 });
  });
});
