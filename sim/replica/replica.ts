import type { BatchPlan, Scheduler, SeqState } from '../../engine/policy/index.js';
import type { CostModel } from '../cost/cost-model.js';
import type { RequestRecords } from '../metrics/records.js';
import { ReplicaStats } from '../metrics/replica-stats.js';
import type { WorkloadRequest } from '../workload/types.js';
import { decodeRunStepShape, shapeOfPlan } from './step-shape.js';

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
  /** Duration of each step of the in-flight plan. */
  private stepDurationsUs: number[] = [];
  /** When this replica next has to act: the end of its plan, a wake-up, or never. */
  private nextBoundaryUs = Infinity;
  private numStepsRun = 0;
  private readonly adapterSlots = new Set<number>();
  private readonly tenantCounts = new Map<string, number>();

  constructor(
    readonly index: number,
    readonly scheduler: Scheduler,
    readonly cost: CostModel,
    readonly records: RequestRecords,
    private readonly requests: (id: number) => WorkloadRequest,
    readonly options: ReplicaOptions,
    windowUs: number,
  ) {
    this.stats = new ReplicaStats(windowUs);
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
    if (this.plan !== null) this.endPlan(nowUs);
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
      const req = this.requests(id);
      if (req.promptTokens <= 0 || req.outputTokens <= 0) {
        // The policy core requires >= 1 prompt and output token; a trace row with 0 is reported, not dropped.
        this.end(id, nowUs, 'rejected', req.promptTokens <= 0 ? 'empty_prompt' : 'zero_output_tokens', 0);
        continue;
      }
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
    const limitUs = Math.min(horizonUs, this.scheduler.nextWaitingChangeUs(nowUs));
    const running = this.scheduler.runningSeqs();
    const n = running.length;
    const ctx0 = this.scheduler.runningContextTokens();
    const numAdapters = this.countAdapters(running);
    const durations = this.stepDurationsUs;
    durations.length = 0;
    let startUs = nowUs;
    // Step 0 always runs; step i > 0 runs when it starts before the limit.
    for (let i = 0; i < k; i++) {
      if (i > 0 && startUs >= limitUs) break;
      const d = this.cost.stepUs(decodeRunStepShape(n, ctx0, numAdapters, i));
      durations.push(d);
      startUs += d;
    }
    return durations.length;
  }

  private countAdapters(running: readonly SeqState[]): number {
    const slots = this.adapterSlots;
    slots.clear();
    for (const seq of running) if (seq.spec.adapter !== null) slots.add(this.scheduler.lora.slotOf(seq.spec.adapter));
    return slots.size;
  }

  private startPlan(nowUs: number, horizonUs: number): void {
    const runLength = this.decodeRunLength(nowUs, horizonUs);
    const plan = this.scheduler.schedule({ nowUs, maxSteps: runLength });
    if (plan.numSteps !== runLength && runLength > 1) {
      throw new Error(`replica ${this.index}: scheduler planned ${plan.numSteps} steps, expected ${runLength}`);
    }
    if (plan.numSteps === 1) {
      this.stepDurationsUs.length = 0;
      this.stepDurationsUs.push(plan.items.length === 0 ? 0 : this.cost.stepUs(shapeOfPlan(plan, this.adapterSlots)));
    }
    const records = this.records;
    for (const item of plan.items) {
      if (item.isPrefill && records.firstScheduledUs[item.seqId] < 0) records.firstScheduledUs[item.seqId] = nowUs;
    }
    this.stats.numPreemptions += plan.preempted.length;
    for (const id of plan.preempted) records.preemptions[id]++;
    this.plan = plan;
    this.planStartUs = nowUs;
    this.planLiveTokens0 = this.scheduler.runningContextTokens();
    let endUs = nowUs;
    for (const d of this.stepDurationsUs) endUs += d;
    if (plan.items.length === 0) {
      // Nothing can run until something changes (an arrival); close the empty step at once.
      this.endPlan(nowUs);
      this.nextBoundaryUs = Infinity;
      return;
    }
    this.numStepsRun += plan.numSteps;
    if (this.numStepsRun > this.options.maxSteps) throw new Error(`replica ${this.index}: more than ${this.options.maxSteps} steps (raise the bound or shorten the run)`);
    this.nextBoundaryUs = endUs;
  }

  private endPlan(endUs: number): void {
    const plan = this.plan!;
    const startUs = this.planStartUs;
    const durations = this.stepDurationsUs;
    const records = this.records;
    const stats = this.stats;
    const n = plan.items.length;
    // Integrals and the per-step log: O(1) per step.
    let ctx = 0;
    for (const item of plan.items) ctx += item.contextTokens;
    const newTokens = plan.numPrefillTokens + plan.numDecodeTokens;
    let live = this.planLiveTokens0 + newTokens;
    let stepStartUs = startUs;
    const page = this.scheduler.allocator.pageSizeTokens;
    for (let i = 0; i < plan.numSteps; i++) {
      const d = durations[i];
      const used = plan.kvBlocksUsedPerStep[i];
      stats.kvBlockUs += used * d;
      if (used > stats.kvBlocksPeak) stats.kvBlocksPeak = used;
      const reserved = used * page;
      stats.kvReservedTokenUs += reserved * d;
      stats.kvLiveTokenUs += Math.min(reserved, live) * d;
      stats.batchSeqUs += n * d;
      if (n > stats.batchSeqsPeak) stats.batchSeqsPeak = n;
      this.options.onStep?.({
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
        kvBlocksUsed: used,
      });
      stepStartUs += d;
      // Only a decode run has more than one step; each of its steps adds one token per sequence.
      ctx += n;
      live += n;
    }
    stats.numSteps += plan.numSteps;
    stats.busyUs += endUs - startUs;
    stats.numPrefillTokens += plan.numPrefillTokens;
    stats.numDecodeTokens += plan.numDecodeTokens * plan.numSteps;
    stats.numLoraLoads += plan.loraLoads.length;

    // Inter-token gaps. The first step of the plan is per sequence (its previous token may be
    // older than the plan's start); later steps of a run are shared by all n sequences.
    const firstEndUs = startUs + durations[0];
    let laterMaxUs = 0;
    if (plan.numSteps > 1) {
      const tenantCounts = this.tenantCounts;
      tenantCounts.clear();
      for (const item of plan.items) {
        const tenant = records.tenant[item.seqId];
        tenantCounts.set(tenant, (tenantCounts.get(tenant) ?? 0) + 1);
      }
      let t = firstEndUs;
      for (let i = 1; i < plan.numSteps; i++) {
        const d = durations[i];
        t += d;
        if (d > laterMaxUs) laterMaxUs = d;
        for (const [tenant, count] of tenantCounts) stats.addItl(tenant, d, count, t);
      }
    }
    // Most sequences' previous token was at the plan's start: count them per tenant and record
    // their common gap once; only the others (after a prefill-only step or a preemption) one by one.
    const commonGapUs = firstEndUs - startUs;
    const commonByTenant = this.tenantCounts;
    commonByTenant.clear();
    for (const item of plan.items) {
      if (!item.samples) continue;
      const id = item.seqId;
      const last = records.lastTokenUs[id];
      if (last === startUs) {
        const tenant = records.tenant[id];
        commonByTenant.set(tenant, (commonByTenant.get(tenant) ?? 0) + 1);
        if (commonGapUs > records.maxItlUs[id]) records.maxItlUs[id] = commonGapUs;
      } else if (last >= 0) {
        const gap = firstEndUs - last;
        stats.addItl(records.tenant[id], gap, 1, firstEndUs);
        if (gap > records.maxItlUs[id]) records.maxItlUs[id] = gap;
      }
      if (laterMaxUs > records.maxItlUs[id]) records.maxItlUs[id] = laterMaxUs;
      records.lastTokenUs[id] = endUs;
      records.outputTokensDone[id] += plan.numSteps;
    }
    for (const [tenant, count] of commonByTenant) stats.addItl(tenant, commonGapUs, count, firstEndUs);

    const outcome = this.scheduler.onStepEnd(plan, { nowUs: endUs });
    this.plan = null;
    for (const id of outcome.firstTokenSeqIds) records.firstTokenUs[id] = firstEndUs;
    for (const seq of outcome.finished) {
      records.cachedPromptTokens[seq.spec.id] = seq.numCachedPromptTokens;
      const status = seq.status === 'finished' ? 'completed' : 'aborted';
      this.end(seq.spec.id, endUs, status, seq.status === 'finished' ? '' : (seq.reason ?? ''), seq.numPreemptions);
    }
  }

  private end(id: number, timeUs: number, status: 'completed' | 'rejected' | 'aborted' | 'failed', reason: string, preemptions: number): void {
    const records = this.records;
    records.status[id] = status;
    records.reason[id] = reason;
    records.finishUs[id] = timeUs;
    records.preemptions[id] = preemptions;
    this.stats.changeInSystem(timeUs, -1);
  }
}
