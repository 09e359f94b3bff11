import type { BatchPlan, Scheduler } from '../../engine/policy/index.js';
import type { CostModel } from '../cost/cost-model.js';
import type { PowerState } from '../cost/power.js';
import type { RequestRecords } from '../metrics/records.js';
import { ItlWindows, ReplicaStats, TenantItl } from '../metrics/replica-stats.js';
import { bucketOf, bucketWidth, denseIndexOf, type WeightedSamples } from '../metrics/weighted-samples.js';
import type { OpenRequests } from '../workload/open-requests.js';
import { decodeRunStepShape, planDurationUs } from './step-shape.js';

/**
 * What a cost model may add so the replica sizes a decode run without building a StepShape per
 * step (the roofline model does; a wrapper can forward it). Contract: pushes onto `durationsUs`
 * exactly `stepUs(decodeRunStepShape(numSeqs, contextTokens0, numAdapters, i))` for i = 0, 1, …
 * while i < maxSteps and step i starts before `limitUs` (step 0 always), returning the count.
 */
export interface DecodeRunPricer {
  decodeRunUs(numSeqs: number, contextTokens0: number, numAdapters: number, maxSteps: number, startUs: number, limitUs: number, durationsUs: number[]): number;
  /**
   * Optional, the same durations written to durationsUs[0], [1], … instead of pushed (entries past
   * the count returned are left as they were): the replica reuses one array, so a long run does
   * not regrow it from empty each time.
   */
  decodeRunIntoUs?(numSeqs: number, contextTokens0: number, numAdapters: number, maxSteps: number, startUs: number, limitUs: number, durationsUs: number[]): number;
}

function decodeRunPricerOf(cost: CostModel): DecodeRunPricer | null {
  const pricer = cost as CostModel & Partial<DecodeRunPricer>;
  return typeof pricer.decodeRunUs === 'function' ? (pricer as DecodeRunPricer) : null;
}

/** One row of the optional per-step log (`--steps`). */
export interface StepRow {
  readonly replica: number;
  readonly stepIndex: number;
  readonly startUs: number;
  readonly durationUs: number;
  readonly numSeqs: number;
  readonly numPrefillTokens: number;
  readonly numDecodeTokens: number;
  readonly contextTokens: number;
  readonly numPreempted: number;
  readonly numLoraLoads: number;
  readonly kvBlocksUsed: number;
}

export interface ReplicaOptions {
  /** Lazy: run many steps per call until the next external event. Step: one step per call. */
  readonly lazy: boolean;
  /** Safety bound on steps per replica (every loop has one). */
  readonly maxSteps: number;
  readonly onStep?: (row: StepRow) => void;
  /**
   * Lazy mode: when a decode run reaches a boundary where nothing changes (no arrival, no finish,
   * no aging), lengthen it in place instead of ending it and planning the next run (default true).
   * The plans differ, the outputs do not (see extendRun). Forced off with `onStep`: the per-step
   * log is written as plans end, so its row order across replicas depends on where plans end.
   */
  readonly extendRuns?: boolean;
}

/**
 * A replica: the shared scheduler (with its KV allocator and LoRA cache) run unchanged, priced by
 * a cost model on the virtual clock.
 *
 * Arrival semantics (identical in both modes): a request that arrives at time t joins the
 * scheduler at the first step boundary >= t (an arrival exactly at a boundary is in time for
 * it). An idle replica wakes at the arrival time, after every arrival at that same instant.
 *
 * Lazy advancement: `advanceBefore(t)` processes every boundary earlier than t, the time of the
 * next event that concerns this replica. At a boundary it asks the scheduler how many steady
 * decode steps are guaranteed and plans as many as start before min(t, next aging change) as one
 * multi-step plan, so a long decode costs O(n) per run plus O(1) per step, not O(n) per step.
 */
export class Replica {
  readonly stats: ReplicaStats;
  /** Arrived request ids not yet given to the scheduler, in arrival order. */
  private inbox: number[] = [];
  private inboxHead = 0;
  private plan: BatchPlan | null = null;
  private planStartUs = 0;
  /** Σ tokens in KV over running sequences when the plan was formed (for KV waste). */
  private planLiveTokens0 = 0;
  /** Duration of each step of the in-flight plan: the first numStepDurations entries (the array is reused, never shrunk). */
  private readonly stepDurationsUs: number[] = [];
  private numStepDurations = 0;
  /** When this replica next has to act: the end of its plan, a wake-up, or never. */
  private nextBoundaryUs = Infinity;
  private numStepsRun = 0;
  private readonly adapterSlots = new Set<number>();
  /**
   * Per tenant index: sequences of the plan (a decode run's) and those whose previous token was
   * at the plan's start; the indexes touched are listed so only they are read and reset.
   * This and the other scratch of endPlan is shared by all replicas (endPlan leaves it reset, and
   * one replica runs at a time): a fleet's 172 copies were cold again at each replica's next plan.
   */
  private readonly runByTenant = SCRATCH.runByTenant;
  private readonly commonByTenant = SCRATCH.commonByTenant;
  /** Per tenant index: the pending own gap (previous token not at the plan's start) and its count. */
  private readonly ownGapByTenant = SCRATCH.ownGapByTenant;
  private readonly ownCountByTenant = SCRATCH.ownCountByTenant;
  /** The tenants with an own-gap count, the first numOwnTenants entries (reused, never shrunk). */
  private readonly ownTenants = SCRATCH.ownTenants;
  /** stats.tenantItl of each tenant index, looked up once (shared by the replicas that share those samples). */
  private readonly tenantItlByIndex: (WeightedSamples | undefined)[];
  /**
   * Inter-token gaps of steps 1.. of a decode run, grouped into segments of consecutive steps
   * with the same histogram bucket and SLA window (recorded once per segment, not per step).
   */
  private readonly segmentKeys = SCRATCH.segmentKeys;
  private readonly segmentWindows = SCRATCH.segmentWindows;
  private readonly segmentSteps = SCRATCH.segmentSteps;
  private readonly segmentSumsUs = SCRATCH.segmentSumsUs;
  private readonly segmentIndexes = SCRATCH.segmentIndexes;
  /** The cost model's decode-run fast path, when it has one. */
  private readonly decodeRunPricer: DecodeRunPricer | null;
  /** This GPU's power state when the cost model prices power management (prefill steps only). */
  private readonly power: PowerState | null;
  private readonly extendRuns: boolean;
  /** Steady length of the decode run being sized (decodeRunLength), and the aging limit it was sized under. */
  private runSteadySteps = 0;
  private runAgingLimitUs = Infinity;
  /** For a decode run in flight: steady steps it may still be lengthened by (0: not a run, or none). */
  private runStepsLeft = 0;
  /** Steps of the run in flight before its last lengthening: what plan-per-horizon had ended already. */
  private runStepsBeforeExtension = 0;
  /** Durations of the steps a lengthening adds (scratch, shared). */
  private readonly extensionDurationsUs = SCRATCH.extensionDurationsUs;

  constructor(
    readonly index: number,
    readonly scheduler: Scheduler,
    readonly cost: CostModel,
    readonly records: RequestRecords,
    /** The simulation's open requests: read when one is admitted, released when it ends here. */
    private readonly requests: OpenRequests,
    readonly options: ReplicaOptions,
    windowUs: number,
    /** Per-tenant ITL samples shared by the simulation's replicas (default: this replica's own). */
    tenantItl: TenantItl = new TenantItl(),
    /** Per-window ITL samples shared by the replicas of a pool (default: this replica's own). */
    itlWindows?: ItlWindows,
  ) {
    this.stats = new ReplicaStats(windowUs, tenantItl.byName, itlWindows);
    this.tenantItlByIndex = tenantItl.byIndex;
    this.decodeRunPricer = decodeRunPricerOf(cost);
    this.power = cost.newPowerState?.() ?? null;
    this.extendRuns = options.lazy && options.onStep === undefined && options.extendRuns !== false;
  }

  /** The next time this replica must run (end of the current step, a wake-up) or Infinity. */
  get nextEventUs(): number {
    return this.nextBoundaryUs;
  }

  get hasPlanInFlight(): boolean {
    return this.plan !== null;
  }

  get isIdle(): boolean {
    return this.plan === null && this.nextBoundaryUs === Infinity;
  }

  /** A request reaches this replica at `timeUs` (the caller has advanced it to just before). */
  deliver(id: number, timeUs: number): void {
    this.inbox.push(id);
    this.stats.changeInSystem(timeUs, +1);
    if (this.plan === null && this.nextBoundaryUs === Infinity) this.nextBoundaryUs = timeUs;
  }

  /** Lazy mode: processes every boundary strictly before `horizonUs` (Infinity drains). */
  advanceBefore(horizonUs: number): void {
    while (this.nextBoundaryUs < horizonUs) this.boundary(this.nextBoundaryUs, horizonUs);
  }

  /** Step mode: processes exactly the boundary at `timeUs` (which must be the next one). */
  stepAt(timeUs: number): void {
    if (timeUs !== this.nextBoundaryUs) throw new Error(`replica ${this.index}: step at ${timeUs} but next boundary is ${this.nextBoundaryUs}`);
    this.boundary(timeUs, timeUs);
  }

  private boundary(nowUs: number, horizonUs: number): void {
    if (this.plan !== null) {
      // Nothing arrived and the run can go on (no finish, no aging change): lengthen it.
      if (this.runStepsLeft > 0 && this.inboxHead === this.inbox.length && nowUs < this.runAgingLimitUs) {
        this.extendRun(nowUs, horizonUs);
        return;
      }
      this.endPlan(nowUs, this.plan.numSteps);
    }
    this.admitInbox(nowUs);
    if (!this.scheduler.hasWork()) {
      this.nextBoundaryUs = Infinity;
      return;
    }
    this.startPlan(nowUs, horizonUs);
  }

  private admitInbox(nowUs: number): void {
    const records = this.records;
    while (this.inboxHead < this.inbox.length) {
      const id = this.inbox[this.inboxHead++];
      const req = this.requests.get(id);
      const seq = this.scheduler.addRequest({
        id,
        tenant: req.tenant,
        adapter: req.adapter,
        priorityClass: req.priorityClass,
        arrivalUs: req.arrivalUs,
        promptTokens: req.promptTokens,
        maxOutputTokens: req.outputTokens,
        ...(req.content !== undefined ? { content: req.content } : {}),
      });
      if (seq.status === 'rejected') this.end(id, nowUs, 'rejected', seq.reason ?? 'unknown', 0);
      else records.status[id] = 'pending';
    }
    if (this.inboxHead > 1024 && this.inboxHead * 2 > this.inbox.length) {
      this.inbox = this.inbox.slice(this.inboxHead);
      this.inboxHead = 0;
    }
  }

  /** How many steps of a steady decode run to plan: those that start before `limitUs`. */
  private decodeRunLength(nowUs: number, horizonUs: number): number {
    if (!this.options.lazy) return 1;
    const k = this.scheduler.steadyDecodeSteps(nowUs);
    if (k <= 1) return 1;
    const agingLimitUs = this.scheduler.nextWaitingChangeUs(nowUs);
    this.runSteadySteps = k;
    this.runAgingLimitUs = agingLimitUs;
    const n = this.scheduler.numRunning();
    const ctx0 = this.scheduler.runningContextTokens();
    // Every running sequence pins its adapter: the pinned adapters are the batch's distinct ones.
    const numAdapters = this.scheduler.lora.numPinnedAdapters();
    const count = this.priceDecodeRun(n, ctx0, numAdapters, k, nowUs, Math.min(horizonUs, agingLimitUs), this.stepDurationsUs);
    this.numStepDurations = count;
    return count;
  }

  /**
   * Durations of the steps of a steady decode run of `n` sequences from context `ctx0` that start
   * before `limitUs` (step 0 always; at most `maxSteps`), written to durationsUs[0..count); returns count.
   */
  private priceDecodeRun(n: number, ctx0: number, numAdapters: number, maxSteps: number, nowUs: number, limitUs: number, durationsUs: number[]): number {
    const pricer = this.decodeRunPricer;
    if (pricer !== null && pricer.decodeRunIntoUs !== undefined) return pricer.decodeRunIntoUs(n, ctx0, numAdapters, maxSteps, nowUs, limitUs, durationsUs);
    durationsUs.length = 0;
    if (pricer !== null) return pricer.decodeRunUs(n, ctx0, numAdapters, maxSteps, nowUs, limitUs, durationsUs);
    let startUs = nowUs;
    for (let i = 0; i < maxSteps; i++) {
      if (i > 0 && startUs >= limitUs) break;
      const d = this.cost.stepUs(decodeRunStepShape(n, ctx0, numAdapters, i));
      durationsUs.push(d);
      startUs += d;
    }
    return durationsUs.length;
  }

  /**
   * Lengthens the decode run in flight at its end `nowUs` (nothing arrived, no sequence finishes,
   * aging changes nothing before runAgingLimitUs) by the steps a new run planned here would have:
   * those that start before min(horizon, aging limit), at most the steady steps left. The outputs
   * are those of ending the run and planning that new one: the same steps with the same durations
   * (a step's price depends only on its batch and context), the same page-table growth in the same
   * order (Scheduler.extendDecodeRun), and every record, integral and histogram is a sum over steps
   * that does not depend on where plans end (a run's first gap and later gaps land in the same
   * buckets and windows). Only a failure reads plan boundaries: fail() ends what was before the
   * last lengthening, as plan-per-horizon had.
   */
  private extendRun(nowUs: number, horizonUs: number): void {
    const plan = this.plan!;
    const n = plan.items.length;
    const numSteps0 = plan.numSteps;
    // A decode run's items are all running sequences; each step adds one token to each.
    const ctx = this.planLiveTokens0 + numSteps0 * n;
    const extra = this.extensionDurationsUs;
    const numAdapters = this.scheduler.lora.numPinnedAdapters();
    const count = this.priceDecodeRun(n, ctx, numAdapters, this.runStepsLeft, nowUs, Math.min(horizonUs, this.runAgingLimitUs), extra);
    this.plan = this.scheduler.extendDecodeRun(plan, count);
    const durations = this.stepDurationsUs;
    let endUs = nowUs;
    for (let i = 0; i < count; i++) {
      durations[numSteps0 + i] = extra[i];
      endUs += extra[i];
    }
    this.numStepDurations = numSteps0 + count;
    // Decode work heats the GPU (contiguous with the run's earlier steps: one segment).
    if (this.power !== null) this.power.decodeWork(nowUs, endUs - nowUs, n);
    this.runStepsLeft -= count;
    this.runStepsBeforeExtension = numSteps0;
    this.numStepsRun += count;
    if (this.numStepsRun > this.options.maxSteps) throw new Error(`replica ${this.index}: more than ${this.options.maxSteps} steps (raise the bound or shorten the run)`);
    this.nextBoundaryUs = endUs;
  }

  private startPlan(nowUs: number, horizonUs: number): void {
    const runLength = this.decodeRunLength(nowUs, horizonUs);
    // The plan is read only until the next schedule (endPlan runs first): a run may reuse the scheduler's storage.
    const plan = this.scheduler.schedule({ nowUs, maxSteps: runLength, reuseRunStorage: true });
    if (plan.numSteps !== runLength && runLength > 1) {
      throw new Error(`replica ${this.index}: scheduler planned ${plan.numSteps} steps, expected ${runLength}`);
    }
    if (plan.numSteps === 1) {
      this.stepDurationsUs[0] = planDurationUs(this.cost, plan, this.adapterSlots, nowUs, this.power);
      this.numStepDurations = 1;
    }
    this.runStepsLeft = this.extendRuns && plan.numSteps > 1 ? this.runSteadySteps - plan.numSteps : 0;
    this.runStepsBeforeExtension = 0;
    const records = this.records;
    // Only a plan with prefill tokens has prefill items (a decode run has none).
    if (plan.numPrefillTokens > 0) {
      for (const item of plan.items) {
        if (item.isPrefill && records.firstScheduledUs[item.seqId] < 0) records.firstScheduledUs[item.seqId] = nowUs;
      }
    }
    this.stats.numPreemptions += plan.preempted.length;
    for (const id of plan.preempted) records.preemptions[id]++;
    this.plan = plan;
    this.planStartUs = nowUs;
    this.planLiveTokens0 = this.scheduler.runningContextTokens();
    let endUs = nowUs;
    const durations = this.stepDurationsUs;
    for (let i = 0; i < this.numStepDurations; i++) endUs += durations[i];
    // A decode run heats the GPU as its steps would one by one (planDurationUs notes single steps).
    if (this.power !== null && plan.numSteps > 1) this.power.decodeWork(nowUs, endUs - nowUs, plan.items.length);
    if (plan.items.length === 0) {
      // Nothing can run until something changes (an arrival); close the empty step at once.
      this.endPlan(nowUs, plan.numSteps);
      this.nextBoundaryUs = Infinity;
      return;
    }
    this.numStepsRun += plan.numSteps;
    if (this.numStepsRun > this.options.maxSteps) throw new Error(`replica ${this.index}: more than ${this.options.maxSteps} steps (raise the bound or shorten the run)`);
    this.nextBoundaryUs = endUs;
  }

  /**
   * Records the plan in flight, ending at `endUs`, and applies it to the scheduler. With numSteps
   * below the plan's (a failure: only the part of a lengthened run before its last lengthening),
   * records those steps only and leaves the scheduler alone: a steady run's prefix starts no
   * sequence and finishes none, and a failed replica's scheduler is never used again.
   */
  private endPlan(endUs: number, numSteps: number): void {
    const plan = this.plan!;
    const startUs = this.planStartUs;
    const durations = this.stepDurationsUs;
    const records = this.records;
    const stats = this.stats;
    const n = plan.items.length;
    const isRun = numSteps > 1;
    const onStep = this.options.onStep;
    if (onStep !== undefined) this.logSteps(plan, numSteps, isRun);
    // Segments of later steps' gaps (steps 1..numSteps-1 of a decode run).
    const windowUs = stats.windowUs;
    const segKeys = this.segmentKeys;
    const segWindows = this.segmentWindows;
    const segSteps = this.segmentSteps;
    const segSums = this.segmentSumsUs;
    let numSegments = 0;
    // Key and window of the last segment (numSegments - 1), which a step with both equal extends.
    let segKey = -1;
    let segWindow = -1;
    // Steps and Σ durations of the last segment, kept here and stored when the next one starts.
    let segCount = 0;
    let segSumUs = 0;
    // Durations in [segLoUs, segHiUs) have bucket segKey (an empty range until a bucket wide enough is met).
    let segLoUs = 0;
    let segHiUs = 0;
    let laterMaxUs = 0;
    // The SLA window of the current step's end, recomputed only when a step ends at or after
    // nextWindowUs (where the next window starts).
    let window = -1;
    let nextWindowUs = -Infinity;
    let stepStartUs = startUs + durations[0];
    // Σ durations and Σ i·duration over the plan's steps (for the KV integrals below).
    let sumUs = durations[0];
    let indexSumUs = 0;
    for (let i = 1; i < numSteps; i++) {
      const d = durations[i];
      sumUs += d;
      indexSumUs += i * d;
      // This step's token ends at stepStartUs; its gap d is shared by all n sequences.
      stepStartUs += d;
      if (d > laterMaxUs) laterMaxUs = d;
      if (!(stepStartUs < nextWindowUs)) {
        window = Math.floor(stepStartUs / windowUs);
        nextWindowUs = windowUs > 0 ? (window + 1) * windowUs : -Infinity;
      }
      if (d >= segLoUs && d < segHiUs && window === segWindow) {
        // The last segment's bucket and window: d's bucket is segKey without computing it.
        segCount++;
        segSumUs += d;
        continue;
      }
      const key = bucketOf(d);
      const width = bucketWidth(d, key);
      segLoUs = key;
      segHiUs = key + width;
      if (key === segKey && window === segWindow) {
        segCount++;
        segSumUs += d;
      } else {
        if (numSegments > 0) {
          segSteps[numSegments - 1] = segCount;
          segSums[numSegments - 1] = segSumUs;
        }
        segKey = key;
        segWindow = window;
        segKeys[numSegments] = key;
        segWindows[numSegments] = window;
        segCount = 1;
        segSumUs = d;
        numSegments++;
      }
    }
    if (numSegments > 0) {
      segSteps[numSegments - 1] = segCount;
      segSums[numSegments - 1] = segSumUs;
    }
    // KV integrals. With the same blocks in use at every step (a run in which no page table grows:
    // contiguous KV), the sums over steps have closed forms in Σd and Σi·d (taken by the loop
    // above); all terms are integers, and below 2^53 when reserved × Σd is (checked), so they
    // are exact and equal the per-step sums. Blocks in use never fall within a plan.
    const newTokens = plan.numPrefillTokens + plan.numDecodeTokens;
    const page = this.scheduler.allocator.pageSizeTokens;
    const usedPerStep = plan.kvBlocksUsedPerStep;
    let kvBlockUs = 0;
    let kvReservedTokenUs = 0;
    let kvLiveTokenUs = 0;
    let kvBlocksPeak = stats.kvBlocksPeak;
    const liveStart = this.planLiveTokens0 + newTokens;
    const used0 = usedPerStep[0];
    const reserved0 = used0 * page;
    // Each step adds one token per sequence (only a decode run has more than one step).
    const liveLast = liveStart + (numSteps - 1) * n;
    if (used0 === usedPerStep[numSteps - 1] && reserved0 * sumUs < 2 ** 53 && (liveLast <= reserved0 || liveStart >= reserved0)) {
      kvBlockUs = used0 * sumUs;
      kvReservedTokenUs = reserved0 * sumUs;
      kvLiveTokenUs = liveLast <= reserved0 ? liveStart * sumUs + n * indexSumUs : reserved0 * sumUs;
      if (used0 > kvBlocksPeak) kvBlocksPeak = used0;
    } else {
      let live = liveStart;
      for (let i = 0; i < numSteps; i++) {
        const d = durations[i];
        const used = usedPerStep[i];
        kvBlockUs += used * d;
        if (used > kvBlocksPeak) kvBlocksPeak = used;
        const reserved = used * page;
        kvReservedTokenUs += reserved * d;
        kvLiveTokenUs += (reserved < live ? reserved : live) * d;
        live += n;
      }
    }
    // Every term is an integer below 2^53, so summing per plan first changes no sum.
    stats.kvBlockUs += kvBlockUs;
    stats.kvReservedTokenUs += kvReservedTokenUs;
    stats.kvLiveTokenUs += kvLiveTokenUs;
    stats.kvBlocksPeak = kvBlocksPeak;
    stats.batchSeqUs += n * (stepStartUs - startUs);
    if (n > stats.batchSeqsPeak) stats.batchSeqsPeak = n;
    stats.numSteps += numSteps;
    stats.busyUs += endUs - startUs;
    stats.numPrefillTokens += plan.numPrefillTokens;
    stats.numDecodeTokens += plan.numDecodeTokens * numSteps;
    stats.numLoraLoads += plan.loraLoads.length;

    // Inter-token gaps. The first step of the plan is per sequence (its previous token may be
    // older than the plan's start); later steps of a run are shared by all n sequences (every
    // item of a run samples). Most sequences' previous token was at the plan's start: count them
    // per tenant and record their common gap once; only the others (after a prefill-only step or
    // a preemption) one by one: these are the interrupted gaps (ReplicaStats.itlInterruptedByWindow).
    const firstEndUs = startUs + durations[0];
    const commonGapUs = firstEndUs - startUs;
    const runTally = this.runByTenant;
    const commonTally = this.commonByTenant;
    const ownGaps = this.ownGapByTenant;
    const ownCounts = this.ownCountByTenant;
    const ownTenants = this.ownTenants;
    let numOwnTenants = 0;
    // The window of every first-step token (each ends at firstEndUs). Its samples are looked up on
    // first use only: a plan that records no gap must not create its window's entry.
    const firstEndWindowIndex = Math.floor(firstEndUs / windowUs);
    let ownGapUs = -1;
    let numOwnGap = 0;
    // A decode run's items are the running sequences in order, each sampling: their ids are read
    // from the sequences, which onStepEnd reads next anyway (the items were a cache miss each).
    const items = plan.items;
    const runSeqs = isRun ? this.scheduler.runningSeqs() : null;
    for (let k = 0; k < n; k++) {
      if (runSeqs === null && !items[k].samples) continue;
      const id = runSeqs === null ? items[k].seqId : runSeqs[k].id;
      const tenant = records.tenantIndex[id];
      if (isRun) runTally.add(tenant);
      const last = records.lastTokenUs[id];
      let maxItl = records.maxItlUs[id];
      if (last === startUs) {
        commonTally.add(tenant);
        if (commonGapUs > maxItl) maxItl = commonGapUs;
      } else if (last >= 0) {
        const gap = firstEndUs - last;
        // Grouped by gap, per tenant and for the window (every such token ends at firstEndUs): most
        // of them share their previous token's time (e.g. all decoders after a prefill step).
        if (!(ownCounts[tenant] > 0)) {
          ownCounts[tenant] = 0;
          ownGaps[tenant] = gap;
          ownTenants[numOwnTenants++] = tenant;
        } else if (ownGaps[tenant] !== gap) {
          this.tenantItl(tenant).add(ownGaps[tenant], ownCounts[tenant]);
          ownCounts[tenant] = 0;
          ownGaps[tenant] = gap;
        }
        ownCounts[tenant]++;
        if (gap !== ownGapUs) {
          if (numOwnGap > 0) stats.addInterruptedItl(firstEndWindowIndex, ownGapUs, numOwnGap);
          ownGapUs = gap;
          numOwnGap = 0;
        }
        numOwnGap++;
        if (gap > maxItl) maxItl = gap;
      }
      if (laterMaxUs > maxItl) maxItl = laterMaxUs;
      records.maxItlUs[id] = maxItl;
      records.lastTokenUs[id] = endUs;
      records.outputTokensDone[id] += numSteps;
    }
    if (numOwnGap > 0) stats.addInterruptedItl(firstEndWindowIndex, ownGapUs, numOwnGap);
    for (let k = 0; k < numOwnTenants; k++) {
      const tenant = ownTenants[k];
      this.tenantItl(tenant).add(ownGaps[tenant], ownCounts[tenant]);
      ownCounts[tenant] = 0;
    }
    // The common gap: per tenant, and once for the window with all of them (the same samples).
    let numCommon = 0;
    const commonIndex = commonTally.size > 0 ? denseIndexOf(bucketOf(commonGapUs)) : -1;
    for (let k = 0; k < commonTally.size; k++) {
      const tenant = commonTally.keys[k];
      const count = commonTally.counts[tenant];
      if (commonIndex >= 0) this.tenantItl(tenant).addAtDenseIndex(commonIndex, count, commonGapUs * count);
      else this.tenantItl(tenant).add(commonGapUs, count);
      numCommon += count;
    }
    commonTally.clear();
    if (numCommon > 0) stats.windowItl(firstEndWindowIndex).add(commonGapUs, numCommon);
    // Each segment goes to every tenant of the run: find its histogram index once.
    const segIndexes = this.segmentIndexes;
    for (let s = 0; s < numSegments; s++) segIndexes[s] = denseIndexOf(segKeys[s]);
    for (let k = 0; k < runTally.size; k++) {
      const tenant = runTally.keys[k];
      this.tenantItl(tenant).addSegments(segIndexes, segKeys, segSteps, segSums, 0, numSegments, runTally.counts[tenant]);
    }
    runTally.clear();
    // And to its window with all n sequences, window by window (stats.windowItl is quick for the same window again).
    for (let s = 0; s < numSegments; ) {
      let e = s + 1;
      while (e < numSegments && segWindows[e] === segWindows[s]) e++;
      stats.windowItl(segWindows[s]).addSegments(segIndexes, segKeys, segSteps, segSums, s, e, n);
      s = e;
    }

    if (numSteps < plan.numSteps) {
      this.plan = null;
      return;
    }
    const outcome = this.scheduler.onStepEnd(plan, { nowUs: endUs });
    this.plan = null;
    for (const id of outcome.firstTokenSeqIds) records.firstTokenUs[id] = firstEndUs;
    for (const seq of outcome.finished) {
      records.cachedPromptTokens[seq.spec.id] = seq.numCachedPromptTokens;
      const status = seq.status === 'finished' ? 'completed' : 'aborted';
      this.end(seq.spec.id, endUs, status, seq.status === 'finished' ? '' : (seq.reason ?? ''), seq.numPreemptions);
    }
  }

  /** The per-step log's rows of the plan's first `numSteps` steps. */
  private logSteps(plan: BatchPlan, numSteps: number, isRun: boolean): void {
    const onStep = this.options.onStep!;
    const durations = this.stepDurationsUs;
    const usedPerStep = plan.kvBlocksUsedPerStep;
    const n = plan.items.length;
    // A decode run's items are exactly the running sequences, so their contexts sum to the live
    // tokens at the plan's start.
    let ctx = 0;
    if (isRun) ctx = this.planLiveTokens0;
    else for (const item of plan.items) ctx += item.contextTokens;
    let stepStartUs = this.planStartUs;
    for (let i = 0; i < numSteps; i++) {
      const d = durations[i];
      onStep({
        replica: this.index,
        stepIndex: plan.stepIndex + i,
        startUs: stepStartUs,
        durationUs: d,
        numSeqs: n,
        numPrefillTokens: plan.numPrefillTokens,
        numDecodeTokens: plan.numDecodeTokens,
        contextTokens: ctx,
        numPreempted: i === 0 ? plan.preempted.length : 0,
        numLoraLoads: i === 0 ? plan.loraLoads.length : 0,
        kvBlocksUsed: usedPerStep[i],
      });
      stepStartUs += d;
      // Only a decode run has more than one step; each of its steps adds one token per sequence.
      ctx += n;
    }
  }

  /** The ITL samples of tenant index `tenant` (records.tenantIndex), cached by index. */
  private tenantItl(tenant: number): WeightedSamples {
    let samples = this.tenantItlByIndex[tenant];
    if (samples === undefined) this.tenantItlByIndex[tenant] = samples = this.stats.tenantItl(this.records.tenantNames[tenant]);
    return samples;
  }

  private end(id: number, timeUs: number, status: 'completed' | 'rejected' | 'aborted' | 'failed', reason: string, preemptions: number): void {
    const records = this.records;
    records.end(id, timeUs, status, reason);
    records.preemptions[id] = preemptions;
    this.requests.release(id);
    this.stats.changeInSystem(timeUs, -1);
  }

  // ---- Load queries for the router, and failure (sim/fleet) ----

  /** Requests here that are not running yet (delivered or waiting). */
  numQueued(): number {
    return this.inbox.length - this.inboxHead + this.scheduler.numWaiting();
  }

  /**
   * Requests here that have not ended: queued and running. Not stats.inSystem: after `fail` the
   * scheduler keeps its last state, which a router that has not yet detected the failure still sees.
   */
  numInSystem(): number {
    return this.numQueued() + this.scheduler.numRunning();
  }

  /**
   * The replica fails at `nowUs` (the caller has advanced it to just before): the step in flight
   * is lost and every request on it leaves this replica; the caller retries or fails them. The
   * replica is inert afterwards (a recovered replica is a new one: its KV and adapters are gone).
   */
  fail(nowUs: number): void {
    // Plan-per-horizon had ended the part of a lengthened run before its last lengthening: record
    // it; the rest is the step in flight, lost.
    if (this.plan !== null && this.runStepsBeforeExtension > 0) {
      let endUs = this.planStartUs;
      for (let i = 0; i < this.runStepsBeforeExtension; i++) endUs += this.stepDurationsUs[i];
      this.endPlan(endUs, this.runStepsBeforeExtension);
    }
    this.plan = null;
    this.inbox = [];
    this.inboxHead = 0;
    this.nextBoundaryUs = Infinity;
    this.stats.changeInSystem(nowUs, -this.stats.inSystem);
  }
}

/**
 * Counts per small integer key (a tenant index) and the keys counted (the first `size` entries of
 * `keys`), reused from plan to plan. `clear` zeroes the counts it touched and keeps the arrays'
 * storage: setting an array's length to 0 frees it, and refilling it would allocate again.
 */
class KeyTally {
  readonly counts: number[] = [];
  readonly keys: number[] = [];
  size = 0;

  add(key: number): void {
    if (!(this.counts[key] > 0)) {
      this.counts[key] = 0;
      this.keys[this.size++] = key;
    }
    this.counts[key]++;
  }

  clear(): void {
    for (let k = 0; k < this.size; k++) this.counts[this.keys[k]] = 0;
    this.size = 0;
  }
}

/** endPlan's scratch, shared by every replica (see Replica.runByTenant). */
const SCRATCH = {
  runByTenant: new KeyTally(),
  commonByTenant: new KeyTally(),
  ownGapByTenant: [] as number[],
  ownCountByTenant: [] as number[],
  ownTenants: [] as number[],
  segmentKeys: [] as number[],
  segmentWindows: [] as number[],
  segmentSteps: [] as number[],
  segmentSumsUs: [] as number[],
  segmentIndexes: [] as number[],
  extensionDurationsUs: [] as number[],
};

