import { stringify } from 'csv-stringify/sync';
import type { PointRecord } from './point.js';
import { sweptValue } from './spec.js';

/** Headline metrics after the swept keys, in this order (names are summary.json paths, flattened). */
export const METRIC_COLUMNS: readonly [string, (s: Record<string, any>) => unknown][] = [
  ['requests', (s) => s.requests],
  ['completed', (s) => s.completed],
  ['rejected', (s) => s.rejected],
  ['throughput_output_tokens_per_s', (s) => s.throughput_output_tokens_per_s],
  ['throughput_total_tokens_per_s', (s) => s.throughput_total_tokens_per_s],
  ['throughput_requests_per_s', (s) => s.throughput_requests_per_s],
  ['ttft_ms_p50', (s) => s.ttft_ms?.p50],
  ['ttft_ms_p99', (s) => s.ttft_ms?.p99],
  ['itl_ms_p50', (s) => s.itl_ms?.p50],
  ['itl_ms_p99', (s) => s.itl_ms?.p99],
  ['e2e_ms_p50', (s) => s.e2e_ms?.p50],
  ['e2e_ms_p99', (s) => s.e2e_ms?.p99],
  ['sla_met', (s) => s.sla?.met],
  ['sla_attainment', (s) => s.sla?.attainment],
  ['kv_utilization_mean', (s) => s.kv?.utilization_mean],
  ['kv_utilization_peak', (s) => s.kv?.utilization_peak],
  ['preemptions', (s) => s.preemptions],
];

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/**
 * results.csv: point_index, point_id, the swept keys (the point's override, else the base value,
 * else empty = the schema default), then METRIC_COLUMNS; rows by point index.
 */
export function resultsCsv(keys: readonly string[], records: readonly PointRecord[], base: Record<string, unknown> = {}): string {
  const header = ['point_index', 'point_id', ...keys, ...METRIC_COLUMNS.map(([name]) => name)];
  const rows = [...records]
    .sort((a, b) => a.index - b.index)
    .map((r) => [String(r.index), r.id, ...keys.map((k) => cell(sweptValue(r.overrides, base, k))), ...METRIC_COLUMNS.map(([, get]) => cell(get(r.summary)))]);
  return stringify([header, ...rows], { record_delimiter: '\n' });
}
