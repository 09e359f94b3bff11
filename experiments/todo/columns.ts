import { stringify } from 'csv-stringify/sync';
import { kvBytesPerToken, MODELS, numParams, WEIGHT_BYTES, type KvDtype, type ModelName, type WeightDtype } from '../../sim/catalog.js';
import { parseSimConfig, type SimConfig } from '../../sim/config.js';
import { adapterBytes } from '../../sim/fleet/lora-registry.js';
import { parseLengthLaw } from '../../sim/workload/lengths.js';
import type { PointRecord } from '../sweep/point.js';
import { applyOverrides, describeOverrides } from '../sweep/spec.js';
import { parse as parseCsv } from 'csv-parse/sync';

// todo.csv: one row per point of a TODO sweep, with what the notebook's comparisons read (memory
// in GiB, KV waste, effective concurrency, per-sequence tokens/s) besides results.csv's columns.
// Every figure is read from the point's summary.json or derived from it and the point's config
// by the formula its column names; nothing is typed in.

const GIB = 2 ** 30;

export interface PointContext {
  readonly record: PointRecord;
  readonly config: SimConfig;
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const fin = (x: unknown): number | '' => (typeof x === 'number' && Number.isFinite(x) ? x : '');

/** KV bytes one token of the point's model takes in the cache (all layers, K and V). */
function kvTokenBytes(c: SimConfig): number {
  return kvBytesPerToken(MODELS[c.model as ModelName], c.kvDtype as KvDtype);
}

/** KV the allocator reserved, in GiB, at a utilization (a fraction of the replica's KV tokens). */
function kvGib(p: PointContext, utilization: unknown): number | '' {
  const u = fin(utilization);
  const tokens = fin(p.record.summary.kv?.tokens_per_replica);
  return u === '' || tokens === '' ? '' : r3((u * tokens * kvTokenBytes(p.config)) / GIB);
}

/** Prompt + output tokens when both laws are constant (TODO 1–2's sequence length), else empty. */
function constantSeqTokens(c: SimConfig): number | '' {
  const input = parseLengthLaw(c.workload.inputTokens, 'workload.inputTokens');
  const output = parseLengthLaw(c.workload.outputTokens, 'workload.outputTokens');
  return input.law === 'constant' && output.law === 'constant' ? input.value + output.value : '';
}

/** Distinct adapters the workload names (Σ numAdapters over tenants). */
function numAdapters(c: SimConfig): number {
  return (c.workload.tenants ?? []).reduce((s, t) => s + t.numAdapters, 0);
}

export const TODO_COLUMNS: readonly [string, (p: PointContext) => unknown][] = [
  ['point_index', (p) => p.record.index],
  ['point', (p) => describeOverrides(p.record.overrides)],
  ['gpu', (p) => p.config.gpu],
  ['policy', (p) => p.config.policy],
  ['kv_cache', (p) => p.config.kv.cache],
  ['kv_allocator', (p) => p.config.kv.allocator],
  ['requests', (p) => p.record.summary.requests],
  ['completed', (p) => p.record.summary.completed],
  ['rejected', (p) => p.record.summary.rejected],
  ['output_tokens_per_s', (p) => p.record.summary.throughput_output_tokens_per_s],
  ['ttft_ms_p50', (p) => p.record.summary.ttft_ms?.p50],
  ['ttft_ms_p99', (p) => p.record.summary.ttft_ms?.p99],
  ['itl_ms_p50', (p) => p.record.summary.itl_ms?.p50],
  ['itl_ms_p99', (p) => p.record.summary.itl_ms?.p99],
  ['tpot_ms_mean', (p) => p.record.summary.tpot_ms?.mean],
  ['e2e_ms_p50', (p) => p.record.summary.e2e_ms?.p50],
  ['e2e_ms_p99', (p) => p.record.summary.e2e_ms?.p99],
  ['sla_attainment', (p) => p.record.summary.sla?.attainment],
  ['kv_utilization_mean', (p) => p.record.summary.kv?.utilization_mean],
  ['kv_utilization_peak', (p) => p.record.summary.kv?.utilization_peak],
  ['kv_waste_mean', (p) => p.record.summary.kv?.waste_mean],
  // KV reserved by the allocator = utilization × the replica's KV tokens × KV bytes per token.
  ['kv_reserved_gib_mean', (p) => kvGib(p, p.record.summary.kv?.utilization_mean)],
  ['kv_reserved_gib_peak', (p) => kvGib(p, p.record.summary.kv?.utilization_peak)],
  ['batch_size_mean_busy', (p) => p.record.summary.concurrency?.batch_size_mean_busy],
  ['in_system_peak', (p) => p.record.summary.concurrency?.in_system_peak_sum_over_replicas],
  ['preemptions', (p) => p.record.summary.preemptions],
  ['duration_s', (p) => p.record.summary.duration_s],
  // TODO 1–2: one sequence at a time, so a sequence generates 1000 / mean TPOT tokens per second.
  ['seq_tokens', (p) => constantSeqTokens(p.config)],
  ['tokens_per_s_per_seq', (p) => (fin(p.record.summary.tpot_ms?.mean) === '' ? '' : r3(1000 / p.record.summary.tpot_ms.mean))],
  // Memory model of kv.cache = none (sim/config.ts): nothing is held between steps; a step's
  // forward holds one layer's K and V of the whole sequence at a time (1 / numLayers of the cache).
  ['kv_held_gib_peak', (p) => (p.config.kv.cache === 'none' ? 0 : kvGib(p, p.record.summary.kv?.utilization_peak))],
  ['kv_transient_gib_peak', (p) => {
    if (p.config.kv.cache !== 'none') return 0;
    const g = kvGib(p, p.record.summary.kv?.utilization_peak);
    return g === '' ? '' : r3(g / MODELS[p.config.model as ModelName].numLayers);
  }],
  // TODO 9–10: adapter weights resident on the GPU (rank-r A and B of every projection and layer, bf16) vs the base weights.
  ['adapters', (p) => numAdapters(p.config)],
  ['adapters_resident_gib', (p) => r3((Math.min(numAdapters(p.config), p.config.lora.numSlots) * adapterBytes(MODELS[p.config.model as ModelName], p.config.lora.rank)) / GIB)],
  ['weights_gib', (p) => r3((numParams(MODELS[p.config.model as ModelName]) * WEIGHT_BYTES[p.config.weightDtype as WeightDtype]) / GIB)],
  ['cost_model', (p) => p.record.summary.cost_model?.name],
];

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** The point's config, as the sweep ran it. */
export function pointConfig(base: Record<string, unknown>, record: PointRecord): SimConfig {
  return parseSimConfig(applyOverrides(base, record.overrides), `point ${record.index}`);
}

export function todoCsv(base: Record<string, unknown>, records: readonly PointRecord[]): string {
  const rows = [...records]
    .sort((a, b) => a.index - b.index)
    .map((record) => {
      const p = { record, config: pointConfig(base, record) };
      return TODO_COLUMNS.map(([, get]) => cell(get(p)));
    });
  return stringify([TODO_COLUMNS.map(([name]) => name), ...rows], { record_delimiter: '\n' });
}

/** Reads a CSV written by csv-stringify (RFC 4180 quoting) into rows of named cells. */
export function readCsv(text: string): Record<string, string>[] {
  return parseCsv(text, { columns: true, skip_empty_lines: true }) as Record<string, string>[];
}
