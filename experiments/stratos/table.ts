// The case study's before/after table, every number read from the two simulated summaries, and the
// places where the case study's own figures disagree with each other or with the simulation.
import { GPUS, kvBytesPerToken, kvCapacity, MODELS, numParams } from '../../sim/catalog.js';
import { ASSUMED, CASE, peakRatePerS, poolCuts, sliceScale } from './scenario.js';

type Summary = Record<string, any>;

export interface Row {
  readonly metric: string;
  readonly caseBefore: string;
  readonly caseAfter: string;
  readonly before: number;
  readonly after: number;
  readonly digits: number;
}

/** Monthly figures of the whole fleet: a slice's GPU cost scales by GPUs, each tier's revenue by its traffic cut; credits are per tenant and do not. */
export function monthly(s: Summary, slice: number): { gpuCostUsd: number; revenueUsd: number; creditsUsd: number; margin: number } {
  const m = s.cost.monthly;
  const scale = sliceScale(slice);
  const gpuCostUsd = m.gpu_cost_usd * scale.gpus;
  // Each tier's traffic was cut by its own pool's cut: scale its revenue back by that cut.
  const cut = poolCuts(slice);
  const demandMonthFactor = s.cost.revenue_usd > 0 ? m.revenue_usd / s.cost.revenue_usd : 0;
  let revenueUsd = 0;
  for (const [tier, p] of Object.entries<any>(s.pools)) revenueUsd += (p.revenue_usd / (cut[tier] ?? 1)) * demandMonthFactor;
  const creditsUsd = m.sla_credits_usd;
  return { gpuCostUsd, revenueUsd, creditsUsd, margin: (revenueUsd - gpuCostUsd - creditsUsd) / revenueUsd };
}

export function tableRows(before: Summary, after: Summary, slice: number): Row[] {
  const b13 = before.pools['13b'];
  const a13 = after.pools['13b'];
  const mb = monthly(before, slice);
  const ma = monthly(after, slice);
  return [
    { metric: 'Concurrent requests/GPU (13B, peak)', caseBefore: '20', caseAfter: '60+', before: b13.peak.concurrent_requests_per_gpu, after: a13.peak.concurrent_requests_per_gpu, digits: 1 },
    { metric: 'Tokens/s/GPU (13B, peak, output)', caseBefore: '340', caseAfter: '1,200+', before: b13.peak.output_tokens_per_s_per_gpu, after: a13.peak.output_tokens_per_s_per_gpu, digits: 0 },
    { metric: 'p99 TTFT (13B, peak) ms', caseBefore: '720', caseAfter: '< 400', before: b13.peak.ttft_ms.p99, after: a13.peak.ttft_ms.p99, digits: 0 },
    { metric: 'p99 ITL (13B, peak) ms', caseBefore: '62', caseAfter: `< ${CASE.itlMsP99After}`, before: b13.peak.itl_ms.p99, after: a13.peak.itl_ms.p99, digits: 1 },
    { metric: 'SLA violation rate (peak windows)', caseBefore: '12%', caseAfter: `< ${CASE.violatedWindowsAfter * 100}%`, before: before.sla_peak.violation_rate * 100, after: after.sla_peak.violation_rate * 100, digits: 1 },
    { metric: 'GPU $/M output tokens', caseBefore: '0.84', caseAfter: '0.24', before: before.cost.gpu_cost_usd_per_m_output_tokens, after: after.cost.gpu_cost_usd_per_m_output_tokens, digits: 2 },
    { metric: 'Monthly GPU cost, $M', caseBefore: '1.80', caseAfter: '0.78', before: mb.gpuCostUsd / 1e6, after: ma.gpuCostUsd / 1e6, digits: 2 },
    { metric: 'Monthly revenue, $M (per-token prices)', caseBefore: '4.20', caseAfter: '4.20', before: mb.revenueUsd / 1e6, after: ma.revenueUsd / 1e6, digits: 2 },
    { metric: 'SLA credits, $K/month', caseBefore: '38', caseAfter: '< 3', before: mb.creditsUsd / 1e3, after: ma.creditsUsd / 1e3, digits: 1 },
    { metric: 'Gross margin on inference', caseBefore: '57%', caseAfter: '81%', before: mb.margin * 100, after: ma.margin * 100, digits: 1 },
  ];
}

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—';
}

export function renderTable(rows: readonly Row[]): string {
  const head = ['metric'.padEnd(38), 'case before'.padStart(12), 'sim before'.padStart(14), 'case after'.padStart(12), 'sim after'.padStart(14)].join('');
  const lines = [head, '-'.repeat(head.length)];
  for (const r of rows) lines.push([r.metric.padEnd(38), r.caseBefore.padStart(12), fmt(r.before, r.digits).padStart(14), r.caseAfter.padStart(12), fmt(r.after, r.digits).padStart(14)].join(''));
  return lines.join('\n');
}

/** Contradictions: each line computed here from the case study's figures or the simulation's. */
export function contradictions(before: Summary, after: Summary): string[] {
  const out: string[] = [];
  const gpuHourFromFleet = CASE.gpuCostUsdPerMonth / CASE.gpus / 730;
  const gpuHourFromPerToken = (0.84 * CASE.tokensPerSPerGpuBaseline * 3600) / 1e6;
  out.push(
    `$0.84 per million tokens at 340 tokens/s/GPU implies $${gpuHourFromPerToken.toFixed(2)}/GPU-hour, but $1.8M/month over 256 GPUs is $${gpuHourFromFleet.toFixed(2)}/GPU-hour ` +
      `(${(gpuHourFromFleet / gpuHourFromPerToken).toFixed(1)}x apart). The simulation prices GPUs at the fleet figure; at it, the baseline's simulated tokens cost $${fmt(before.cost.gpu_cost_usd_per_m_output_tokens, 2)}/M.`,
  );
  const m13 = MODELS['llama2-13b'];
  const kvReq = (kvBytesPerToken(m13, 'bf16') * CASE.contextLimitTokens) / 1e9;
  const weights = (numParams(m13) * 2) / 1e9;
  const fit = Math.floor((GPUS['a100-80gb'].memoryBytes / 1e9 - weights) / kvReq);
  const cap = kvCapacity({ shape: { model: m13, gpu: GPUS['a100-80gb'], tp: 1, weightDtype: 'bf16', kvDtype: 'bf16' }, gpuMemoryUtilization: 0.9, maxNumBatchedTokens: 8192, pageSizeTokens: 16 });
  out.push(
    `20 concurrent 13B requests per GPU at 4,096 reserved tokens: (80 GB − ${weights.toFixed(1)} GB weights) / ${kvReq.toFixed(2)} GB = ${fit} even at 100% of memory; ` +
      `the simulated engine (90% of memory, activations reserved) fits ${Math.floor(cap.numTokens / CASE.contextLimitTokens)} contiguous 4,096-token slots per 13B GPU.`,
  );
  const meanOut = CASE.outputMedianTokens * Math.exp((ASSUMED.outputSigma * ASSUMED.outputSigma) / 2);
  out.push(
    `The 79% waste figure divides the median (847) by 4,096; a log-normal with median 847 (σ ${ASSUMED.outputSigma}) has mean ${meanOut.toFixed(0)}, and a request's KV also holds its prompt, ` +
      `so the time-averaged waste is what matters: simulated baseline ${fmt((before.kv?.waste_mean ?? NaN) * 100, 1)}% of reserved KV slots hold no token.`,
  );
  out.push(
    'Section 2 computes the arithmetic intensity of a matrix–vector product as ≈ d = 2,560 FLOP/byte and calls decode compute-bound "in theory"; ' +
      'a bf16 matrix–vector product does 2d² FLOPs on 2d² bytes of weights, ≈ 1 FLOP/byte, far below the A100\'s ≈ 153 FLOP/byte: decode is memory-bound (as Section 1 says).',
  );
  out.push(
    `The cost table's "3.5x" throughput would cut a fixed workload's GPU bill from $1.8M to $${(1.8 / 3.5).toFixed(2)}M, not $0.78M; ` +
      `"12.7 million USD annualized exceeds the 47 million USD total capital raised" is false (12.7 < 47).`,
  );
  out.push(
    `Margins: (4.2 − 1.8 − 0.038) / 4.2 = ${(((4.2 - 1.8 - 0.038) / 4.2) * 100).toFixed(1)}% ≈ the stated 57%; after, (4.2 − 0.78 − 0.003) / 4.2 = ${(((4.2 - 0.78 - 0.003) / 4.2) * 100).toFixed(1)}% ≈ 81%: consistent only if revenue stays at $4.2M with the same traffic.`,
  );
  const econ = (after.tier_economics?.pairs ?? []) as { tier: string; vs: string; params_ratio: number; loss_ratio: number; loss_ratio_nominal_sizes: number; serving_cost_per_token_ratio: number }[];
  const e70 = econ.find((e) => e.tier === '70b');
  if (e70 !== undefined) {
    out.push(
      `70B vs 13B: the case study's loss ratio 0.880 uses nominal sizes (13/70)^0.076 = ${e70.loss_ratio_nominal_sizes}; with the models' real parameter counts it is ${e70.loss_ratio}. ` +
        `"5.4x more per token, adjusted for lower decode efficiency" is just the parameter ratio 70/13 = 5.38; the simulated GPU cost per output token of the 70B pool (TP 4) is ` +
        `${fmt(e70.serving_cost_per_token_ratio, 1)}x the 13B pool's in the optimized stack (at this scenario's loads, which are not capacity).`,
    );
  }
  const b13 = before.pools['13b'];
  out.push(
    `Demand: reading 340 tokens/s/GPU as what the fleet serves at peak gives ${peakRatePerS().toFixed(0)} requests/s fleet-wide at peak. The simulated baseline 13B pool serves ` +
      `${fmt(b13.peak.output_tokens_per_s_per_gpu, 0)} tokens/s/GPU at peak with p99 TTFT ${fmt(b13.peak.ttft_ms.p99 / 1000, 0)} s: static batching with contiguous 4,096-token ` +
      `reservations and CPU sampling cannot carry that load, so the case study's 720 ms p99 TTFT and 12% violated windows do not follow from its own stack and load.`,
  );
  out.push(itlAfterContradiction(after));
  const a13 = after.pools['13b'];
  out.push(
    `With the optimized stack on the same 256 GPUs the 13B pool runs at ${fmt(a13.peak.output_tokens_per_s_per_gpu, 0)} tokens/s/GPU: demand, not capacity, bounds it, so the case study's ` +
      `1,200+ tokens/s/GPU and $0.78M/month describe a smaller fleet for the same traffic; this run keeps all 256 GPUs (right-sizing is a capacity search, not run here).`,
  );
  return out;
}

/**
 * The optimized stack's p99 ITL and violated peak windows against the case study's, and their cause
 * as the simulation measures it: each pool's peak inter-token gaps split into interrupted ones (the
 * sequence sat out a step: under continuous batching without chunked prefill, a whole-prompt
 * prefill) and back-to-back ones (one decode step each). Every figure is read from `after`.
 */
export function itlAfterContradiction(after: Summary): string {
  const sla = after.sla_peak;
  const itlSlaMs: number = after.sla.thresholds.itl_ms_p99;
  const ttftSlaMs: number = after.sla.thresholds.ttft_ms_p99;
  const p13 = after.pools['13b'];
  const peak13 = p13.peak;
  const share = (peak: any): number => peak.itl_interrupted_ms.count / peak.itl_ms.count;
  // More than 1% of all gaps, and the p99 of all above the back-to-back gaps' own: the interrupted ones set it.
  const setP99 = (peak: any): boolean => share(peak) > 0.01 && peak.itl_ms.p99 > peak.itl_back_to_back_ms.p99;
  const side = (x: number, limit: number): string => (x > limit ? 'over' : 'under');
  const ms = (x: number): string => `${fmt(x, 1)} ms`;
  const pct = (x: number, digits = 1): string => `${fmt(x * 100, digits)}%`;
  const b2b13 = peak13.itl_back_to_back_ms.p99;
  const others = Object.entries<any>(after.pools)
    .filter(([tier]) => tier !== '13b')
    .map(([tier, p]) => `${tier.toUpperCase()} ${ms(p.peak.itl_ms.p99)}, ${pct(share(p.peak), 2)} interrupted, back-to-back p99 ${ms(p.peak.itl_back_to_back_ms.p99)} (${side(p.peak.itl_back_to_back_ms.p99, itlSlaMs)} the SLA)`);
  const preemptions = p13.preemptions === 0 ? 'no preemptions all day' : `${p13.preemptions.toLocaleString('en-US')} preemptions all day`;
  return (
    `The case study's optimized stack reaches p99 ITL < ${CASE.itlMsP99After} ms with < ${pct(CASE.violatedWindowsAfter, 0)} of peak windows violated; simulated, the 13B pool's peak p99 ITL is ${ms(peak13.itl_ms.p99)} ` +
    `and ${pct(sla.violation_rate)} of (pool, ${fmt(sla.window_s / 60, 0)}-minute window) pairs miss the SLA (p99 ITL ${itlSlaMs} ms or p99 TTFT ${ttftSlaMs} ms): ` +
    `${sla.pool_windows_violated_itl} of ${sla.pool_windows} by ITL, ${sla.pool_windows_violated_ttft} by TTFT. ` +
    `The cause, as simulated: continuous batching without chunked prefill runs an admitted prompt's whole prefill as a step of its own, and every running sequence waits for it. ` +
    `In the 13B pool ${pct(share(peak13), 2)} of peak inter-token gaps span such a wait ("interrupted"; median ${ms(peak13.itl_interrupted_ms.p50)}; ${preemptions})` +
    `${setP99(peak13) ? ', more than 1% of all, so they set the p99' : ''}; the back-to-back gaps alone, one decode step each, have median ${ms(peak13.itl_back_to_back_ms.p50)} ` +
    `and p99 ${ms(b2b13)}: ${side(b2b13, itlSlaMs)} the ${itlSlaMs} ms SLA, ${side(b2b13, CASE.itlMsP99After)} the ${CASE.itlMsP99After} ms target. ` +
    `Peak p99 ITL of the other pools: ${others.join('; ')}.`
  );
}
