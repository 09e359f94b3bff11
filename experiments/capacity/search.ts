import { parseSimConfig, type SimConfig } from '../../sim/config.js';
import { runConfig } from '../../sim/run.js';

// Capacity by bisection. A candidate passes when the SLA is met (p99 TTFT and p99 ITL within
// thresholds, summary.sla.met) for EVERY seed, so the answer holds across workload draws.
//   replicas: the fewest replicas (GPUs = replicas x tp) that pass, searched by doubling
//             then integer bisection (passing is assumed monotone in replicas).
//   rate:     the highest workload.rate that passes, bisected to a relative tolerance.
// The margin is the worst-seed headroom at the answer: 1 - p99/threshold for TTFT and ITL
// (positive = room to spare), and the neighbour that fails (replicas - 1, or the failing rate).

export type CapacityTarget = 'replicas' | 'rate';

export interface Evaluation {
  readonly value: number;
  readonly pass: boolean;
  readonly worstTtftMsP99: number | null;
  readonly worstItlMsP99: number | null;
  readonly minAttainment: number;
}

export interface CapacityResult {
  readonly target: CapacityTarget;
  readonly seeds: number[];
  readonly answer: number | null;
  readonly gpus: number | null;
  readonly atAnswer: Evaluation | null;
  readonly failingNeighbour: Evaluation | null;
  readonly ttftHeadroom: number | null;
  readonly itlHeadroom: number | null;
  readonly evaluations: Evaluation[];
}

export interface CapacityOptions {
  readonly target: CapacityTarget;
  readonly seeds: number[];
  readonly maxReplicas?: number;
  readonly rateLow?: number;
  readonly rateHigh?: number;
  /** Relative width of the final rate bracket. */
  readonly rateTolerance?: number;
  readonly onEvaluation?: (e: Evaluation) => void;
}

export function evaluate(raw: Record<string, unknown>, target: CapacityTarget, value: number, seeds: readonly number[]): Evaluation {
  let pass = true;
  let ttft: number | null = null;
  let itl: number | null = null;
  let att = 1;
  for (const seed of seeds) {
    const cfgRaw = structuredClone(raw);
    cfgRaw.seed = seed;
    if (target === 'replicas') cfgRaw.replicas = value;
    else cfgRaw.workload = { ...((cfgRaw.workload as object) ?? {}), rate: value };
    const config: SimConfig = parseSimConfig(cfgRaw, `capacity (${target} = ${value}, seed ${seed})`);
    const s = runConfig(config).summary as Record<string, any>;
    pass &&= s.sla.met === true;
    if (s.ttft_ms.p99 !== null) ttft = Math.max(ttft ?? 0, s.ttft_ms.p99);
    if (s.itl_ms.p99 !== null) itl = Math.max(itl ?? 0, s.itl_ms.p99);
    att = Math.min(att, s.sla.attainment);
  }
  return { value, pass, worstTtftMsP99: ttft, worstItlMsP99: itl, minAttainment: att };
}

export function findCapacity(raw: Record<string, unknown>, opts: CapacityOptions): CapacityResult {
  const config = parseSimConfig(raw, 'capacity config');
  const evaluations: Evaluation[] = [];
  const ev = (v: number): Evaluation => {
    const e = evaluate(raw, opts.target, v, opts.seeds);
    evaluations.push(e);
    opts.onEvaluation?.(e);
    return e;
  };
  let best: Evaluation | null = null;
  let fail: Evaluation | null = null;
  // A bisection step: evaluates v and keeps it as the best pass or the latest fail; returns whether it passed.
  const probe = (v: number): boolean => {
    const m = ev(v);
    if (m.pass) best = m;
    else fail = m;
    return m.pass;
  };
  if (opts.target === 'replicas') {
    const maxR = opts.maxReplicas ?? 256;
    let lo = 0; // fails (no replicas)
    let hi = 1;
    let e = ev(hi);
    while (!e.pass && hi < maxR) {
      lo = hi;
      fail = e;
      hi = Math.min(maxR, hi * 2);
      e = ev(hi);
    }
    if (e.pass) {
      best = e;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (probe(mid)) hi = mid;
        else lo = mid;
      }
      if (fail !== null && fail.value !== hi - 1) fail = null;
    }
  } else {
    let lo = opts.rateLow ?? 0.1;
    let hi = opts.rateHigh ?? 2 * config.workload.rate;
    const tol = opts.rateTolerance ?? 0.02;
    const l = ev(lo);
    if (l.pass) {
      best = l;
      let h = ev(hi);
      for (let i = 0; h.pass && i < 20; i++) {
        best = h;
        lo = hi;
        hi *= 2;
        h = ev(hi);
      }
      fail = h.pass ? null : h;
      for (let i = 0; fail !== null && (hi - lo) / hi > tol && i < 40; i++) {
        const mid = Math.round(((lo + hi) / 2) * 1e6) / 1e6;
        if (probe(mid)) lo = mid;
        else hi = mid;
      }
    }
  }
  const head = (v: number | null | undefined, limit: number): number | null => (v === null || v === undefined ? null : Math.round((1 - v / limit) * 1000) / 1000);
  return {
    target: opts.target,
    seeds: [...opts.seeds],
    answer: best?.value ?? null,
    gpus: best === null ? null : opts.target === 'replicas' ? best.value * config.tp : config.replicas * config.tp,
    atAnswer: best,
    failingNeighbour: fail,
    ttftHeadroom: head(best?.worstTtftMsP99, config.sla.ttftMsP99),
    itlHeadroom: head(best?.worstItlMsP99, config.sla.itlMsP99),
    evaluations,
  };
}
