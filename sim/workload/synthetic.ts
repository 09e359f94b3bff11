import { secondsToUs } from '../kernel/clock.js';
import type { RngStreams } from '../kernel/rng.js';
import { exponential, gamma, Zipf } from './distributions.js';
import { sampleLength, type LengthLaw } from './lengths.js';
import type { WorkloadRequest, WorkloadSource } from './types.js';

export interface TenantSpec {
  readonly name: string;
  /** Share of requests (relative weight). */
  readonly weight: number;
  readonly priorityClass: number;
  /** LoRA adapters this tenant uses (0 = base model only). */
  readonly numAdapters: number;
  /** Zipf exponent of adapter popularity within the tenant. */
  readonly adapterZipfS: number;
}

export interface SyntheticWorkload {
  readonly ratePerS: number;
  readonly durationS: number;
  /** Poisson (CV 1) or Gamma inter-arrivals with the given coefficient of variation (bursty when > 1). */
  readonly arrival: { readonly process: 'poisson' } | { readonly process: 'gamma'; readonly cv: number };
  readonly inputTokens: LengthLaw;
  readonly outputTokens: LengthLaw;
  /** Prompt + output may not exceed this (the case study's 4096-token context): output is capped. */
  readonly maxSeqLenTokens: number;
  readonly tenants: readonly TenantSpec[];
  /** Peak hours of each day at `ratePerS`, the rest at ratePerS × offPeakFactor (absent = flat). */
  readonly diurnal?: { readonly startHour: number; readonly endHour: number; readonly offPeakFactor: number };
}

/** Rate multiplier at `timeS` and the time its piece ends, for a daily peak window. */
function diurnalPiece(d: NonNullable<SyntheticWorkload['diurnal']>, timeS: number): { factor: number; endS: number } {
  const day = Math.floor(timeS / 86400) * 86400;
  const startS = day + d.startHour * 3600;
  const endS = day + d.endHour * 3600;
  if (timeS < startS) return { factor: d.offPeakFactor, endS: startS };
  if (timeS < endS) return { factor: 1, endS };
  return { factor: d.offPeakFactor, endS: day + 86400 };
}

export const DEFAULT_TENANTS: readonly TenantSpec[] = [{ name: 'default', weight: 1, priorityClass: 0, numAdapters: 0, adapterZipfS: 1 }];

/**
 * Synthetic arrivals over [0, durationS). Each aspect draws from its own RNG stream (arrivals,
 * lengths, tenants), so changing the length law does not move arrival times.
 */
export function syntheticSource(w: SyntheticWorkload, rngs: RngStreams): WorkloadSource {
  const arrivalRng = rngs.fork('workload/arrivals');
  const lengthRng = rngs.fork('workload/lengths');
  const tenantRng = rngs.fork('workload/tenants');
  const meanGapS = 1 / w.ratePerS;
  const endUs = secondsToUs(w.durationS);
  const totalWeight = w.tenants.reduce((a, t) => a + t.weight, 0);
  const zipfs = w.tenants.map((t) => (t.numAdapters > 0 ? new Zipf(t.numAdapters, t.adapterZipfS) : null));
  let timeS = 0;
  let done = false;
  const gap = (): number => {
    if (w.arrival.process === 'poisson') return exponential(arrivalRng, meanGapS);
    const shape = 1 / (w.arrival.cv * w.arrival.cv);
    return gamma(arrivalRng, shape, meanGapS / shape);
  };
  return {
    next(): WorkloadRequest | null {
      if (done) return null;
      if (w.diurnal === undefined) timeS += gap();
      else {
        // Piecewise-constant rate: a gap that crosses a piece's end restarts there at the new rate
        // (exact for Poisson, which is memoryless). Bounded: a day has three pieces.
        for (let piece = 0; ; piece++) {
          if (piece > 3 * (1 + w.durationS / 86400)) throw new Error('diurnal arrivals: no arrival found (bug)');
          const { factor, endS } = diurnalPiece(w.diurnal, timeS);
          const next = factor > 0 ? timeS + gap() / factor : Infinity;
          if (next < endS) {
            timeS = next;
            break;
          }
          timeS = endS;
          if (timeS >= w.durationS) break;
        }
      }
      const arrivalUs = secondsToUs(timeS);
      if (arrivalUs >= endUs) {
        done = true;
        return null;
      }
      let pick = tenantRng() * totalWeight;
      let t = 0;
      while (t < w.tenants.length - 1 && pick >= w.tenants[t].weight) pick -= w.tenants[t++].weight;
      const tenant = w.tenants[t];
      const zipf = zipfs[t];
      const adapter = zipf === null ? null : `${tenant.name}/lora-${zipf.sample(tenantRng)}`;
      const promptTokens = Math.min(sampleLength(w.inputTokens, lengthRng), w.maxSeqLenTokens - 1);
      const outputTokens = Math.min(sampleLength(w.outputTokens, lengthRng), w.maxSeqLenTokens - promptTokens);
      return { arrivalUs, tenant: tenant.name, adapter, priorityClass: tenant.priorityClass, promptTokens, outputTokens };
    },
  };
}
