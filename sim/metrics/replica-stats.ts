import { WeightedSamples } from './weighted-samples.js';

/**
 * Time integrals and inter-token gaps one replica accumulates as it runs. Every sum is of
 * integers below 2^53, so the order steps are added in (lazily or one by one) cannot change it.
 */
export class ReplicaStats {
  numSteps = 0;
  busyUs = 0;
  /** Σ kvBlocksUsed × step duration. */
  kvBlockUs = 0;
  kvBlocksPeak = 0;
  /** Σ reserved KV tokens × duration and Σ tokens actually in KV × duration (waste = 1 − ratio). */
  kvReservedTokenUs = 0;
  kvLiveTokenUs = 0;
  /** Σ sequences in the step × duration (time-averaged batch size while busy). */
  batchSeqUs = 0;
  batchSeqsPeak = 0;
  numPreemptions = 0;
  numLoraLoads = 0;
  numPrefillTokens = 0;
  numDecodeTokens = 0;
  /** Requests in system (arrived, not ended): the integral for Little's law. */
  inSystem = 0;
  inSystemPeak = 0;
  inSystemIntegralUs = 0;
  private inSystemSinceUs = 0;
  /**
   * ITL samples by tenant. By default this replica's own; a simulation passes one map to all its
   * replicas (fleet-wide per tenant: one histogram per tenant instead of one per replica and
   * tenant, far less memory to touch at fleet scale), so a reader merges each distinct map once.
   */
  readonly itlByTenant: Map<string, WeightedSamples>;
  /**
   * ITL samples by SLA window index (window of the token's time). By default this replica's own; a
   * simulation passes one map to all replicas of a pool (every reader aggregates windows per pool
   * or fleet-wide), so the hot histograms are one per window and pool, not per replica: far less
   * memory to touch per plan at fleet scale. A reader merges each distinct map once.
   */
  readonly itlByWindow: Map<number, WeightedSamples>;
  /**
   * The interrupted ones of those gaps, by the same windows: a gap whose previous token came before
   * the step that ended it began, i.e. the sequence sat out at least one step (a whole-prompt
   * prefill it had no part in, a preemption). Shared exactly as itlByWindow is (both come from one
   * ItlWindows), so a reader that merges each distinct itlByWindow once may do the same here.
   */
  readonly itlInterruptedByWindow: Map<number, WeightedSamples>;
  private readonly windowLookup: WindowLookup;
  private readonly interruptedLookup: WindowLookup;

  constructor(
    readonly windowUs: number,
    itlByTenant: Map<string, WeightedSamples> = new Map(),
    windows: ItlWindows = new ItlWindows(),
  ) {
    this.itlByTenant = itlByTenant;
    this.itlByWindow = windows.all;
    this.itlInterruptedByWindow = windows.interrupted;
    this.windowLookup = new WindowLookup(windows.all);
    this.interruptedLookup = new WindowLookup(windows.interrupted);
  }

  changeInSystem(timeUs: number, delta: number): void {
    this.inSystemIntegralUs += this.inSystem * (timeUs - this.inSystemSinceUs);
    this.inSystemSinceUs = timeUs;
    this.inSystem += delta;
    if (this.inSystem > this.inSystemPeak) this.inSystemPeak = this.inSystem;
  }

  /** Closes the in-system integral at the end of the simulation. */
  closeAt(timeUs: number): void {
    this.changeInSystem(timeUs, 0);
  }

  /**
   * The inter-token gaps of this replica's window map, merged on demand (every gap is recorded once
   * by tenant and once by window, so the two merges hold the same samples): this replica's own, or
   * its pool's when the simulation shares one window map per pool (merge each distinct map once).
   */
  get itl(): WeightedSamples {
    const all = new WeightedSamples();
    for (const samples of this.itlByWindow.values()) all.addAll(samples);
    return all;
  }

  addItl(tenant: string, gapUs: number, count: number, timeUs: number): void {
    this.tenantItl(tenant).add(gapUs, count);
    this.windowItl(Math.floor(timeUs / this.windowUs)).add(gapUs, count);
  }

  /** The ITL samples of `tenant` (created empty on first use). */
  tenantItl(tenant: string): WeightedSamples {
    let t = this.itlByTenant.get(tenant);
    if (t === undefined) this.itlByTenant.set(tenant, (t = new WeightedSamples()));
    return t;
  }

  /** The ITL samples of SLA window `window` (created empty on first use). */
  windowItl(window: number): WeightedSamples {
    return this.windowLookup.at(window);
  }

  /**
   * Records `count` interrupted gaps of `gapUs` ending in SLA window `window`: once among all gaps
   * (windowItl) and once among the interrupted ones.
   */
  addInterruptedItl(window: number, gapUs: number, count: number): void {
    this.windowLookup.at(window).add(gapUs, count);
    this.interruptedLookup.at(window).add(gapUs, count);
  }
}

/** One replica's way into a window map: the last window asked for kept at hand. */
class WindowLookup {
  private lastWindow = -1;
  private last: WeightedSamples | null = null;

  constructor(private readonly byWindow: Map<number, WeightedSamples>) {}

  /** The samples of SLA window `window` (created empty on first use). */
  at(window: number): WeightedSamples {
    // Tokens come in time order, so nearly every call asks for the same window as the last one.
    if (window === this.lastWindow && this.last !== null) return this.last;
    let ws = this.byWindow.get(window);
    if (ws === undefined) this.byWindow.set(window, (ws = new WeightedSamples()));
    this.lastWindow = window;
    this.last = ws;
    return ws;
  }
}

/**
 * ITL samples by tenant, shared by a simulation's replicas: by name (ReplicaStats.itlByTenant) and,
 * for the replicas' hot path, by tenant index (filled on first use: the same samples objects).
 */
export class TenantItl {
  readonly byName = new Map<string, WeightedSamples>();
  readonly byIndex: (WeightedSamples | undefined)[] = [];
}

/**
 * ITL samples by SLA window index: all gaps and, apart, the interrupted ones. One per replica by
 * default; a simulation gives the replicas of a pool one to share (ReplicaStats.itlByWindow).
 */
export class ItlWindows {
  readonly all = new Map<number, WeightedSamples>();
  readonly interrupted = new Map<number, WeightedSamples>();
}
