import { z } from 'zod';
import { GPU_NAMES, KV_DTYPES, MODEL_NAMES, WEIGHT_DTYPES } from './catalog.js';
import { fleetCrossErrors, fleetSchema } from './fleet/schema.js';
import { KV_CACHE_MODES } from './cost/no-kv-cache.js';
import { ROW_BUCKETS, SAMPLING_METHODS } from './cost/profile-model.js';
import { parseLengthLaw } from './workload/lengths.js';

// The `simulate` configuration: one schema for JSON/YAML files and CLI flags (flags override the
// file). Unknown keys are errors, and every error names the key, the value and what is allowed.

const lengthLaw = z.string().superRefine((text, ctx) => {
  try {
    parseLengthLaw(text, 'law');
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message.slice(`law = ${text}: `.length) });
  }
});

const posInt = z.number().int().positive();
const fraction = z.number().gt(0).lte(1);

const tenant = z.strictObject({
  name: z.string().min(1),
  weight: z.number().positive().default(1),
  priorityClass: z.number().int().nonnegative().default(0),
  numAdapters: z.number().int().nonnegative().default(0),
  adapterZipfS: z.number().positive().default(1),
});

export const simConfigSchema = z.strictObject({
  model: z.enum(MODEL_NAMES as [string, ...string[]]).default('llama2-13b'),
  gpu: z.enum(GPU_NAMES as [string, ...string[]]).default('a100-80gb'),
  tp: posInt.default(1),
  weightDtype: z.enum(WEIGHT_DTYPES as [string, ...string[]]).default('bf16'),
  kvDtype: z.enum(KV_DTYPES as [string, ...string[]]).default('bf16'),
  replicas: posInt.default(1),
  policy: z.enum(['static', 'continuous', 'chunked']).default('continuous'),
  /** lazy = multi-step fast path; step = every step through the event queue (same results, slower). */
  mode: z.enum(['lazy', 'step']).default('lazy'),
  seed: z.number().int().default(1),
  scheduler: z
    .strictObject({
      maxNumSeqs: posInt.default(256),
      maxNumBatchedTokens: posInt.default(8192),
      maxSeqLenTokens: posInt.default(4096),
      kvAdmitFraction: fraction.default(0.9),
      watermarkFraction: z.number().gte(0).lt(1).default(0.01),
      agingS: z.number().positive().default(2),
      defaultTenantCap: z.number().int().nonnegative().default(0),
      tenantCaps: z.record(z.string(), posInt).default({}),
    })
    .prefault({}),
  kv: z
    .strictObject({
      allocator: z.enum(['paged', 'contiguous']).default('paged'),
      pageSizeTokens: posInt.default(16),
      prefixCaching: z.boolean().default(true),
      gpuMemoryUtilization: fraction.default(0.9),
      /** Overrides the derived capacity (tests, what-ifs). */
      numBlocks: posInt.optional(),
      /**
       * keep: K/V of past tokens stay in the cache and a decode step feeds one token. none: the
       * naive engine (notebook TODO 1) keeps nothing between steps and every decode step runs the
       * model over the sequence's whole context again (priced by sim/cost/no-kv-cache.ts). Memory
       * model of none: no KV is held between steps; the allocator still reserves each running
       * sequence's blocks, so both modes admit the same batches and differ in step time only, and
       * the summary's kv figures are what a cache would hold, not what the naive engine holds.
       */
      cache: z.enum(KV_CACHE_MODES).default('keep'),
    })
    .prefault({}),
  lora: z
    .strictObject({
      numSlots: z.number().int().nonnegative().default(8),
      eviction: z.enum(['lru', 'lfu']).default('lru'),
      rank: posInt.default(16),
    })
    .prefault({}),
  cost: z
    .strictObject({
      /** profile: the GPU's calibration profile (calibration/profiles/<gpu>.json); roofline: the analytic, uncalibrated model. */
      model: z.enum(['profile', 'roofline']).default('profile'),
      /** A profile file instead of calibration/profiles/<gpu>.json. */
      profile: z.string().min(1).optional(),
      /** The GPU sampler's method the profile prices. */
      samplingMethod: z.enum(SAMPLING_METHODS).default('topp'),
      /** Roofline only: achieved fractions of the GPU's peaks. */
      memoryEfficiency: fraction.default(0.8),
      gemmEfficiency: fraction.default(0.7),
      attentionEfficiency: fraction.default(0.5),
      hostOverheadUs: z.number().nonnegative().default(1500),
      /** Host time per sequence in a step on top of hostOverheadUs, µs (fitted on our engine by stratos validate). */
      hostOverheadPerSeqUs: z.number().nonnegative().default(0),
      /** Profile model: how the engine pads a step's token rows (pow2: our engine's GEMM buckets). */
      rowBuckets: z.enum(ROW_BUCKETS).default('none'),
      /** Profile model: device time per forward no kernel measurement covers (launch gaps), µs. */
      forwardOverheadUs: z.number().nonnegative().default(0),
      /** Profile model: device time per sampled row beyond the LM head and sampler, µs (fitted on the engine). */
      sampledRowOverheadUs: z.number().nonnegative().default(0),
      /** Profile model: q, k, v as one fused GEMM (vLLM; default) or three (our engine). */
      qkvFused: z.boolean().default(true),
      /**
       * Profile model: profile (default) prices the GPU's power management with the profile's power
       * section when it has one (prefill steps run faster on a cool GPU, sim/cost/power.ts); off prices every step at the profile's clock.
       */
      power: z.enum(['profile', 'off']).default('profile'),
      sampling: z.enum(['gpu', 'cpu']).default('gpu'),
      /** Host sampling per token when sampling = cpu; unset: the profile's measured host sampler (roofline: 2,000 µs). */
      cpuSamplingUsPerToken: z.number().nonnegative().optional(),
    })
    .prefault({}),
  workload: z
    .strictObject({
      rate: z.number().positive().default(10),
      durationS: z.number().positive().default(60),
      arrival: z.enum(['poisson', 'gamma']).default('poisson'),
      /** Coefficient of variation of inter-arrival gaps for `gamma` (> 1 is burstier than Poisson). */
      cv: z.number().positive().default(2),
      inputTokens: lengthLaw.default('constant:512'),
      outputTokens: lengthLaw.default('uniform:100:500'),
      tenants: z.array(tenant).min(1).optional(),
      /** A day's shape: `rate` between startHour and endHour of each simulated day, rate × offPeakFactor otherwise. */
      diurnal: z
        .strictObject({
          startHour: z.number().gte(0).lt(24).default(9),
          endHour: z.number().gt(0).lte(24).default(17),
          offPeakFactor: z.number().gte(0).lte(1).default(0.35),
        })
        .optional(),
    })
    .prefault({}),
  trace: z
    .strictObject({
      file: z.string().min(1),
      format: z.enum(['azure', 'mooncake']),
      rateScale: z.number().positive().default(1),
      startS: z.number().nonnegative().optional(),
      endS: z.number().positive().optional(),
    })
    .optional(),
  sla: z
    .strictObject({
      ttftMsP99: z.number().positive().default(500),
      itlMsP99: z.number().positive().default(50),
      windowS: z.number().positive().default(60),
    })
    .prefault({}),
  /** Pools per model tier, plans and tenants, router, LoRA registry, faults, autoscaler, pricing. */
  fleet: fleetSchema.optional(),
});

export type SimConfig = z.output<typeof simConfigSchema>;
export type SimConfigInput = z.input<typeof simConfigSchema>;

export class ConfigError extends Error {
  readonly code = 'config' as const;
}

/** Validates a raw config (file contents merged with flags); throws ConfigError listing every problem. */
export function parseSimConfig(raw: unknown, source = 'config'): SimConfig {
  const result = simConfigSchema.safeParse(raw);
  if (result.success) {
    const config = result.data;
    const errors: string[] = [];
    if (config.fleet !== undefined) {
      errors.push(...fleetCrossErrors(config.fleet, config.scheduler.maxSeqLenTokens, config.gpu));
      if (config.workload.tenants !== undefined) errors.push('workload.tenants: with fleet, tenants are fleet.tenants; remove workload.tenants');
    }
    if (config.kv.cache === 'none') {
      if (config.kv.prefixCaching) errors.push('kv.prefixCaching = true: with kv.cache = none there is no cache to share prefixes from; set kv.prefixCaching: false');
      if (config.policy === 'chunked') errors.push('policy = chunked: a prefill chunk attends to the earlier chunks\' cached K/V, which kv.cache = none does not keep; allowed: static, continuous');
    }
    const sc = config.scheduler;
    if (sc.maxNumSeqs > sc.maxNumBatchedTokens) {
      errors.push(`scheduler.maxNumSeqs = ${sc.maxNumSeqs}: must not exceed scheduler.maxNumBatchedTokens = ${sc.maxNumBatchedTokens} (every sequence in a step computes at least one token); lower maxNumSeqs or raise the budget`);
    }
    const d = config.workload.diurnal;
    if (d !== undefined && d.startHour >= d.endHour) errors.push(`workload.diurnal.startHour = ${d.startHour}: must be before endHour = ${d.endHour}`);
    if (errors.length > 0) throw new ConfigError(`invalid ${source}:\n  ${errors.join('\n  ')}`);
    return config;
  }
  const lines = result.error.issues.map((issue) => {
    const key = issue.path.join('.') || '(root)';
    const value = valueAt(raw, issue.path as (string | number)[]);
    let allowed = issue.message;
    if (issue.code === 'invalid_value' && 'values' in issue) allowed = `allowed: ${(issue.values as unknown[]).join(', ')}`;
    if (issue.code === 'unrecognized_keys') {
      return `${key === '(root)' ? '' : key + '.'}${issue.keys.join(', ')}: unknown key; allowed keys: ${allowedKeys(issue.path as (string | number)[]).join(', ')}`;
    }
    return `${key} = ${JSON.stringify(value)}: ${allowed}`;
  });
  throw new ConfigError(`invalid ${source}:\n  ${lines.join('\n  ')}`);
}

function valueAt(raw: unknown, path: (string | number)[]): unknown {
  let v: unknown = raw;
  for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[p] : undefined;
  return v;
}

function allowedKeys(path: (string | number)[]): string[] {
  // Walk the schema's shape along the path (objects only) to list the keys it accepts.
  let schema: z.ZodType = simConfigSchema;
  for (const p of path) {
    schema = unwrap(schema);
    if (schema instanceof z.ZodObject) schema = schema.shape[p as string];
    else if (schema instanceof z.ZodArray) schema = schema.element as z.ZodType;
  }
  schema = unwrap(schema);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function unwrap(schema: z.ZodType): z.ZodType {
  for (let i = 0; i < 8; i++) {
    const def = (schema as unknown as { def: { innerType?: z.ZodType } }).def;
    if (def.innerType === undefined) return schema;
    schema = def.innerType;
  }
  return schema;
}
