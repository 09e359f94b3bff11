import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSimConfig, type SimConfigInput } from '../../sim/config.js';
import { runConfig } from '../../sim/run.js';
import { tracesDir } from './helpers.js';

function run(input: SimConfigInput, steps = false): { dir: string; summary: Record<string, any> } {
  const dir = mkdtempSync(join(tmpdir(), 'stratos-sim-'));
  const { summary } = runConfig(parseSimConfig(input), { outDir: dir, writeSteps: steps });
  return { dir, summary };
}

const read = (dir: string, f: string): string => readFileSync(join(dir, f), 'utf8');

// Small but busy: KV is cut down so preemption and prefix reuse happen.
const scenarios: Record<string, SimConfigInput> = {
  static: { policy: 'static', scheduler: { maxNumSeqs: 8 }, workload: { rate: 10, durationS: 20 } },
  continuous: { policy: 'continuous', kv: { numBlocks: 600 }, workload: { rate: 8, durationS: 20, inputTokens: 'uniform:50:800' } },
  chunked: {
    policy: 'chunked',
    kv: { numBlocks: 700, pageSizeTokens: 8 },
    workload: {
      rate: 6,
      durationS: 20,
      arrival: 'gamma',
      cv: 3,
      outputTokens: 'lognormal:200:0.8:1500',
      tenants: [
        { name: 'gold', weight: 1, priorityClass: 0, numAdapters: 4 },
        { name: 'bronze', weight: 2, priorityClass: 2, numAdapters: 20, adapterZipfS: 1.1 },
      ],
    },
    lora: { numSlots: 3 },
    scheduler: { agingS: 0.5, maxNumBatchedTokens: 512 },
  },
};

describe('simulate', () => {
  for (const [name, input] of Object.entries(scenarios)) {
    it(`${name}: lazy and step-by-step runs write byte-identical files`, () => {
      const lazy = run({ ...input, mode: 'lazy' }, true);
      const step = run({ ...input, mode: 'step' }, true);
      for (const f of ['summary.json', 'requests.csv', 'steps.csv']) expect(read(lazy.dir, f)).toEqual(read(step.dir, f));
      expect(lazy.summary.concurrency.steps).toBeGreaterThan(100);
    });

    it(`${name}: conservation and Little's law`, () => {
      const { summary: s, dir } = run(input);
      expect(s.requests).toBeGreaterThan(50);
      expect(s.completed + s.rejected + s.aborted + s.failed).toBe(s.requests);
      expect(s.unfinished).toBe(0);
      expect(s.littles_law.relative_error).toBeLessThan(0.01);
      const rows = read(dir, 'requests.csv').trimEnd().split('\n');
      expect(rows[0].startsWith('request_id,tenant,model,adapter,arrival_s,first_token_s,finish_s,input_tokens,output_tokens,ttft_ms,tpot_ms,e2e_ms,queue_ms,preemptions,status,reason')).toBe(true);
      expect(rows.length - 1).toBe(s.requests);
    });
  }

  it('exercises preemption, LoRA and aging in the busy scenarios', () => {
    expect(run(scenarios.continuous).summary.preemptions).toBeGreaterThan(0);
    const chunked = run(scenarios.chunked).summary;
    expect(Object.keys(chunked.tenants)).toEqual(['bronze', 'gold']);
  });

  it('same seed gives identical bytes; another seed changes them', () => {
    const a = run({ ...scenarios.continuous, seed: 3 });
    const b = run({ ...scenarios.continuous, seed: 3 });
    const c = run({ ...scenarios.continuous, seed: 4 });
    expect(read(a.dir, 'requests.csv')).toEqual(read(b.dir, 'requests.csv'));
    expect(read(a.dir, 'summary.json')).toEqual(read(b.dir, 'summary.json'));
    expect(read(a.dir, 'requests.csv')).not.toEqual(read(c.dir, 'requests.csv'));
  });

  it('labels outputs with the GPU\'s calibration profile by default, and the roofline as uncalibrated', () => {
    expect(run({ gpu: 'a100-80gb', workload: { durationS: 2 } }).summary.cost_model).toEqual({ name: 'profile:a100-80gb-derived-from-h200-2026-11-22', calibration: 'calibrated' });
    expect(run({ gpu: 'h200', workload: { durationS: 2 } }).summary.cost_model).toEqual({ name: 'profile:h200-2026-11-22+power', calibration: 'calibrated' });
    expect(run({ cost: { model: 'roofline' }, workload: { durationS: 2 } }).summary.cost_model).toEqual({ name: 'roofline-analytic', calibration: 'uncalibrated' });
  });

  it('names a missing profile file and what to use instead', () => {
    expect(() => run({ cost: { profile: '/nonexistent/p.json' }, workload: { durationS: 2 } })).toThrow(/nonexistent\/p\.json/);
  });
});

describe('config errors', () => {
  it('names the key, the value and what is allowed', () => {
    expect(() => parseSimConfig({ policy: 'fifo' })).toThrow(/policy = "fifo": allowed: static, continuous, chunked/);
    expect(() => parseSimConfig({ kv: { pageSize: 16 } })).toThrow(/kv.pageSize: unknown key; allowed keys: allocator, pageSizeTokens/);
    expect(() => parseSimConfig({ workload: { outputTokens: 'zipf:3' } })).toThrow(/workload.outputTokens = "zipf:3": allowed laws/);
  });
  it('70B does not fit one 80 GB GPU but fits with tp 2', () => {
    expect(() => runConfig(parseSimConfig({ model: 'llama2-70b', workload: { durationS: 1 } }))).toThrow(/tp = 1: llama2-70b/);
    expect(runConfig(parseSimConfig({ model: 'llama2-70b', tp: 2, workload: { durationS: 5 } })).summary.completed).toBeGreaterThan(0);
  });
});

// Real traces live in ../shared/traces beside the repo; without them these tests are reported as skipped.
const traces = tracesDir();

describe('trace rows with nothing to do', () => {
  it('are rejected with their reason in requests.csv, never dropped', () => {
    const trace = join(mkdtempSync(join(tmpdir(), 'stratos-zero-')), 'zero.csv');
    writeFileSync(trace, 'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.0000000,0,44\n2023-11-16 18:15:46.5000000,300,0\n2023-11-16 18:15:47.0000000,300,20\n');
    const { dir, summary } = run({ trace: { file: trace, format: 'azure' } });
    const [header, ...lines] = read(dir, 'requests.csv').trim().split('\n');
    const col = (name: string): number => header.split(',').indexOf(name);
    const rows = lines.map((line) => { const f = line.split(','); return `${f[col('status')]},${f[col('reason')]}`; });
    expect(rows).toEqual(['rejected,empty_prompt', 'rejected,zero_output_tokens', 'completed,']);
    expect([summary.requests, summary.completed, summary.rejected]).toEqual([3, 1, 2]);
  });
});

describe.skipIf(traces === null)('azure conv replay', () => {
  it('every row becomes a request; conservation and Little hold', async () => {
    const dir = traces!;
    const { summary: s, dir: out } = run({ trace: { file: join(dir, 'azure-llm-2023/AzureLLMInferenceTrace_conv.csv'), format: 'azure' } });
    expect(s.requests).toBe(19366);
    expect(read(out, 'requests.csv').trimEnd().split('\n').length - 1).toBe(19366);
    expect(s.completed + s.rejected + s.aborted + s.failed).toBe(19366);
    expect(s.littles_law.relative_error).toBeLessThan(0.01);
  });
});

describe.skipIf(traces === null)('mooncake replay', () => {
  it('a 10-minute slice: every row in the slice becomes a request, and shared hash_ids hit the prefix cache', async () => {
    const dir = traces!;
    const file = join(dir, 'mooncake-fast25/conversation_trace.jsonl.gz');
    const { summary: s } = run({ gpu: 'h200', trace: { file, format: 'mooncake', startS: 0, endS: 600 } });
    // Count the slice's rows independently of the loader.
    const { gunzipSync } = await import('node:zlib');
    const { readFileSync } = await import('node:fs');
    const rows = gunzipSync(readFileSync(file)).toString('utf8').trimEnd().split('\n');
    const inSlice = rows.filter((line) => (JSON.parse(line) as { timestamp: number }).timestamp < 600_000).length;
    expect(inSlice).toBeGreaterThan(1000);
    expect(s.requests).toBe(inSlice);
    expect(s.completed + s.rejected + s.aborted + s.failed).toBe(inSlice);
    // Multi-turn conversations resend their history: a real share of prompt tokens is reused.
    expect(s.kv.prefix_cache.hit_rate).toBeGreaterThan(0.1);
  });
});
