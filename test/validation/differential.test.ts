// Issue 7's differential test: the engine loop with the fake runner, whose step durations come
// from the simulator's cost model (wired in here: engine/ never imports sim/), must produce
// exactly the simulator's schedule for the same workload and seed: the same steps in the same
// order (composition, start, duration, KV use) and the same per-request timestamps (requests.csv
// byte for byte) and summary.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runEngineBench } from '../../experiments/commands/engine.js';
import { parseSimConfig, type SimConfigInput } from '../../sim/config.js';
import { requestsCsv } from '../../sim/metrics/csv.js';
import type { StepRow } from '../../sim/replica/replica.js';
import { planDurationUs } from '../../sim/replica/step-shape.js';
import { runConfig } from '../../sim/run.js';

async function compare(input: SimConfigInput): Promise<{ numSteps: number; numPreemptions: number; numRequests: number; numRejected: number; numLoraLoads: number; costModel: string }> {
  const config = parseSimConfig(input);
  const simRows: StepRow[] = [];
  const sim = runConfig(config, { hooks: { onStep: (row) => simRows.push(row) } });
  const cost = sim.result.costModel;
  const slots = new Set<number>();
  // The engine's GPU gets a power state of its own, as each simulated replica does.
  const power = cost.newPowerState?.() ?? null;
  const engine = await runEngineBench(config, {
    backend: 'fake',
    model: config.model,
    dtype: 'bf16',
    numBlocks: sim.result.kv.numBlocks,
    stepDurationUs: (plan, startUs) => planDurationUs(cost, plan, slots, startUs, power),
  });
  const engineRows = engine.steps.map((s) => ({
    replica: 0, stepIndex: s.stepIndex, startUs: s.startUs, durationUs: s.durationUs, numSeqs: s.numSeqs, numPrefillTokens: s.numPrefillTokens,
    numDecodeTokens: s.numDecodeTokens, contextTokens: s.contextTokens, numPreempted: s.numPreempted, numLoraLoads: s.numLoraLoads, kvBlocksUsed: s.kvBlocksUsed,
  }));
  expect(engineRows.length).toBe(simRows.length);
  for (let i = 0; i < simRows.length; i++) {
    if (JSON.stringify(engineRows[i]) !== JSON.stringify(simRows[i])) {
      expect.fail(`step ${i} differs:\n  sim    ${JSON.stringify(simRows[i])}\n  engine ${JSON.stringify(engineRows[i])}`);
    }
  }
  const simCsv = requestsCsv(sim.result.records, config.model);
  expect(engine.requestsCsv).toBe(simCsv);
  const strip = (s: Record<string, unknown>): Record<string, unknown> => {
    const { stratos_output, cost_model, label, engine: _e, ...rest } = s;
    return rest;
  };
  expect(strip(engine.summary)).toEqual(strip(sim.summary));
  return {
    numSteps: simRows.length,
    numPreemptions: sim.summary.preemptions as number,
    numRequests: sim.summary.requests as number,
    numRejected: sim.summary.rejected as number,
    numLoraLoads: engine.steps.reduce((a, s) => a + s.numLoraLoads, 0),
    costModel: (sim.summary.cost_model as { name: string }).name,
  };
}

describe('engine (fake runner + cost model) reproduces the simulator exactly', () => {
  it('continuous batching with KV pressure (preemptions), lazy simulation', async () => {
    const r = await compare({
      model: 'llama2-13b', gpu: 'a100-80gb', policy: 'continuous', seed: 3,
      kv: { numBlocks: 300, pageSizeTokens: 16 },
      workload: { rate: 12, durationS: 20, inputTokens: 'uniform:16:900', outputTokens: 'uniform:1:400' },
    });
    expect(r.numPreemptions).toBeGreaterThan(0);
    expect(r.numSteps).toBeGreaterThan(500);
  });

  it('chunked prefill, step-mode simulation, bursty Gamma arrivals', async () => {
    await compare({
      model: 'llama2-7b', gpu: 'h200', policy: 'chunked', mode: 'step', seed: 11,
      scheduler: { maxNumBatchedTokens: 512, maxNumSeqs: 64 },
      kv: { numBlocks: 400 },
      workload: { rate: 20, durationS: 10, arrival: 'gamma', cv: 3, inputTokens: 'lognormal:300:1:2000', outputTokens: 'uniform:1:200' },
    });
  });

  it('static batching with tenants, priorities and LoRA adapters (slot loads and evictions)', async () => {
    const r = await compare({
      model: 'llama2-13b', policy: 'static', seed: 5,
      lora: { numSlots: 2 },
      workload: {
        rate: 8, durationS: 15, inputTokens: 'uniform:8:300', outputTokens: 'uniform:1:120',
        tenants: [
          { name: 'a', weight: 2, priorityClass: 0, numAdapters: 3 },
          { name: 'b', weight: 1, priorityClass: 1, numAdapters: 0 },
        ],
      },
    });
    expect(r.numRequests).toBeGreaterThan(50);
    expect(r.numLoraLoads).toBeGreaterThan(3);
  });

  it('contiguous KV reserved at max length', async () => {
    await compare({
      model: 'llama2-7b', seed: 2, policy: 'continuous',
      scheduler: { maxSeqLenTokens: 1024, maxNumBatchedTokens: 2048 },
      kv: { allocator: 'contiguous', numBlocks: 320 },
      workload: { rate: 15, durationS: 8, inputTokens: 'uniform:1:900', outputTokens: 'uniform:1:400' },
    });
  });

  it('requests whose worst case exceeds the KV admission limit are rejected at the same boundary', async () => {
    const r = await compare({
      model: 'llama2-7b', seed: 8, policy: 'continuous',
      kv: { numBlocks: 40 },
      workload: { rate: 10, durationS: 6, inputTokens: 'uniform:1:700', outputTokens: 'uniform:1:200' },
    });
    expect(r.numRejected).toBeGreaterThan(0);
    expect(r.numPreemptions).toBeGreaterThan(0);
  });

  it('with the GPU power term on (a profile with a power section): decode runs at once vs step by step heat the GPU alike', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stratos-diff-power-'));
    const profile = join(dir, 'h200-power.json');
    const base = JSON.parse(readFileSync('calibration/profiles/h200.json', 'utf8')) as Record<string, unknown>;
    writeFileSync(profile, JSON.stringify({ ...base, power: { tauUs: 25_000, heat: [0, 0.3, 0.6, 0.9], speed: [0.86, 0.88, 0.97, 1], provenance: { source: 'test' } } }));
    const r = await compare({
      model: 'llama2-7b', gpu: 'h200', policy: 'continuous', seed: 4,
      cost: { profile },
      workload: { rate: 9, durationS: 15, inputTokens: 'uniform:16:2500', outputTokens: 'uniform:1:300' },
    });
    expect(r.numSteps).toBeGreaterThan(500);
    expect(r.costModel).toMatch(/\+power$/);
  });
});
