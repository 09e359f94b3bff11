import type { SimulationResult } from '../simulation.js';
import type { RequestRecords } from './records.js';
import type { ReplicaStats } from './replica-stats.js';
import { SampleList } from './sample-list.js';
import { WeightedSamples } from './weighted-samples.js';

const PS = [50, 90, 95, 99] as const;

export interface Distribution {
  readonly count: number;
  readonly mean: number | null;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
}

/** Fixed rounding for every number in outputs (3 decimals: microseconds when in ms). */
export function round3(x: number): number | null {
  if (!Number.isFinite(x)) return null;
  const r = Math.round(x * 1000) / 1000;
  return r === 0 ? 0 : r; // no -0 in JSON
}

/** What a distribution is read from: WeightedSamples (weighted) or SampleList (one per request). */
export interface Samples {
  readonly size: number;
  mean(): number;
  percentiles(ps: readonly number[]): number[];
}

/** A distribution of microsecond samples reported in milliseconds. */
export function distributionMs(w: Samples): Distribution {
  const ps = w.percentiles(PS);
  return {
    count: w.size,
    mean: round3(w.mean() / 1000),
    p50: round3(ps[0] / 1000),
    p90: round3(ps[1] / 1000),
    p95: round3(ps[2] / 1000),
    p99: round3(ps[3] / 1000),
  };
}

/** TTFT, TPOT and E2E in microseconds (TPOT rounded to µs), -1 where undefined. */
export function requestLatenciesUs(records: RequestRecords, id: number): { ttftUs: number; tpotUs: number; e2eUs: number; queueUs: number } {
  const arrival = records.arrivalUs[id];
  const first = records.firstTokenUs[id];
  const finish = records.finishUs[id];
  const out = records.outputTokensDone[id];
  const completed = records.status[id] === 'completed';
  return {
    ttftUs: first >= 0 ? first - arrival : -1,
    tpotUs: completed && out > 1 ? Math.round((finish - first) / (out - 1)) : -1,
    e2eUs: completed ? finish - arrival : -1,
    queueUs: records.firstScheduledUs[id] >= 0 ? records.firstScheduledUs[id] - arrival : -1,
  };
}

interface Group {
  requests: number;
  completed: number;
  ttft: SampleList;
  tpot: SampleList;
  e2e: SampleList;
  queue: SampleList;
  /** Requests that met both per-request SLA conditions. */
  attained: number;
  outputTokens: number;
}

function newGroup(): Group {
  return { requests: 0, completed: 0, ttft: new SampleList(), tpot: new SampleList(), e2e: new SampleList(), queue: new SampleList(), attained: 0, outputTokens: 0 };
}

function sortedEntries<V>(m: Map<string, V> | Map<number, V>): [string | number, V][] {
  return [...(m as Map<string | number, V>).entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/**
 * summary.json. Definitions: percentiles are nearest-rank; ITL is every gap between consecutive
 * output tokens of a request (its first token is TTFT, not ITL); the SLA is met when p99 TTFT and
 * p99 ITL are within their thresholds; a request attains the SLA when it completed with TTFT and
 * TPOT within the thresholds; windows group requests by arrival time and ITL by token time.
 */
/**
 * What a summary is built from: a simulation's result, or the same facts from another runner (the
 * real engine fills records and replica stats and names its timing source as the cost model).
 */
export interface SummaryInput {
  readonly config: SimulationResult['config'];
  readonly records: SimulationResult['records'];
  readonly replicas: readonly { readonly stats: ReplicaStats }[];
  readonly costModel: { readonly name: string; readonly calibration: string };
  readonly kv: Pick<SimulationResult['kv'], 'numBlocks' | 'numTokens'>;
  readonly endUs: number;
}

export function buildSummary(result: SummaryInput): Record<string, unknown> {
  const { config, records, replicas, costModel, endUs } = result;
  const ttftLimitUs = config.sla.ttftMsP99 * 1000;
  const itlLimitUs = config.sla.itlMsP99 * 1000;
  const windowUs = Math.round(config.sla.windowS * 1e6);
  const overall = newGroup();
  const byTenant = new Map<string, Group>();
  const byWindow = new Map<number, Group>();
  const statusCounts = { completed: 0, rejected: 0, aborted: 0, failed: 0, pending: 0 };
  const reasons = new Map<string, number>();
  let inputTokensDone = 0;
  let sojournUs = 0;
  const singleTenant = records.tenantNames.length === 1;
  for (let id = 0; id < records.size; id++) {
    const status = records.status[id];
    statusCounts[status]++;
    if (status !== 'completed') reasons.set(`${status}:${records.reason[id]}`, (reasons.get(`${status}:${records.reason[id]}`) ?? 0) + 1);
    sojournUs += records.finishUs[id] - records.arrivalUs[id];
    const lat = requestLatenciesUs(records, id);
    const tenant = records.tenant[id];
    let tg = byTenant.get(tenant);
    // With a single tenant its group would repeat every add of `overall`: share it instead.
    if (tg === undefined) byTenant.set(tenant, (tg = singleTenant ? overall : newGroup()));
    const w = Math.floor(records.arrivalUs[id] / windowUs);
    let wg = byWindow.get(w);
    if (wg === undefined) byWindow.set(w, (wg = newGroup()));
    for (const g of tg === overall ? [overall, wg] : [overall, tg, wg]) {
      g.requests++;
      if (lat.ttftUs >= 0) g.ttft.add(lat.ttftUs);
      if (lat.queueUs >= 0) g.queue.add(lat.queueUs);
      if (status === 'completed') {
        g.completed++;
        g.e2e.add(lat.e2eUs);
        if (lat.tpotUs >= 0) g.tpot.add(lat.tpotUs);
        g.outputTokens += records.outputTokensDone[id];
        if (lat.ttftUs <= ttftLimitUs && (lat.tpotUs < 0 || lat.tpotUs <= itlLimitUs)) g.attained++;
      }
    }
    if (status === 'completed') inputTokensDone += records.inputTokens[id];
  }
  const itl = new WeightedSamples();
  const itlByTenant = new Map<string, WeightedSamples>();
  const itlByWindow = new Map<number, WeightedSamples>();
  let kvBlockUs = 0;
  let kvReservedTokenUs = 0;
  let kvLiveTokenUs = 0;
  let kvBlocksPeak = 0;
  let batchSeqUs = 0;
  let busyUs = 0;
  let numSteps = 0;
  let numPreemptions = 0;
  let inSystemIntegralUs = 0;
  let inSystemPeak = 0;
  // Replicas of one simulation share their per-tenant map: merge each distinct map once.
  const tenantMapsSeen = new Set<Map<string, WeightedSamples>>();
  // And the replicas of a pool share their per-window map.
  const windowMapsSeen = new Set<Map<number, WeightedSamples>>();
  for (const r of replicas) {
    const s = r.stats;
    if (!tenantMapsSeen.has(s.itlByTenant)) {
      tenantMapsSeen.add(s.itlByTenant);
      for (const w of s.itlByTenant.values()) merge(itl, w);
      for (const [t, w] of s.itlByTenant) mergeInto(itlByTenant, t, w);
    }
    if (!windowMapsSeen.has(s.itlByWindow)) {
      windowMapsSeen.add(s.itlByWindow);
      for (const [k, w] of s.itlByWindow) mergeInto(itlByWindow, k, w);
    }
    kvBlockUs += s.kvBlockUs;
    kvReservedTokenUs += s.kvReservedTokenUs;
    kvLiveTokenUs += s.kvLiveTokenUs;
    kvBlocksPeak = Math.max(kvBlocksPeak, s.kvBlocksPeak);
    batchSeqUs += s.batchSeqUs;
    busyUs += s.busyUs;
    numSteps += s.numSteps;
    numPreemptions += s.numPreemptions;
    inSystemIntegralUs += s.inSystemIntegralUs;
    inSystemPeak += s.inSystemPeak;
  }
  const durationUs = Math.max(1, endUs);
  const durationS = durationUs / 1e6;
  const n = records.size;
  const arrivalRatePerS = n / durationS;
  const meanSojournS = n > 0 ? sojournUs / n / 1e6 : 0;
  const timeAvgInSystem = inSystemIntegralUs / durationUs;
  const littleLhs = arrivalRatePerS * meanSojournS;
  const itlOverall = distributionMs(itl);
  const ttftOverall = distributionMs(overall.ttft);
  const slaMet = (ttft: Distribution, it: Distribution): boolean =>
    ttft.p99 !== null && ttft.p99 <= config.sla.ttftMsP99 && (it.p99 === null || it.p99 <= config.sla.itlMsP99);
  const groupOut = (g: Group, itlSamples: WeightedSamples | undefined): Record<string, unknown> => {
    const ttft = distributionMs(g.ttft);
    const it = distributionMs(itlSamples ?? new WeightedSamples());
    return {
      requests: g.requests,
      completed: g.completed,
      ttft_ms: ttft,
      itl_ms: it,
      tpot_ms: distributionMs(g.tpot),
      e2e_ms: distributionMs(g.e2e),
      queue_ms: distributionMs(g.queue),
      sla_met: slaMet(ttft, it),
      sla_attainment: round3(g.requests > 0 ? g.attained / g.requests : 1),
    };
  };
  const totalBlocks = result.kv.numBlocks * replicas.length;
  const outputTokens = overall.outputTokens;
  return {
    stratos_output: 'simulate',
    cost_model: { name: costModel.name, calibration: costModel.calibration },
    label: costModel.calibration,
    model: config.model,
    gpu: config.gpu,
    tp: config.tp,
    replicas: config.replicas,
    policy: config.policy,
    seed: config.seed,
    requests: n,
    completed: statusCounts.completed,
    rejected: statusCounts.rejected,
    aborted: statusCounts.aborted,
    failed: statusCounts.failed,
    unfinished: statusCounts.pending,
    not_completed_reasons: Object.fromEntries(sortedEntries(reasons)),
    duration_s: round3(durationS),
    throughput_output_tokens_per_s: round3(outputTokens / durationS),
    throughput_total_tokens_per_s: round3((outputTokens + inputTokensDone) / durationS),
    throughput_requests_per_s: round3(statusCounts.completed / durationS),
    ttft_ms: ttftOverall,
    itl_ms: itlOverall,
    tpot_ms: distributionMs(overall.tpot),
    e2e_ms: distributionMs(overall.e2e),
    queue_ms: distributionMs(overall.queue),
    preemptions: numPreemptions,
    sla: {
      thresholds: { ttft_ms_p99: config.sla.ttftMsP99, itl_ms_p99: config.sla.itlMsP99 },
      met: slaMet(ttftOverall, itlOverall),
      attainment: round3(n > 0 ? overall.attained / n : 1),
      attainment_definition: 'share of all requests that completed with TTFT <= ttft threshold and TPOT <= itl threshold',
      window_s: config.sla.windowS,
      windows: sortedEntries(byWindow).map(([w, g]) => ({ start_s: round3(((w as number) * windowUs) / 1e6), ...groupOut(g, itlByWindow.get(w as number)) })),
    },
    tenants: Object.fromEntries(sortedEntries(byTenant).map(([t, g]) => [t, groupOut(g, itlByTenant.get(t as string))])),
    tiers: { [config.model]: groupOut(overall, itl) },
    kv: {
      blocks_per_replica: result.kv.numBlocks,
      page_size_tokens: config.kv.pageSizeTokens,
      tokens_per_replica: result.kv.numTokens,
      utilization_mean: round3(kvBlockUs / durationUs / totalBlocks),
      utilization_peak: round3(kvBlocksPeak / result.kv.numBlocks),
      waste_mean: round3(kvReservedTokenUs > 0 ? 1 - kvLiveTokenUs / kvReservedTokenUs : 0),
      waste_definition: 'share of reserved KV token slots holding no token, time-weighted over steps',
      prefix_cache: prefixCache(result.records),
    },
    concurrency: {
      in_system_mean: round3(timeAvgInSystem),
      in_system_peak_sum_over_replicas: inSystemPeak,
      batch_size_mean_busy: round3(busyUs > 0 ? batchSeqUs / busyUs : 0),
      busy_fraction: round3(busyUs / durationUs / replicas.length),
      steps: numSteps,
    },
    littles_law: {
      arrival_rate_per_s: round3(arrivalRatePerS),
      mean_time_in_system_s: round3(meanSojournS),
      lambda_w: round3(littleLhs),
      time_avg_in_system: round3(timeAvgInSystem),
      relative_error: round3(littleLhs > 0 ? Math.abs(timeAvgInSystem - littleLhs) / littleLhs : 0),
    },
  };
}

function merge(into: WeightedSamples, from: WeightedSamples): void {
  into.addAll(from);
}

function mergeInto<K>(m: Map<K, WeightedSamples>, key: K, w: WeightedSamples): void {
  let t = m.get(key);
  if (t === undefined) m.set(key, (t = new WeightedSamples()));
  t.addAll(w);
}

/** Prompt tokens of completed requests served from the prefix cache (hash-chain block sharing). */
function prefixCache(records: RequestRecords): { prompt_tokens: number; hit_tokens: number; hit_rate: number | null } {
  let promptTokens = 0;
  let hitTokens = 0;
  for (let id = 0; id < records.size; id++) {
    if (records.status[id] !== 'completed') continue;
    promptTokens += records.inputTokens[id];
    hitTokens += records.cachedPromptTokens[id];
  }
  return { prompt_tokens: promptTokens, hit_tokens: hitTokens, hit_rate: round3(promptTokens > 0 ? hitTokens / promptTokens : 0) };
}
