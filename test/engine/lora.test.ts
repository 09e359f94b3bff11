// Multi-tenant LoRA in the engine: PEFT folders, sha256 versions, GPU slots driven by the policy's
// LoRA cache, and mixed adapters in one batch through the multi-LoRA kernels (CPU references here).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runEngineBench } from '../../experiments/commands/engine.js';
import { createScheduler, DEFAULT_SCHEDULER_CONFIG, type SchedulerConfig } from '../../engine/policy/index.js';
import { VirtualClock } from '../../engine/runtime/clock.js';
import { Engine, syntheticPrompt, type EngineRequest } from '../../engine/runtime/engine.js';
import type { ForwardSeq } from '../../engine/runtime/llama.js';
import { adapterContentSha256, LORA_MODULES, LoraError, mergedWeight, moduleDims, modulePath, pairKey, randomAdapter, type LoraAdapter } from '../../engine/runtime/lora/adapter.js';
import { PEFT_WEIGHTS_FILE, peftKey, readPeftFolder, writePeftFolder } from '../../engine/runtime/lora/peft.js';
import { LoraRegistry } from '../../engine/runtime/lora/registry.js';
import { MODEL_CONFIGS } from '../../engine/runtime/model-config.js';
import { LlamaRunner } from '../../engine/runtime/model-runner.js';
import { readSafetensorsHeader } from '../../engine/runtime/safetensors.js';
import { layerName, randomWeights, type ModelWeights } from '../../engine/runtime/weights.js';
import { parseSimConfig } from '../../sim/config.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'stratos-lora-'));
  dirs.push(d);
  return d;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const TINY = MODEL_CONFIGS.tiny;
const base = randomWeights(TINY, 5);
const PAGE = 8;

/** The base weights with the adapter merged into every target: W + scale · B · A. */
function merged(w: ModelWeights, adapter: LoraAdapter): ModelWeights {
  return {
    ...w,
    source: `${w.source}+${adapter.name}`,
    recipe: () => null,
    tensor(name, dtype) {
      for (let l = 0; l < w.config.numLayers; l++) {
        for (const m of adapter.targets) {
          if (name !== layerName(l, modulePath(m))) continue;
          const { inDim, outDim } = moduleDims(w.config, m);
          const f = mergedWeight(w.tensor(name, 'f32') as Float32Array, adapter.pairs.get(pairKey(l, m))!, adapter.rank, inDim, outDim, adapter.scale);
          if (dtype !== 'f32') throw new Error('merged weights are f32 here');
          return f;
        }
      }
      return w.tensor(name, dtype);
    },
  };
}

function loraRunner(registry: LoraRegistry, numSlots = 4, maxRank = 16): LlamaRunner {
  return new LlamaRunner(base, {
    backend: 'cpu', dtype: 'f32', kv: { numBlocks: 64, pageSizeTokens: PAGE }, maxNumBatchedTokens: 256, maxNumSeqs: 8,
    lora: { registry, numSlots, maxRank, targets: LORA_MODULES },
  });
}

function plainRunner(w: ModelWeights): LlamaRunner {
  return new LlamaRunner(w, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 64, pageSizeTokens: PAGE }, maxNumBatchedTokens: 256, maxNumSeqs: 8 });
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbsValue(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/** Prompt logits then one decode step's logits of one sequence in blocks [first, first + 6). */
function promptAndDecode(runner: LlamaRunner, prompt: Int32Array, slot: number, first: number): Float32Array[] {
  const table = Array.from({ length: 6 }, (_, i) => first + i);
  const a = runner.forwardLogits([{ tokenIds: prompt, contextTokens: 0, blockTable: table, samples: true, adapterSlot: slot }]);
  const b = runner.forwardLogits([{ tokenIds: Int32Array.of(7), contextTokens: prompt.length, blockTable: table, samples: true, adapterSlot: slot }]);
  return [a, b];
}

const attn = randomAdapter(TINY, { name: 't1/lora-0', seed: 1, rank: 16 });
const full = randomAdapter(TINY, { name: 't2/lora-0', seed: 2, rank: 8, targets: LORA_MODULES });

describe('a LoRA\'d forward equals the base model with the adapter merged (W + scale·B·A)', () => {
  const prompt = syntheticPrompt(3, 0, 21, TINY.vocabSize);
  for (const adapter of [attn, full]) {
    it(`${adapter.name}: rank ${adapter.rank} on ${adapter.targets.join(', ')}, prefill and a paged decode`, () => {
      const registry = new LoraRegistry(TINY);
      const runner = loraRunner(registry);
      runner.lora!.load(2, adapter);
      const ours = promptAndDecode(runner, prompt, 2, 0);
      const ref = promptAndDecode(plainRunner(merged(base, adapter)), prompt, -1, 0);
      const plain = promptAndDecode(plainRunner(base), prompt, -1, 0);
      for (let i = 0; i < 2; i++) {
        const scale = maxAbsValue(ref[i]);
        expect(maxAbs(ours[i], ref[i]) / scale).toBeLessThan(2e-5);
        // The adapter matters: without it the logits differ far beyond that tolerance.
        expect(maxAbs(plain[i], ref[i]) / scale).toBeGreaterThan(1e-2);
      }
    });
  }
});

describe('mixed adapters in one batch', () => {
  it('equal running each sequence alone (two adapters and the base model, prefill and decode rows)', () => {
    const registry = new LoraRegistry(TINY);
    const batch = loraRunner(registry);
    batch.lora!.load(0, attn);
    batch.lora!.load(3, full);
    const prompts = [0, 1, 2, 3].map((i) => syntheticPrompt(4, i, 9 + 5 * i, TINY.vocabSize));
    const slots = [3, -1, 0, 3];
    const tables = prompts.map((_, i) => Array.from({ length: 6 }, (_, j) => i * 6 + j));
    // Step 1: four prefills in one forward. Step 2: three decodes and a new prompt chunk.
    const step1: ForwardSeq[] = prompts.map((p, i) => ({ tokenIds: p, contextTokens: 0, blockTable: tables[i], samples: true, adapterSlot: slots[i] }));
    const step2: ForwardSeq[] = prompts.map((p, i) => ({ tokenIds: i === 1 ? Int32Array.of(3, 4, 5) : Int32Array.of(11 + i), contextTokens: p.length, blockTable: tables[i], samples: true, adapterSlot: slots[i] }));
    const V = TINY.vocabSize;
    const together = [batch.forwardLogits(step1), batch.forwardLogits(step2)];
    prompts.forEach((_, i) => {
      const alone = loraRunner(registry);
      alone.lora!.load(0, attn);
      alone.lora!.load(3, full);
      const a1 = alone.forwardLogits([step1[i]]);
      const a2 = alone.forwardLogits([step2[i]]);
      expect(maxAbs(together[0].subarray(i * V, (i + 1) * V), a1), `seq ${i} prefill`).toBe(0);
      expect(maxAbs(together[1].subarray(i * V, (i + 1) * V), a2), `seq ${i} step 2`).toBe(0);
    });
  });
});

describe('PEFT folders and sha256 versions', () => {
  it('round-trips an adapter through a PEFT folder with PEFT\'s key names', () => {
    const dir = tmp();
    writePeftFolder(dir, full, 'bf16');
    const { tensors } = readSafetensorsHeader(join(dir, PEFT_WEIGHTS_FILE));
    expect(tensors.get('base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight')!.shape).toEqual([8, TINY.hiddenSize]);
    expect(tensors.get('base_model.model.model.layers.0.mlp.down_proj.lora_B.weight')!.shape).toEqual([TINY.hiddenSize, 8]);
    expect(tensors.size).toBe(TINY.numLayers * LORA_MODULES.length * 2);
    const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: [...LORA_MODULES] });
    const back = readPeftFolder(dir, full.name, TINY);
    expect(back.scale).toBe(2);
    // Random adapters are bf16-exact, so bf16 files hold them exactly.
    expect(adapterContentSha256(back)).toBe(adapterContentSha256(full));
    expect(peftKey(3, 'o_proj', 'B')).toBe('base_model.model.model.layers.3.self_attn.o_proj.lora_B.weight');
  });

  it('a folder changed after registration is a LoraError naming the adapter at load, never a silent reload', () => {
    const dir = tmp();
    writePeftFolder(dir, attn, 'f32');
    const registry = new LoraRegistry(TINY);
    const registered = registry.register('acme/support', 'acme', { kind: 'peft', dir });
    expect(registered.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(adapterContentSha256(registry.load('acme/support'))).toBe(adapterContentSha256(attn));
    writePeftFolder(dir, randomAdapter(TINY, { name: 'other', seed: 9, rank: 16 }), 'f32');
    let error: unknown;
    try {
      registry.load('acme/support');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LoraError);
    expect(error).toMatchObject({ code: 'lora_version', adapter: 'acme/support' });
    expect((error as Error).message).toMatch(/acme\/support.*sha256 mismatch/);
  });

  it('an expected sha256 that does not match is refused at registration; unknown adapters and other tenants are refused', () => {
    const dir = tmp();
    writePeftFolder(dir, attn, 'bf16');
    const registry = new LoraRegistry(TINY);
    expect(() => registry.register('a/x', 'a', { kind: 'peft', dir }, '0'.repeat(64))).toThrow(expect.objectContaining({ code: 'lora_version', adapter: 'a/x' }));
    registry.register('a/x', 'a', { kind: 'peft', dir });
    expect(() => registry.checkTenant('a/x', 'b')).toThrow(expect.objectContaining({ code: 'lora_tenant' }));
    expect(() => registry.load('nope')).toThrow(expect.objectContaining({ code: 'lora_unknown', adapter: 'nope' }));
  });

  it('a malformed folder names the adapter and the problem', () => {
    const dir = tmp();
    writePeftFolder(dir, attn, 'bf16');
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, r: 8 }));
    expect(() => readPeftFolder(dir, 'x/y', TINY)).toThrow(/LoRA adapter x\/y: .*q_proj\.lora_A\.weight has shape \[16,256\].*\[8,256\]/);
  });

  it('random adapters are deterministic per (seed, name)', () => {
    expect(adapterContentSha256(randomAdapter(TINY, { name: 'a', seed: 1, rank: 8 }))).toBe(adapterContentSha256(randomAdapter(TINY, { name: 'a', seed: 1, rank: 8 })));
    expect(adapterContentSha256(randomAdapter(TINY, { name: 'a', seed: 1, rank: 8 }))).not.toBe(adapterContentSha256(randomAdapter(TINY, { name: 'b', seed: 1, rank: 8 })));
  });
});

describe('slots follow the policy\'s LoRA cache', () => {
  const adapters = ['a/lora-0', 'a/lora-1', 'b/lora-0'];
  const registry = new LoraRegistry(TINY);
  adapters.forEach((name, i) => registry.register(name, name.split('/')[0], { kind: 'random', spec: { name, seed: 4, rank: 8 + 8 * (i % 2) } }));
  const requests: EngineRequest[] = Array.from({ length: 9 }, (_, id) => ({
    id, tenant: adapters[id % 3].split('/')[0], adapter: id % 4 === 3 ? null : adapters[id % 3], priorityClass: 0, arrivalUs: id * 1000, promptTokens: 5 + id, maxOutputTokens: 3 + (id % 3),
  }));
  const run = async (numSlots: number) => {
    const runner = loraRunner(registry, numSlots);
    const config: SchedulerConfig = {
      ...DEFAULT_SCHEDULER_CONFIG, policy: 'continuous', maxNumSeqs: 4, maxNumBatchedTokens: 64, maxSeqLenTokens: 64, watermarkFraction: 0,
      kv: { ...DEFAULT_SCHEDULER_CONFIG.kv, numBlocks: 64, pageSizeTokens: PAGE, prefixCaching: false }, lora: { numSlots, eviction: 'lru' },
    };
    const scheduler = createScheduler(config);
    let loads = 0;
    let evictions = 0;
    const engine = new Engine({
      scheduler, runner, clock: new VirtualClock(), seed: 1, maxSteps: 1000,
      observer: {
        onStep: (r) => {
          loads += r.plan.loraLoads.length;
          evictions += r.plan.loraEvictions.length;
          // After every step the runner's slots hold exactly what the policy's cache says.
          for (const name of scheduler.lora.residentAdapters()) expect(runner.lora!.resident[scheduler.lora.slotOf(name)]).toBe(name);
          for (const load of r.plan.loraLoads) expect(runner.lora!.resident[load.slot]).toBe(load.adapter);
        },
      },
    });
    let i = 0;
    const { outputs } = await engine.run({ next: () => (i < requests.length ? requests[i++] : null) });
    return { outputs, loads, evictions, slotLoads: runner.lora!.numLoads };
  };

  it('loads and evictions happen where the plan says, and slot churn never changes the tokens', async () => {
    const tight = await run(1);
    const roomy = await run(4);
    expect(tight.evictions).toBeGreaterThan(0);
    expect(tight.slotLoads).toBe(tight.loads);
    expect(roomy.evictions).toBe(0);
    expect(roomy.loads).toBe(3);
    expect(tight.outputs).toEqual(roomy.outputs);
  });
});

describe('engine bench with tenants and adapters', () => {
  const workload = { rate: 30, durationS: 0.3, inputTokens: 'uniform:4:24', outputTokens: 'uniform:2:6', tenants: [{ name: 'acme', numAdapters: 2 }, { name: 'base', numAdapters: 0 }, { name: 'zeta', numAdapters: 1 }] };
  it('random adapters of lora.rank by default; the same adapters as PEFT folders (--adapters) give the same tokens', async () => {
    const config = parseSimConfig({ seed: 3, lora: { rank: 8, numSlots: 2 }, kv: { numBlocks: 128, pageSizeTokens: 8 }, workload });
    const random = await runEngineBench(config, { backend: 'cpu', model: 'tiny', dtype: 'f32' });
    const lora = (random.summary.engine as { lora: { adapters: { name: string; sha256: string }[]; slot_loads: number; lora_steps: number } }).lora;
    expect(lora.adapters.map((a) => a.name)).toEqual(['acme/lora-0', 'acme/lora-1', 'zeta/lora-0']);
    expect(lora.slot_loads).toBeGreaterThan(0);
    expect(lora.lora_steps).toBeGreaterThan(0);
    const root = tmp();
    for (const a of lora.adapters) writePeftFolder(join(root, a.name), randomAdapter(TINY, { name: a.name, seed: 3, rank: 8 }), 'bf16');
    const peft = await runEngineBench(config, { backend: 'cpu', model: 'tiny', dtype: 'f32', adaptersDir: root });
    expect(peft.outputs).toEqual(random.outputs);
    const plain = await runEngineBench(parseSimConfig({ ...config, workload: { ...workload, tenants: undefined } }), { backend: 'cpu', model: 'tiny', dtype: 'f32' });
    expect(plain.outputs).not.toEqual(random.outputs);
  });
});

describe('f32ArrayToBf16', () => {
  it('equals native f32ToBf16 on every value, ties, infinities and NaN included', async () => {
    const { f32ArrayToBf16 } = await import('../../engine/runtime/lora/slots.js');
    const { f32ToBf16 } = await import('../../native/index.js');
    const bits = new Uint32Array(20000);
    for (let i = 0; i < bits.length; i++) bits[i] = Math.imul(i + 1, 0x9e3779b1) >>> 0;
    bits.set([0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0x3f808000, 0x3f818000, 0x7f7fffff], 0);
    const x = new Float32Array(bits.buffer);
    const got = f32ArrayToBf16(x);
    for (let i = 0; i < x.length; i++) expect(got[i], `bits ${bits[i].toString(16)}`).toBe(f32ToBf16(x[i]));
    // Into a view of a larger buffer (the slots stage an adapter into one host buffer).
    const host = new Uint16Array(x.length + 8);
    expect(f32ArrayToBf16(x, host.subarray(4, 4 + x.length))).toEqual(got);
    expect([...host.subarray(0, 4), ...host.subarray(4 + x.length)]).toEqual(new Array(8).fill(0));
    expect(() => f32ArrayToBf16(x, new Uint16Array(3))).toThrow(/20000 values into 3/);
  });
});
