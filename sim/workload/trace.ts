import type { RngStreams } from '../kernel/rng.js';
import { Zipf } from './distributions.js';
import { DEFAULT_TENANTS, type TenantSpec } from './synthetic.js';
import { TraceFormatError, type WorkloadRequest } from './types.js';
import type { PromptContent } from '../../engine/policy/index.js';

/** A row of a real trace, times in microseconds from the trace's first row. */
export interface TraceRow {
  readonly offsetUs: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly content?: PromptContent;
}

export interface TraceReplay {
  /** Keep rows with startS <= offset < endS (native trace seconds); the slice starts at time 0. */
  readonly startS?: number;
  readonly endS?: number;
  /** Multiply the arrival rate: 2 = twice as fast (inter-arrival gaps halved). 1 = native speed. */
  readonly rateScale: number;
  readonly tenants?: readonly TenantSpec[];
}

/**
 * Turns trace rows into workload requests: slice by time, re-base to 0, scale the rate, assign
 * tenants and adapters from the tenant mix (traces carry none). Every row in the slice becomes a
 * request — lengths past the context limit are left for the scheduler to reject with a reason.
 */
export function replayTrace(rows: readonly TraceRow[], replay: TraceReplay, rngs: RngStreams): WorkloadRequest[] {
  if (!(replay.rateScale > 0)) throw new Error(`trace.rateScale = ${replay.rateScale}: must be > 0`);
  const startUs = replay.startS === undefined ? 0 : Math.round(replay.startS * 1e6);
  const endUs = replay.endS === undefined ? Infinity : Math.round(replay.endS * 1e6);
  const tenants = replay.tenants ?? DEFAULT_TENANTS;
  const rng = rngs.fork('workload/tenants');
  const totalWeight = tenants.reduce((a, t) => a + t.weight, 0);
  const zipfs = tenants.map((t) => (t.numAdapters > 0 ? new Zipf(t.numAdapters, t.adapterZipfS) : null));
  const out: WorkloadRequest[] = [];
  for (const row of rows) {
    if (row.offsetUs < startUs || row.offsetUs >= endUs) continue;
    let t = 0;
    if (tenants.length > 1) {
      let pick = rng() * totalWeight;
      while (t < tenants.length - 1 && pick >= tenants[t].weight) pick -= tenants[t++].weight;
    }
    const tenant = tenants[t];
    const zipf = zipfs[t];
    out.push({
      arrivalUs: Math.round((row.offsetUs - startUs) / replay.rateScale),
      tenant: tenant.name,
      adapter: zipf === null ? null : `${tenant.name}/lora-${zipf.sample(rng)}`,
      priorityClass: tenant.priorityClass,
      promptTokens: row.inputTokens,
      outputTokens: row.outputTokens,
      ...(row.content !== undefined ? { content: row.content } : {}),
    });
  }
  return out;
}

export function parseNonNegInt(text: string, file: string, line: number, column: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < 0) {
    throw new TraceFormatError(file, line, `${column} = ${JSON.stringify(text)}: must be a non-negative integer`);
  }
  return value;
}
