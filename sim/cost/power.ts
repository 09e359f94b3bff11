// The GPU's power management as a term of the cost model. Under sustained compute-heavy work the
// H200 holds its 700 W cap by lowering the SM clock; the kernel microbenchmarks run back to back,
// so the profile prices that hot, capped state. Work that arrives in short compute bursts between
// memory-bound steps runs at the full boost clock instead, and its compute-bound part finishes
// sooner (the validation measured 7B prefill steps 11-12% faster than their price at moderate
// load, and priced right under sustained load).
//
// Model: a replica carries a heat state h ∈ [0, 1], the exponentially weighted time-average of the
// compute share of what the GPU ran (time constant tauUs). A step's compute share is
// rows / (rows + ridge), the roofline's compute fraction of a GEMM over `rows` token rows (ridge =
// peak FLOP/s ÷ peak bytes/s, about 206 rows on the H200). Only steps with prefill tokens are
// re-priced: decode steps are memory-bound and priced as measured; they add their own (small)
// compute share to the heat, which decays through idle time. A step's compute-bound part runs at
// speed(h) of its profile time, h taken at the step's midpoint, the heat it builds itself
// included (a long prefill heats the GPU while it runs). speed comes from a microbenchmark of
// compute bursts at set duty cycles (calibration/power-bench.ts; sim/cost/power-fit.ts).
//
// Deterministic: only + − × ÷ and detDecay (det-math), updated in step order, so the simulator and
// the engine's fake runner, which see the same steps at the same times, compute the same durations.
import { detDecay } from './det-math.js';

export interface PowerProfile {
  /** Time constant of the heat state, µs: how fast the clock follows the compute duty. */
  readonly tauUs: number;
  /** Heat points, ascending from 0 (time-average compute share). */
  readonly heat: readonly number[];
  /**
   * Compute-bound speed at each heat point: the compute-bound part's time at that heat over its
   * time in the profile (measured hot); ≤ 1, non-decreasing, 1 where the power cap holds.
   */
  readonly speed: readonly number[];
  /** Where the numbers came from (bench file, command, fit errors). */
  readonly provenance: Readonly<Record<string, unknown>>;
}

export class PowerProfileError extends Error {
  readonly code = 'profile' as const;
  constructor(message: string) {
    super(message);
    this.name = 'PowerProfileError';
  }
}

/** Checks a profile's `power` section, naming the first problem with its key and value. */
export function parsePowerProfile(raw: unknown, source: string): PowerProfile {
  const bad = (key: string, value: unknown, want: string): never => {
    throw new PowerProfileError(`${source}: power.${key} = ${JSON.stringify(value)?.slice(0, 80)}: ${want}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('(section)', raw, 'must be an object or null');
  const r = raw as Record<string, unknown>;
  if (typeof r.tauUs !== 'number' || !(r.tauUs > 0) || !Number.isFinite(r.tauUs)) bad('tauUs', r.tauUs, 'must be a finite number > 0');
  const heat = r.heat;
  const speed = r.speed;
  if (!Array.isArray(heat) || heat.length < 2) bad('heat', heat, 'must be an array of at least 2 numbers');
  if (!Array.isArray(speed) || speed.length !== (heat as unknown[]).length) bad('speed', speed, 'must be an array as long as heat');
  const h = heat as unknown[];
  const s = speed as unknown[];
  h.forEach((x, i) => {
    if (typeof x !== 'number' || x < 0 || x > 1) bad(`heat[${i}]`, x, 'must be a number in [0, 1]');
    if (i === 0 && x !== 0) bad('heat[0]', x, 'must be 0');
    if (i > 0 && !((x as number) > (h[i - 1] as number))) bad(`heat[${i}]`, x, 'must be greater than the point before');
  });
  s.forEach((x, i) => {
    if (typeof x !== 'number' || !(x > 0) || x > 1) bad(`speed[${i}]`, x, 'must be a number in (0, 1]');
    if (i > 0 && (x as number) < (s[i - 1] as number)) bad(`speed[${i}]`, x, 'must not be below the point before (hotter never runs faster)');
  });
  if (typeof r.provenance !== 'object' || r.provenance === null) bad('provenance', r.provenance, 'must be an object');
  return { tauUs: r.tauUs as number, heat: h as number[], speed: s as number[], provenance: r.provenance as Record<string, unknown> };
}

/** The roofline's compute share of a GEMM over `rows` token rows: rows / (rows + ridge). */
export function computeShare(rows: number, ridgeRows: number): number {
  return rows <= 0 ? 0 : rows / (rows + ridgeRows);
}

/** speed at heat h: linear between the profile's points, held beyond the last. */
export function speedAt(p: PowerProfile, h: number): number {
  const xs = p.heat;
  const ys = p.speed;
  if (h <= 0) return ys[0];
  // Bound: the table's length.
  for (let i = 1; i < xs.length; i++) {
    if (h <= xs[i]) return ys[i - 1] + ((ys[i] - ys[i - 1]) * (h - xs[i - 1])) / (xs[i] - xs[i - 1]);
  }
  return ys[ys.length - 1];
}

/**
 * One GPU's heat. Every step goes through it in start order: steps with prefill tokens through
 * `prefillStepUs` (re-priced), decode-only work through `decodeWork` (priced as measured: memory-
 * bound; it heats the GPU by its own compute share). Consecutive decode work with the same share
 * and no gap is one segment whose durations (integers) add up before one exponential is taken, so a
 * runner that notes a decode run at once (the simulator) and one that notes it step by step (the
 * engine's fake runner) compute the same heat to the bit.
 */
export class PowerState {
  /** The heat at `heatAtUs`. */
  private heat = 0;
  private heatAtUs = 0;
  /** The open decode segment (from heatAtUs to openEndUs at share openShare), or none (openShare < 0). */
  private openShare = -1;
  private openEndUs = 0;

  constructor(
    private readonly profile: PowerProfile,
    /** Peak FLOP/s ÷ peak bytes/s of the GPU. */
    private readonly ridgeRows: number,
    /** The cost model's host time of a step of `numSeqs` sequences (not re-priced). */
    private readonly hostUsOf: (numSeqs: number) => number,
    /** The token rows the engine runs for a step of `tokens` tokens (its row buckets). */
    private readonly rowsOf: (tokens: number) => number,
  ) {}

  /** Notes `durationUs` of decode-only work of `numSeqs` sequences from `startUs` on. */
  decodeWork(startUs: number, durationUs: number, numSeqs: number): void {
    const share = computeShare(this.rowsOf(numSeqs), this.ridgeRows);
    if (this.openShare === share && startUs === this.openEndUs) {
      this.openEndUs += durationUs;
      return;
    }
    this.bringTo(startUs);
    this.openShare = share;
    this.openEndUs = startUs + durationUs;
  }

  /**
   * The duration of a step with prefill tokens that starts at `startUs`, with `numSeqs` sequences
   * and `numTokens` tokens, priced `priceUs` at the profile's clock; advances the heat to its end.
   */
  prefillStepUs(startUs: number, priceUs: number, numSeqs: number, numTokens: number): number {
    const tau = this.profile.tauUs;
    const share = computeShare(this.rowsOf(numTokens), this.ridgeRows);
    this.bringTo(startUs);
    const heat0 = this.heat;
    const hostUs = this.hostUsOf(numSeqs);
    const gpuUs = priceUs > hostUs ? priceUs - hostUs : 0;
    // The heat at the step's midpoint: it climbs toward `share` while the step runs.
    const mid = share + (heat0 - share) * detDecay(gpuUs / (2 * tau));
    const factor = 1 - share * (1 - speedAt(this.profile, mid));
    const durationUs = Math.max(1, Math.ceil(hostUs + gpuUs * factor));
    this.heat = share + (heat0 - share) * detDecay(durationUs / tau);
    this.heatAtUs = startUs + durationUs;
    return durationUs;
  }

  /**
   * Closes the open decode segment and lets the heat decay over the idle time up to `nowUs`. A step
   * may start before the last one's planned end only after a failure cut that one short: the heat
   * is then taken as it was at that end.
   */
  private bringTo(nowUs: number): void {
    const tau = this.profile.tauUs;
    if (this.openShare >= 0) {
      // A segment that ends before the heat's time (steps placed at logged times that overlap a
      // priced step, as the validation's per-step pricing does) adds nothing: the heat never runs
      // backwards.
      if (this.openEndUs > this.heatAtUs) {
        const s = this.openShare;
        this.heat = s + (this.heat - s) * detDecay((this.openEndUs - this.heatAtUs) / tau);
        this.heatAtUs = this.openEndUs;
      }
      this.openShare = -1;
    }
    if (nowUs > this.heatAtUs) {
      this.heat *= detDecay((nowUs - this.heatAtUs) / tau);
      this.heatAtUs = nowUs;
    }
  }
}
