import { numParams, MODELS } from '../catalog.js';
import type { RequestRecords } from '../metrics/records.js';
import { distributionMs, requestLatenciesUs, round3 } from '../metrics/summary.js';
import { WeightedSamples } from '../metrics/weighted-samples.js';
import type { SimulationResult } from '../simulation.js';

// summary.json's fleet sections: per pool (tier) latency, throughput and KV; tier economics;
// cost, revenue, SLA credits and margin; faults and router refusals. Computed from the records
// and the replicas' statistics, never copied from inputs.

/** Kaplan et al.'s parameter scaling exponent, as the case study uses it. */
export const SCALING_ALPHA = 0.076;

/** Loss of a model with `bigParams` relative to one with `smallParams`: (small / big)^α. */
export function lossRatio(smallParams: number, bigParams: number, alpha = SCALING_ALPHA): number {
  if (!(smallParams > 0) || !(bigParams > 0)) throw new RangeError(`lossRatio: parameter counts must be positive, got ${smallParams} and ${bigParams}`);
  return Math.pow(smallParams / bigParams, alpha);
}

export interface PeakWindow {
  readonly startUs: number;
  readonly endUs: number;
}

/** The first simulated day's peak window (from workload.diurnal), or the whole run. */
export function peakWindowOf(result: SimulationResult): PeakWindow {
  const d = result.config.workload.diurnal;
  if (d === undefined) return { startUs: 0, endUs: Math.max(1, result.endUs) };
  return { startUs: Math.round(d.startHour * 3600e6), endUs: Math.round(d.endHour * 3600e6) };
}

function overlapUs(a0: number, a1: number, b0: number, b1: number): number {
  return Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
}

/** What pools.<tier>.peak.itl_interrupted_ms counts (itl_back_to_back_ms: the other gaps of itl_ms). */
export const ITL_INTERRUPTED_DEFINITION =
  'inter-token gaps whose previous token came before the step that produced this one began: the sequence sat out at least one step (a whole-prompt prefill it had no part in, a preemption); itl_back_to_back_ms holds the others, one step each';

interface PoolAcc {
  requests: number;
  completed: number;
  rejected: number;
  aborted: number;
  failed: number;
  outputTokens: number;
  inputTokens: number;
  ttft: WeightedSamples;
  tpot: WeightedSamples;
  e2e: WeightedSamples;
  attained: number;
  peakTtft: WeightedSamples;
  /** Σ over requests of time in service (first scheduled to end) inside the peak window. */
  peakInServiceUs: number;
  /** Output tokens generated inside the peak window (spread evenly from first token to finish). */
  peakOutputTokens: number;
}

function newAcc(): PoolAcc {
  return { requests: 0, completed: 0, rejected: 0, aborted: 0, failed: 0, outputTokens: 0, inputTokens: 0, ttft: new WeightedSamples(), tpot: new WeightedSamples(), e2e: new WeightedSamples(), attained: 0, peakTtft: new WeightedSamples(), peakInServiceUs: 0, peakOutputTokens: 0 };
}

function poolOfRequest(result: SimulationResult, id: number): number {
  const f = result.fleet!;
  const p = f.requestPool[id];
  if (p !== undefined && p >= 0) return p;
  const slot = result.records.replica[id];
  return slot >= 0 ? f.slotPool[slot] : -1;
}

/**
 * SLA windows of a pool in [startUs, endUs): how many there are, how many missed p99 TTFT (by
 * arrival) or p99 ITL (by token time), and how many missed each (a window may miss both).
 */
function windowViolations(result: SimulationResult, pool: number, peak: PeakWindow): { windows: number; violated: number; violatedTtft: number; violatedItl: number } {
  const f = result.fleet!;
  const config = result.config;
  const windowUs = Math.round(config.sla.windowS * 1e6);
  const ttftByWindow = new Map<number, WeightedSamples>();
  const records = result.records;
  for (let id = 0; id < records.size; id++) {
    if (poolOfRequest(result, id) !== pool) continue;
    const a = records.arrivalUs[id];
    if (a < peak.startUs || a >= peak.endUs) continue;
    const w = Math.floor(a / windowUs);
    let s = ttftByWindow.get(w);
    if (s === undefined) ttftByWindow.set(w, (s = new WeightedSamples()));
    const lat = requestLatenciesUs(records, id);
    // A request that never got a first token (failed, refused) counts as a miss of its window.
    s.add(lat.ttftUs >= 0 ? lat.ttftUs : Number.MAX_SAFE_INTEGER);
  }
  const itlByWindow = new Map<number, WeightedSamples>();
  // The replicas of a pool share one window map (ReplicaStats.itlByWindow): merge each distinct map once.
  const windowMapsSeen = new Set<Map<number, WeightedSamples>>();
  for (const r of result.replicas) {
    if (f.slotPool[r.index] !== pool) continue;
    if (windowMapsSeen.has(r.stats.itlByWindow)) continue;
    windowMapsSeen.add(r.stats.itlByWindow);
    for (const [w, samples] of r.stats.itlByWindow) {
      if (w * windowUs < peak.startUs || w * windowUs >= peak.endUs) continue;
      let s = itlByWindow.get(w);
      if (s === undefined) itlByWindow.set(w, (s = new WeightedSamples()));
      s.addAll(samples);
    }
  }
  const first = Math.floor(peak.startUs / windowUs);
  const last = Math.ceil(peak.endUs / windowUs);
  let windows = 0;
  let violated = 0;
  let violatedTtft = 0;
  let violatedItl = 0;
  for (let w = first; w < last; w++) {
    const t = ttftByWindow.get(w);
    const i = itlByWindow.get(w);
    if (t === undefined && i === undefined) continue;
    windows++;
    const ttftMissed = (t === undefined ? 0 : t.percentiles([99])[0]) > config.sla.ttftMsP99 * 1000;
    const itlMissed = (i === undefined ? 0 : i.percentiles([99])[0]) > config.sla.itlMsP99 * 1000;
    if (ttftMissed || itlMissed) violated++;
    if (ttftMissed) violatedTtft++;
    if (itlMissed) violatedItl++;
  }
  return { windows, violated, violatedTtft, violatedItl };
}

/** Credits: (credit-eligible tenant, credit window) pairs whose p99 TTFT or p99 TPOT missed, or with a failed request. */
function slaCredits(result: SimulationResult): { violated_windows: number; eligible_windows: number } {
  const f = result.config.fleet!;
  const records = result.records;
  const eligible = new Set(f.tenants.filter((t) => f.plans[t.plan].slaCredits).map((t) => t.name));
  const windowUs = Math.round(f.pricing.creditWindowS * 1e6);
  const groups = new Map<string, { ttft: WeightedSamples; tpot: WeightedSamples; failed: boolean }>();
  for (let id = 0; id < records.size; id++) {
    const tenant = records.tenant[id];
    if (!eligible.has(tenant)) continue;
    const key = `${tenant}\u0000${Math.floor(records.arrivalUs[id] / windowUs)}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { ttft: new WeightedSamples(), tpot: new WeightedSamples(), failed: false }));
    const lat = requestLatenciesUs(records, id);
    if (lat.ttftUs >= 0) g.ttft.add(lat.ttftUs);
    if (lat.tpotUs >= 0) g.tpot.add(lat.tpotUs);
    if (records.status[id] === 'failed') g.failed = true;
  }
  let violated = 0;
  const c = result.config.sla;
  for (const g of groups.values()) {
    const ttft = g.ttft.size > 0 ? g.ttft.percentiles([99])[0] : 0;
    const tpot = g.tpot.size > 0 ? g.tpot.percentiles([99])[0] : 0;
    if (g.failed || ttft > c.ttftMsP99 * 1000 || tpot > c.itlMsP99 * 1000) violated++;
  }
  return { violated_windows: violated, eligible_windows: groups.size };
}

/**
 * summary.json of a fleet: buildSummary's keys (fleet-wide latency, SLA windows, tenants, Little's
 * law), with the single-pool keys replaced (model, tp, replicas, tiers, KV per replica) and the
 * fleet sections added.
 */
export function fleetSummary(result: SimulationResult, base: Record<string, unknown>): Record<string, unknown> {
  const sections = fleetSections(result);
  const pools = sections.pools as Record<string, Record<string, unknown>>;
  const baseKv = base.kv as Record<string, unknown>;
  return {
    ...base,
    model: 'fleet',
    tp: 'per pool',
    replicas: result.config.fleet!.pools.reduce((a, p) => a + p.replicas, 0),
    tiers: Object.fromEntries(
      Object.entries(pools).map(([name, p]) => [name, { model: p.model, requests: p.requests, completed: p.completed, ttft_ms: p.ttft_ms, itl_ms: p.itl_ms, sla_attainment: p.sla_attainment }]),
    ),
    kv: {
      page_size_tokens: baseKv.page_size_tokens,
      waste_mean: baseKv.waste_mean,
      waste_definition: baseKv.waste_definition,
      prefix_cache: baseKv.prefix_cache,
      utilization: 'per pool: pools.<tier>.kv_utilization_mean (pools differ in blocks per replica)',
    },
    ...sections,
  };
}

function fleetSections(result: SimulationResult): Record<string, unknown> {
  const f = result.fleet!;
  const fc = result.config.fleet!;
  const records: RequestRecords = result.records;
  const peak = peakWindowOf(result);
  const peakUs = peak.endUs - peak.startUs;
  const accs = f.pools.map(() => newAcc());
  const ttftLimitUs = result.config.sla.ttftMsP99 * 1000;
  const itlLimitUs = result.config.sla.itlMsP99 * 1000;
  for (let id = 0; id < records.size; id++) {
    const p = poolOfRequest(result, id);
    if (p < 0) continue;
    const g = accs[p];
    const status = records.status[id];
    g.requests++;
    if (status === 'completed') g.completed++;
    else if (status === 'rejected') g.rejected++;
    else if (status === 'aborted') g.aborted++;
    else if (status === 'failed') g.failed++;
    const lat = requestLatenciesUs(records, id);
    if (lat.ttftUs >= 0) g.ttft.add(lat.ttftUs);
    const arrival = records.arrivalUs[id];
    if (arrival >= peak.startUs && arrival < peak.endUs && lat.ttftUs >= 0) g.peakTtft.add(lat.ttftUs);
    const scheduled = records.firstScheduledUs[id];
    if (scheduled >= 0) g.peakInServiceUs += overlapUs(scheduled, records.finishUs[id], peak.startUs, peak.endUs);
    const done = records.outputTokensDone[id];
    const first = records.firstTokenUs[id];
    if (first >= 0 && done > 0) {
      const spanUs = records.finishUs[id] - first;
      g.peakOutputTokens += spanUs > 0 ? (done * overlapUs(first, records.finishUs[id], peak.startUs, peak.endUs)) / spanUs : first >= peak.startUs && first < peak.endUs ? done : 0;
    }
    if (status === 'completed') {
      g.outputTokens += done;
      g.inputTokens += records.inputTokens[id];
      g.e2e.add(lat.e2eUs);
      if (lat.tpotUs >= 0) g.tpot.add(lat.tpotUs);
      if (lat.ttftUs <= ttftLimitUs && (lat.tpotUs < 0 || lat.tpotUs <= itlLimitUs)) g.attained++;
    }
  }
  const durationUs = Math.max(1, result.endUs);
  const hours = durationUs / 3600e6;
  // GPUs are paid over the whole run (drain included); revenue and credits belong to the demand
  // period (the synthetic workload's duration, or the run for a trace).
  const demandHours = result.config.trace === undefined ? result.config.workload.durationS / 3600 : hours;
  const costMonthFactor = fc.pricing.hoursPerMonth / hours;
  const demandMonthFactor = fc.pricing.hoursPerMonth / demandHours;
  const windowUs = Math.round(result.config.sla.windowS * 1e6);
  let gpuCostUsd = 0;
  let revenueUsd = 0;
  let outputTokens = 0;
  let inputTokens = 0;
  let poolWindows = 0;
  let poolWindowsViolated = 0;
  let poolWindowsViolatedTtft = 0;
  let poolWindowsViolatedItl = 0;
  const pools: Record<string, unknown> = {};
  const costPerMTok: number[] = [];
  f.pools.forEach((pool, p) => {
    const g = accs[p];
    const itl = new WeightedSamples();
    const peakItl = new WeightedSamples();
    const peakInterruptedItl = new WeightedSamples();
    let kvBlockUs = 0;
    let batchSeqUs = 0;
    let busyUs = 0;
    let numPreemptions = 0;
    let numLoraLoads = 0;
    // The replicas of a pool share one window map (ReplicaStats.itlByWindow): merge each distinct map once.
    const windowMapsSeen = new Set<Map<number, WeightedSamples>>();
    for (const r of result.replicas) {
      if (f.slotPool[r.index] !== p) continue;
      if (!windowMapsSeen.has(r.stats.itlByWindow)) {
        windowMapsSeen.add(r.stats.itlByWindow);
        itl.addAll(r.stats.itl);
        for (const [w, s] of r.stats.itlByWindow) if (w * windowUs >= peak.startUs && w * windowUs < peak.endUs) peakItl.addAll(s);
        // Shared exactly as itlByWindow is: merged once with it.
        for (const [w, s] of r.stats.itlInterruptedByWindow) if (w * windowUs >= peak.startUs && w * windowUs < peak.endUs) peakInterruptedItl.addAll(s);
      }
      kvBlockUs += r.stats.kvBlockUs;
      batchSeqUs += r.stats.batchSeqUs;
      busyUs += r.stats.busyUs;
      numPreemptions += r.stats.numPreemptions;
      numLoraLoads += r.stats.numLoraLoads;
    }
    const gpuHours = pool.gpuUs / 3600e6;
    const price = fc.pricing.gpuHourUsd[pool.gpu];
    if (price === undefined) throw new Error(`pool ${pool.name}: no $/GPU-hour for ${pool.gpu} (the config check requires one)`);
    const cost = gpuHours * price;
    const revenue = (g.outputTokens * (fc.pricing.outputUsdPerMTokens[pool.name] ?? 0) + g.inputTokens * (fc.pricing.inputUsdPerMTokens[pool.name] ?? 0)) / 1e6;
    gpuCostUsd += cost;
    revenueUsd += revenue;
    outputTokens += g.outputTokens;
    inputTokens += g.inputTokens;
    const v = windowViolations(result, p, peak);
    poolWindows += v.windows;
    poolWindowsViolated += v.violated;
    poolWindowsViolatedTtft += v.violatedTtft;
    poolWindowsViolatedItl += v.violatedItl;
    // Every interrupted gap was also recorded among all gaps: the rest came one step after the last.
    const peakBackToBackItl = new WeightedSamples();
    peakBackToBackItl.addAll(peakItl);
    peakBackToBackItl.subtractAll(peakInterruptedItl);
    const replicaUs = pool.gpuUs / pool.tp;
    const numGpusProvisionedMean = pool.gpuUs / durationUs;
    const cpm = g.outputTokens > 0 ? (cost / g.outputTokens) * 1e6 : NaN;
    // GPUs serving (routed to) during the peak window, time-averaged: failures and the autoscaler move it.
    const peakServingGpus = Math.max(1e-9, pool.servingPeakGpuUs / Math.max(1, Math.min(peakUs, Math.max(0, durationUs - peak.startUs))));
    costPerMTok.push(cpm);
    const tenants = fc.tenants.filter((t) => t.tier === pool.name).map((t) => t.name);
    const adapters = f.registry.adaptersOf(tenants);
    pools[pool.name] = {
      model: pool.model,
      gpu: pool.gpu,
      tp: pool.tp,
      replicas_initial: fc.pools[p].replicas,
      spares: fc.pools[p].spares,
      replicas_peak: pool.peakUp,
      gpus_provisioned_mean: round3(numGpusProvisionedMean),
      gpu_hours: round3(gpuHours),
      failures: pool.numFailures,
      scale_ups: pool.numScaleUps,
      scale_downs: pool.numScaleDowns,
      requests: g.requests,
      completed: g.completed,
      rejected: g.rejected,
      aborted: g.aborted,
      failed: g.failed,
      output_tokens: g.outputTokens,
      input_tokens: g.inputTokens,
      ttft_ms: distributionMs(g.ttft),
      itl_ms: distributionMs(itl),
      tpot_ms: distributionMs(g.tpot),
      e2e_ms: distributionMs(g.e2e),
      sla_attainment: round3(g.requests > 0 ? g.attained / g.requests : 1),
      preemptions: numPreemptions,
      lora: { tenants: tenants.length, adapters: adapters.length, adapter_loads: numLoraLoads },
      kv_utilization_mean: round3(replicaUs > 0 ? kvBlockUs / (replicaUs * pool.kv.numBlocks) : 0),
      batch_size_mean_busy: round3(busyUs > 0 ? batchSeqUs / busyUs : 0),
      peak: {
        window_s: [round3(peak.startUs / 1e6), round3(peak.endUs / 1e6)],
        serving_gpus_mean: round3(peakServingGpus),
        concurrent_requests_per_gpu: round3(g.peakInServiceUs / peakUs / peakServingGpus),
        output_tokens_per_s_per_gpu: round3(g.peakOutputTokens / (peakUs / 1e6) / peakServingGpus),
        ttft_ms: distributionMs(g.peakTtft),
        itl_ms: distributionMs(peakItl),
        itl_back_to_back_ms: distributionMs(peakBackToBackItl),
        itl_interrupted_ms: distributionMs(peakInterruptedItl),
        itl_interrupted_definition: ITL_INTERRUPTED_DEFINITION,
        sla_windows: v.windows,
        sla_windows_violated: v.violated,
        sla_windows_violated_ttft: v.violatedTtft,
        sla_windows_violated_itl: v.violatedItl,
      },
      cost_usd: round3(cost),
      revenue_usd: round3(revenue),
      gpu_cost_usd_per_m_output_tokens: round3(cpm),
    };
  });
  // Tier economics: each tier against the next smaller one (by parameters).
  const order = f.pools.map((_, p) => p).sort((a, b) => numParams(MODELS[f.pools[a].model]) - numParams(MODELS[f.pools[b].model]));
  const economics: Record<string, unknown>[] = [];
  for (let k = 1; k < order.length; k++) {
    const small = f.pools[order[k - 1]];
    const big = f.pools[order[k]];
    const ns = numParams(MODELS[small.model]);
    const nb = numParams(MODELS[big.model]);
    economics.push({
      tier: big.name,
      vs: small.name,
      params_ratio: round3(nb / ns),
      loss_ratio: round3(lossRatio(ns, nb)),
      loss_ratio_nominal_sizes: round3(lossRatio(Number(/(\d+)b/.exec(small.model)![1]), Number(/(\d+)b/.exec(big.model)![1]))),
      serving_cost_per_token_ratio: round3(costPerMTok[order[k]] / costPerMTok[order[k - 1]]),
    });
  }
  const credits = slaCredits(result);
  const creditsUsd = credits.violated_windows * fc.pricing.slaCreditUsdPerWindow;
  const refusals: Record<string, number> = {};
  for (const [k, v] of [...f.routerRefusals.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) refusals[k] = v;
  return {
    stratos_output: 'simulate-fleet',
    pools,
    tier_economics: { alpha: SCALING_ALPHA, pairs: economics },
    router: { policy: fc.router.policy, max_input_tokens: fc.router.maxInputTokens, refusals },
    faults: { failures: f.pools.reduce((a, p) => a + p.numFailures, 0), retries: f.numRetries, failed_requests: f.numFailedRequests, failover_delay_s: fc.faults.failoverDelayS },
    lora_registry: { adapters: f.registry.numAdapters(), source: fc.lora.source },
    cost: {
      simulated_hours: round3(hours),
      gpu_hours: round3(f.pools.reduce((a, p) => a + p.gpuUs, 0) / 3600e6),
      gpu_cost_usd: round3(gpuCostUsd),
      output_tokens: outputTokens,
      input_tokens: inputTokens,
      gpu_cost_usd_per_m_output_tokens: round3(outputTokens > 0 ? (gpuCostUsd / outputTokens) * 1e6 : NaN),
      gpu_cost_usd_per_m_total_tokens: round3(outputTokens + inputTokens > 0 ? (gpuCostUsd / (outputTokens + inputTokens)) * 1e6 : NaN),
      revenue_usd: round3(revenueUsd),
      sla_credit_windows: credits.violated_windows,
      sla_credit_windows_eligible: credits.eligible_windows,
      sla_credits_usd: round3(creditsUsd),
      monthly: {
        hours_per_month: fc.pricing.hoursPerMonth,
        gpu_cost_usd: round3(gpuCostUsd * costMonthFactor),
        revenue_usd: round3(revenueUsd * demandMonthFactor),
        sla_credits_usd: round3(creditsUsd * demandMonthFactor),
      },
      gross_margin: round3(revenueUsd > 0 ? (revenueUsd * demandMonthFactor - gpuCostUsd * costMonthFactor - creditsUsd * demandMonthFactor) / (revenueUsd * demandMonthFactor) : NaN),
      gross_margin_definition: '(revenue − GPU cost − SLA credits) / revenue, per month (GPU cost over the run, revenue and credits over the demand period)',
    },
    sla_peak: {
      window_s: result.config.sla.windowS,
      pool_windows: poolWindows,
      pool_windows_violated: poolWindowsViolated,
      pool_windows_violated_ttft: poolWindowsViolatedTtft,
      pool_windows_violated_itl: poolWindowsViolatedItl,
      violation_rate: round3(poolWindows > 0 ? poolWindowsViolated / poolWindows : 0),
      definition: '(pool, SLA window) pairs in the peak hours whose p99 TTFT (requests arriving in it) or p99 ITL (tokens in it) missed the thresholds',
    },
  };
}
