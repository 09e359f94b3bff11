import { z } from 'zod';
import { GPU_NAMES, MODEL_NAMES } from '../catalog.js';

// The `fleet` section of the config: pools of replicas per model tier, plans and tenants, the
// router, the LoRA registry, faults, the autoscaler and pricing. Absent = the one-pool fleet the
// top-level keys describe (round-robin, no router limits), which is exactly the old simulator.

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();
const nonNeg = z.number().nonnegative();

const pool = z.strictObject({
  /** The tier name tenants map to (e.g. "13b"). */
  name: z.string().min(1),
  model: z.enum(MODEL_NAMES as [string, ...string[]]),
  gpu: z.enum(GPU_NAMES as [string, ...string[]]).optional(),
  tp: posInt.default(1),
  /** N: replicas serving at the start. */
  replicas: posInt,
  /** k of N+k: warm spares that replace a failed replica after the failover delay. */
  spares: nonNegInt.default(0),
  /** Autoscaler bounds (default: replicas, i.e. fixed). */
  minReplicas: posInt.optional(),
  maxReplicas: posInt.optional(),
});

const rateLimit = z.strictObject({
  /** Sustained admitted requests per second. */
  ratePerS: z.number().positive(),
  /** Bucket size: requests admitted back to back from a full bucket. */
  burst: z.number().gte(1),
});

const plan = z.strictObject({
  /** premium is served first (priority class 0); standard is class 1 and ages up. */
  priority: z.enum(['premium', 'standard']).default('standard'),
  rateLimit: rateLimit.optional(),
  /** Requests in flight per tenant (router-wide); 0 = no cap. */
  maxConcurrent: nonNegInt.default(0),
  /** Whether SLA violations earn this plan's tenants a credit. */
  slaCredits: z.boolean().default(false),
});

const tenant = z.strictObject({
  name: z.string().min(1),
  plan: z.string().min(1),
  /** Pool (tier) name the tenant's requests go to. */
  tier: z.string().min(1),
  /** Relative share of requests. */
  weight: z.number().positive().default(1),
  rateLimit: rateLimit.optional(),
  maxConcurrent: nonNegInt.optional(),
  /** LoRA adapters this tenant owns (0 = base model). */
  numAdapters: nonNegInt.default(0),
  adapterRank: posInt.default(16),
  adapterZipfS: z.number().positive().default(1),
});

export const fleetSchema = z.strictObject({
  pools: z.array(pool).min(1),
  plans: z.record(z.string(), plan).default({ standard: { priority: 'standard', maxConcurrent: 0, slaCredits: false } }),
  tenants: z.array(tenant).min(1),
  /**
   * Tenant popularity inside each tier: `weights` uses the tenants' weights as given; `zipf` and
   * `servegen` keep each tier's total weight and spread it over its tenants (in listed order) by
   * Zipf(s) or by the largest client shares of a ServeGen pool.
   */
  popularity: z
    .discriminatedUnion('source', [
      z.strictObject({ source: z.literal('weights') }),
      z.strictObject({ source: z.literal('zipf'), s: z.number().positive().default(1) }),
      z.strictObject({ source: z.literal('servegen'), file: z.string().min(1), pool: z.string().min(1).default('language/m-large') }),
    ])
    .default({ source: 'weights' }),
  /** Explicit adapters (added to each tenant's `numAdapters` generated ones). */
  adapters: z.array(z.strictObject({ name: z.string().min(1), tenant: z.string().min(1), rank: posInt.default(16) })).default([]),
  router: z
    .strictObject({
      policy: z.enum(['round-robin', 'jsq', 'least-kv', 'affinity']).default('round-robin'),
      /** Replicas sampled per decision for jsq / least-kv (power of d choices); pool size = exact. */
      choices: posInt.default(2),
      /** Hard input-length limit enforced at the router (case study: 4096). */
      maxInputTokens: posInt.default(4096),
    })
    .prefault({}),
  lora: z
    .strictObject({
      /** Where a missing adapter is loaded from: pinned host memory (PCIe) or local disk (NVMe). */
      source: z.enum(['host', 'disk']).default('host'),
      diskBytesPerS: z.number().positive().default(3e9),
    })
    .prefault({}),
  faults: z
    .strictObject({
      /** Mean time between failures per replica (exponential); absent = no random failures. */
      mtbfHours: z.number().positive().optional(),
      mttrMinutes: z.number().positive().default(60),
      schedule: z.array(z.strictObject({ pool: z.string().min(1), replica: nonNegInt, atS: nonNeg, downS: z.number().positive() })).default([]),
      /** Time for the router to notice a failure and fail over (case study: < 30 s). */
      failoverDelayS: nonNeg.default(30),
      /** Re-dispatches of a request caught on a failed replica before it fails for good. */
      maxRetries: nonNegInt.default(1),
    })
    .prefault({}),
  autoscaler: z
    .strictObject({
      enabled: z.boolean().default(false),
      intervalS: z.number().positive().default(60),
      provisionS: nonNeg.default(300),
      /** Scale up when waiting requests per replica exceed this, or the SLA violation rate does. */
      queuePerReplicaHigh: nonNeg.default(4),
      slaViolationHigh: z.number().gte(0).lte(1).default(0.05),
      /** Scale down when waiting per replica is below this and mean batch occupancy is low. */
      queuePerReplicaLow: nonNeg.default(0.5),
      /** Scale down only when the pool's requests in system per replica are below this. */
      inSystemPerReplicaLow: nonNeg.default(8),
    })
    .prefault({}),
  pricing: z
    .strictObject({
      /**
       * $/GPU-hour by GPU type. Defaults: the middle of each GPU's hyperscaler on-demand range in
       * May 2026 (Mercatus, "Cloud GPU pricing", mercatus-ai.com/blog/cloud-gpu-pricing: A100 80GB
       * $1.50-3.00, H100 SXM $3.50-5.00, H200 SXM $4.50-7.00; specialty clouds ask 25-50% less).
       * A list price, not a fleet's contract: set your own.
       */
      gpuHourUsd: z.record(z.string(), nonNeg).default({ 'a100-80gb': 2.25, h100: 4.25, h200: 5.75 }),
      /** Revenue per million tokens by tier (pool name), output and input. */
      outputUsdPerMTokens: z.record(z.string(), nonNeg).default({}),
      inputUsdPerMTokens: z.record(z.string(), nonNeg).default({}),
      /** Credit owed per (tenant with credits, SLA window) whose p99 TTFT or TPOT missed. */
      slaCreditUsdPerWindow: nonNeg.default(0),
      /** Window over which SLA credits are judged. */
      creditWindowS: z.number().positive().default(3600),
      hoursPerMonth: z.number().positive().default(730),
    })
    .prefault({}),
});

export type FleetConfig = z.output<typeof fleetSchema>;
export type PoolConfig = FleetConfig['pools'][number];
export type TenantConfig = FleetConfig['tenants'][number];

/** A fleet config whose parts do not refer to each other correctly (each message names the key). */
export class FleetConfigError extends Error {
  readonly code = 'config' as const;
}

/**
 * Cross-references zod cannot check: unknown tiers and plans, duplicate names, bounds that cross.
 * Returns every problem, each naming the key, the value and what is allowed.
 */
export function fleetCrossErrors(f: FleetConfig, maxSeqLenTokens: number, defaultGpu: string): string[] {
  const errors: string[] = [];
  const poolNames = f.pools.map((p) => p.name);
  const seenPools = new Set<string>();
  f.pools.forEach((p, i) => {
    if (seenPools.has(p.name)) errors.push(`fleet.pools.${i}.name = "${p.name}": duplicate pool name`);
    seenPools.add(p.name);
    const min = p.minReplicas ?? p.replicas;
    const max = p.maxReplicas ?? p.replicas;
    if (min > p.replicas || max < p.replicas) errors.push(`fleet.pools.${i}: minReplicas ${min} <= replicas ${p.replicas} <= maxReplicas ${max} must hold`);
  });
  const seenTenants = new Set<string>();
  f.tenants.forEach((t, i) => {
    if (seenTenants.has(t.name)) errors.push(`fleet.tenants.${i}.name = "${t.name}": duplicate tenant name`);
    seenTenants.add(t.name);
    if (!seenPools.has(t.tier)) errors.push(`fleet.tenants.${i}.tier = "${t.tier}": unknown tier; allowed: ${poolNames.join(', ')}`);
    if (f.plans[t.plan] === undefined) errors.push(`fleet.tenants.${i}.plan = "${t.plan}": unknown plan; allowed: ${Object.keys(f.plans).join(', ')}`);
  });
  const seenAdapters = new Set<string>();
  f.adapters.forEach((a, i) => {
    if (!seenTenants.has(a.tenant)) errors.push(`fleet.adapters.${i}.tenant = "${a.tenant}": adapter ${a.name} names no known tenant; every adapter belongs to a tenant`);
    if (seenAdapters.has(a.name)) errors.push(`fleet.adapters.${i}.name = "${a.name}": duplicate adapter name`);
    seenAdapters.add(a.name);
  });
  f.faults.schedule.forEach((s, i) => {
    const p = f.pools.find((q) => q.name === s.pool);
    if (p === undefined) errors.push(`fleet.faults.schedule.${i}.pool = "${s.pool}": unknown pool; allowed: ${poolNames.join(', ')}`);
    else if (s.replica >= p.replicas) errors.push(`fleet.faults.schedule.${i}.replica = ${s.replica}: pool ${p.name} has replicas 0..${p.replicas - 1}`);
  });
  // A pool on a GPU without a price would cost nothing and inflate the margin silently.
  f.pools.forEach((p, i) => {
    const gpu = p.gpu ?? defaultGpu;
    if (f.pricing.gpuHourUsd[gpu] === undefined) {
      errors.push(`fleet.pricing.gpuHourUsd: no price for ${gpu} (fleet.pools.${i}, ${p.name}, runs on it); priced: ${Object.keys(f.pricing.gpuHourUsd).join(', ') || 'none'}`);
    }
  });
  for (const key of ['outputUsdPerMTokens', 'inputUsdPerMTokens'] as const) {
    for (const tier of Object.keys(f.pricing[key])) if (!seenPools.has(tier)) errors.push(`fleet.pricing.${key}.${tier}: unknown tier; allowed: ${poolNames.join(', ')}`);
  }
  if (f.router.maxInputTokens > maxSeqLenTokens) {
    errors.push(`fleet.router.maxInputTokens = ${f.router.maxInputTokens}: must not exceed scheduler.maxSeqLenTokens = ${maxSeqLenTokens}`);
  }
  return errors;
}
