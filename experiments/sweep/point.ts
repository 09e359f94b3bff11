import { parseSimConfig } from '../../sim/config.js';
import { requestLatenciesUs } from '../../sim/metrics/summary.js';
import { runConfig } from '../../sim/run.js';
import type { Overrides } from './spec.js';

/** What DIR/points/<id>.json holds: the point, its summary.json and compact latency CDFs. */
export interface PointRecord {
  readonly id: string;
  readonly index: number;
  readonly overrides: Overrides;
  readonly summary: Record<string, any>;
  /** [quantile, ms] pairs of TTFT and E2E over requests, for the report's CDF charts. */
  readonly cdf: { ttft_ms: [number, number][]; e2e_ms: [number, number][] };
}

export interface PointTask {
  readonly id: string;
  readonly index: number;
  readonly overrides: Overrides;
  /** The raw config (base with overrides applied); parsed again where it runs. */
  readonly raw: Record<string, unknown>;
}

const QUANTILES = [0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995, 1];

function quantiles(values: number[]): [number, number][] {
  if (values.length === 0) return [];
  values.sort((a, b) => a - b);
  return QUANTILES.map((q) => {
    const rank = Math.max(1, Math.ceil(q * values.length)); // nearest rank, as summary.json
    return [q, Math.round(values[rank - 1]) / 1000];
  });
}

/** Runs one point synchronously (in a worker or in-process). */
export function runPoint(task: PointTask): PointRecord {
  const config = parseSimConfig(task.raw, `point ${task.index}`);
  const { result, summary } = runConfig(config);
  const ttft: number[] = [];
  const e2e: number[] = [];
  for (let id = 0; id < result.records.size; id++) {
    const lat = requestLatenciesUs(result.records, id);
    if (lat.ttftUs >= 0) ttft.push(lat.ttftUs);
    if (lat.e2eUs >= 0) e2e.push(lat.e2eUs);
  }
  return { id: task.id, index: task.index, overrides: task.overrides, summary, cdf: { ttft_ms: quantiles(ttft), e2e_ms: quantiles(e2e) } };
}
