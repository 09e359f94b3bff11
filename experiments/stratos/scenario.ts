// The case study (seed 003) as a fleet config: 256 A100-80GB, 120 tenants, 7B/13B/70B pools with
// 60% of requests on 13B, a day with a 9:00–17:00 peak. Two stacks over the same traffic:
//   baseline:  contiguous KV reserved at 4096 tokens, CPU sampling, static batching;
//   optimized: paged KV, GPU sampling, continuous batching, multi-tenant LoRA (many slots).
// Every input below is either a figure of the case study or an assumption stated next to it; the
// results are computed by the simulation (see experiments/stratos/README.md for the derivations).
import type { SimConfigInput } from '../../sim/config.js';

export type Stack = 'baseline' | 'optimized';

/** Case-study figures the scenario is built from (seed 003, sections 1, 2 and 4). */
export const CASE = {
  gpus: 256,
  tenants: 120,
  /** Baseline tokens/s/GPU (section 2 table): read as what the fleet serves at peak, i.e. peak demand. */
  tokensPerSPerGpuBaseline: 340,
  outputMedianTokens: 847,
  contextLimitTokens: 4096,
  shareOf13b: 0.6,
  ttftMsP99: 500,
  itlMsP99: 50,
  /** The optimized stack's claimed p99 ITL (ms) and share of peak windows violated (section 4's table). */
  itlMsP99After: 35,
  violatedWindowsAfter: 0.01,
  mrrUsd: 4.2e6,
  gpuCostUsdPerMonth: 1.8e6,
  slaCreditsUsdPerMonth: 38_000,
  peakStartHour: 9,
  peakEndHour: 17,
  cpuSamplingMsPerToken: [2, 8] as const,
} as const;

/** Assumptions the case study leaves open (each is stated in the printed report). */
export const ASSUMED = {
  /** Request shares of the other tiers (the case study gives only 13B's 60%). */
  shareOf7b: 0.3,
  shareOf70b: 0.1,
  /** Off-peak demand as a fraction of peak. */
  offPeakFactor: 0.35,
  /** Log-normal spread of output lengths (the notebook's TODO 4 uses σ = 0.6). */
  outputSigma: 0.6,
  /** Prompt lengths: log-normal, median 600, σ 0.7 (the case study gives none). */
  inputMedianTokens: 600,
  inputSigma: 0.7,
  /** CPU sampling cost: the midpoint of 2–8 ms is 5 ms; the low end (2 ms) is used, favouring the baseline. */
  cpuSamplingUsPerToken: 2000,
  /** Tenants with plan premium (SLA credits, priority), one in three. */
  premiumEvery: 3,
  /** Share of tenants with fine-tuned adapters, and ranks. */
  adapterTenantEvery: 2,
} as const;

/** Scale a pool down only while it holds fewer requests than this per replica (continuous batching runs ~40-60 per 13B replica at the SLA). */
export const AUTOSCALE_IN_SYSTEM_LOW = 12;

/** Pools of the full fleet: N + 2 per pool (the case study's redundancy), 256 GPUs in all. */
export const FULL_POOLS = [
  { name: '7b', model: 'llama2-7b', tp: 1, replicas: 30, spares: 2 },
  { name: '13b', model: 'llama2-13b', tp: 1, replicas: 118, spares: 2 },
  { name: '70b', model: 'llama2-70b', tp: 4, replicas: 24, spares: 2 },
] as const;

/** Mean of a log-normal length law capped at `max` (numerically, a fixed grid: deterministic). */
export function cappedLognormalMean(median: number, sigma: number, max: number): number {
  // E[min(X, max)] by integrating over z ~ N(0, 1) on a fine grid.
  let sum = 0;
  let weight = 0;
  for (let i = -4000; i <= 4000; i++) {
    const z = i / 500;
    const w = Math.exp(-0.5 * z * z);
    sum += w * Math.min(max, median * Math.exp(sigma * z));
    weight += w;
  }
  return sum / weight;
}

export interface ScenarioOptions {
  readonly stack: Stack;
  /** Simulate 1/slice of the fleet and its traffic (every pool and rate divided); 1 = the whole fleet. */
  readonly slice: number;
  readonly durationS: number;
  readonly seed: number;
  /** Tenant popularity within each tier: Zipf(1) (default) or the ServeGen m-large client shares in this file. */
  readonly servegenFile?: string;
  /** Optimized stack only: let the autoscaler resize each pool between 1 replica and its full size. */
  readonly autoscale?: boolean;
  /** The step cost model: the A100 calibration profile, or the analytic roofline (default: profile). */
  readonly costModel?: 'profile' | 'roofline';
}

/** Zipf(1) shares over n tenants (ServeGen's tenant skew is of this kind: top 10 of 162 send 63%). */
function zipfShares(n: number): number[] {
  const w = Array.from({ length: n }, (_, k) => 1 / (k + 1));
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / total);
}

/** Mean output length: the log-normal capped at what the context leaves after a median prompt. */
function meanOutputTokens(): number {
  return cappedLognormalMean(CASE.outputMedianTokens, ASSUMED.outputSigma, CASE.contextLimitTokens - ASSUMED.inputMedianTokens);
}

/** Peak request rate of the whole fleet: 340 tokens/s/GPU × 256 GPUs of output over the mean output length. */
export function peakRatePerS(): number {
  return (CASE.tokensPerSPerGpuBaseline * CASE.gpus) / meanOutputTokens();
}

/** Each tier's request share, tenants and parameters (billions; token prices are proportional to them). */
const TIERS = [
  { tier: '7b', share: ASSUMED.shareOf7b, count: 36, params: 7 },
  { tier: '13b', share: CASE.shareOf13b, count: 72, params: 13 },
  { tier: '70b', share: ASSUMED.shareOf70b, count: 12, params: 70 },
] as const;

/** The share of the full fleet's requests a 1/slice fleet gets: each tier's share cut by its pool's cut. */
function trafficShare(slice: number): number {
  const cut = poolCuts(slice);
  return TIERS.reduce((a, t) => a + t.share * cut[t.tier], 0);
}

/** The config of one stack. Prices are set so the demand's expected tokens bring in the case study's MRR. */
export function scenarioConfig(o: ScenarioOptions): SimConfigInput {
  const slice = o.slice;
  const pools = slicedPools(slice).map((p) => (o.stack === 'optimized' && o.autoscale === true ? { ...p, minReplicas: 1 } : p));
  const tenants: NonNullable<SimConfigInput['fleet']>['tenants'] = [];
  // Each tier's traffic is cut by exactly its pool's cut (serving replicas), so per-GPU load is the full fleet's.
  const cut = poolCuts(slice);
  const totalShare = trafficShare(slice);
  const peakRate = peakRatePerS() * totalShare;
  for (const t of TIERS) {
    const shares = zipfShares(t.count);
    shares.forEach((s, k) => {
      const i = tenants.length;
      const weight = (t.share * cut[t.tier] * s) / totalShare;
      const premium = i % ASSUMED.premiumEvery === 0;
      tenants.push({
        name: `t${String(i).padStart(3, '0')}-${t.tier}`,
        plan: premium ? 'premium' : 'standard',
        tier: t.tier,
        weight,
        // Rate limit: 3× the tenant's mean peak rate, burst of 30 s of it (binding only in bursts).
        rateLimit: { ratePerS: Math.max(0.05, 3 * weight * peakRate), burst: Math.max(5, 30 * weight * peakRate) },
        numAdapters: i % ASSUMED.adapterTenantEvery === 0 ? 1 + (k % 3) : 0,
        adapterRank: [8, 16, 32][k % 3],
      });
    });
  }
  // Prices: tier prices proportional to parameters (7 : 13 : 70), scaled so the expected output
  // tokens of a month of this demand earn the case study's MRR. Input tokens are not billed.
  const meanOutput = meanOutputTokens();
  const peakHours = CASE.peakEndHour - CASE.peakStartHour;
  const dailyRequests = peakRatePerS() * 3600 * (peakHours + (24 - peakHours) * ASSUMED.offPeakFactor);
  const weightedParams = TIERS.reduce((a, t) => a + t.share * t.params, 0);
  const monthlyOutputTokens = dailyRequests * meanOutput * (730 / 24);
  const usdPerMPerParam = CASE.mrrUsd / (monthlyOutputTokens / 1e6) / weightedParams;
  const price: Record<string, number> = {};
  for (const t of TIERS) price[t.tier] = Math.round(usdPerMPerParam * t.params * 1000) / 1000;
  const baseline = o.stack === 'baseline';
  return {
    gpu: 'a100-80gb',
    policy: baseline ? 'static' : 'continuous',
    seed: o.seed,
    scheduler: { maxNumSeqs: 256, maxSeqLenTokens: CASE.contextLimitTokens, agingS: 2 },
    kv: { allocator: baseline ? 'contiguous' : 'paged', pageSizeTokens: 16, prefixCaching: !baseline },
    cost: { model: o.costModel ?? 'profile', sampling: baseline ? 'cpu' : 'gpu', cpuSamplingUsPerToken: ASSUMED.cpuSamplingUsPerToken },
    // Baseline: one adapter resident per replica (a switch waits for the adapter's requests to drain);
    // optimized: 16 slots shared by every tenant's adapters.
    lora: { numSlots: baseline ? 1 : 16, eviction: 'lru' },
    sla: { ttftMsP99: CASE.ttftMsP99, itlMsP99: CASE.itlMsP99, windowS: 300 },
    workload: {
      rate: peakRate,
      durationS: o.durationS,
      arrival: 'poisson',
      inputTokens: `lognormal:${ASSUMED.inputMedianTokens}:${ASSUMED.inputSigma}`,
      outputTokens: `lognormal:${CASE.outputMedianTokens}:${ASSUMED.outputSigma}`,
      diurnal: { startHour: CASE.peakStartHour, endHour: CASE.peakEndHour, offPeakFactor: ASSUMED.offPeakFactor },
    },
    fleet: {
      pools,
      plans: {
        premium: { priority: 'premium', maxConcurrent: 0, slaCredits: true },
        standard: { priority: 'standard', maxConcurrent: 0, slaCredits: false },
      },
      tenants,
      ...(o.servegenFile !== undefined ? { popularity: { source: 'servegen' as const, file: o.servegenFile, pool: 'language/m-large' } } : {}),
      router: { policy: 'jsq', choices: 2, maxInputTokens: CASE.contextLimitTokens },
      lora: { source: 'host' },
      // With `autoscale` (optimized only), the autoscaler (queue depth, SLA violation rate, 5-minute
      // provisioning) may shrink each pool to 1 replica and grow it back to its full size.
      ...(baseline || o.autoscale !== true
        ? {}
        : {
            autoscaler: {
              enabled: true,
              intervalS: 60,
              provisionS: 300,
              queuePerReplicaHigh: 1,
              slaViolationHigh: 0.02,
              queuePerReplicaLow: 0.2,
              inSystemPerReplicaLow: AUTOSCALE_IN_SYSTEM_LOW,
            },
          }),
      faults: { mtbfHours: 2000, mttrMinutes: 120, failoverDelayS: 30, maxRetries: 1 },
      pricing: {
        // The case study's own rate: $1.8M/month over 256 GPUs and 730 h.
        gpuHourUsd: { 'a100-80gb': round3(CASE.gpuCostUsdPerMonth / CASE.gpus / 730) },
        outputUsdPerMTokens: price,
        slaCreditUsdPerWindow: slaCreditUsdPerWindow(),
        creditWindowS: 3600,
      },
    },
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * $ per violated (premium tenant, hour) window, from the case study: $38K/month of credits at 12% of
 * peak-hour windows violated, over the premium tenants' peak hours in a month.
 */
export function slaCreditUsdPerWindow(): number {
  const premiumTenants = Math.ceil(CASE.tenants / ASSUMED.premiumEvery);
  const peakWindowsPerMonth = (CASE.peakEndHour - CASE.peakStartHour) * (730 / 24);
  return round3(CASE.slaCreditsUsdPerMonth / (0.12 * premiumTenants * peakWindowsPerMonth));
}

/** Pools of a 1/slice fleet: serving replicas rounded (at least 1); spares rounded, at least 0. */
export function slicedPools(slice: number): { name: string; model: string; tp: number; replicas: number; spares: number }[] {
  return FULL_POOLS.map((p) => ({ name: p.name, model: p.model, tp: p.tp, replicas: Math.max(1, Math.round(p.replicas / slice)), spares: Math.round(p.spares / slice) }));
}

/** Simulated / full serving replicas per pool. */
export function poolCuts(slice: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of slicedPools(slice)) out[p.name] = p.replicas / FULL_POOLS.find((f) => f.name === p.name)!.replicas;
  return out;
}

/** How to scale a slice's totals to the whole fleet: GPU cost by GPUs, revenue by traffic. */
export function sliceScale(slice: number): { gpus: number; traffic: number } {
  const sliced = slicedPools(slice).reduce((a, p) => a + (p.replicas + p.spares) * p.tp, 0);
  return { gpus: CASE.gpus / sliced, traffic: 1 / trafficShare(slice) };
}
